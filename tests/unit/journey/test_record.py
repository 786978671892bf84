"""Journey records: deduplication, conflicting duplicates, versions, JSON, snapshot, merge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.vocabulary import touchpoint_to_json
from schemas.journey import JourneyRecord, JourneySnapshot
from streams import journey as core
from streams.journey import memo
from streams.journey import record as records
from streams.journey.fold import FoldState

from .builders import FIT_FORM, apply_all, at, tp
from .test_signals import hot_lead

PB = core.default_playbook()
E = "ada@lovelace.example"


def test_a_new_journey_is_empty() -> None:
    record = core.new_journey("cus_1")
    assert (record.customer_id, record.version, record.touchpoints) == ("cus_1", 0, [])
    view = core.view(record, PB)
    assert view.stage == "visitor" and view.stage_history == [] and view.engagement.score == 0


def test_touchpoints_are_kept_sorted_by_event_time_then_id() -> None:
    events = [
        tp("marketing.page_viewed", "b", at(), email=E, props={"url": "u"}),
        tp("marketing.page_viewed", "a", at(), email=E, props={"url": "u"}),
        tp("marketing.page_viewed", "c", at(minutes=-1), email=E, props={"url": "u"}),
    ]
    record, _ = apply_all(events, PB)
    assert [t.event_id for t in record.touchpoints] == ["c", "a", "b"]


def test_every_change_bumps_the_version_and_a_repeat_changes_nothing() -> None:
    record, _ = apply_all(hot_lead(), PB)
    assert record.version == 3
    # A redelivery (after a crash) must leave no trace: a version it bumped would collide with
    # the one the read model already holds from before the crash.
    duplicate = core.apply_touchpoint(record, hot_lead()[0], PB)
    assert duplicate.duplicate and duplicate.record == record


def test_conflicting_duplicates_keep_the_smaller_canonical_json_in_any_order() -> None:
    small = tp("marketing.page_viewed", "dup", at(), email=E, props={"url": "a"})
    large = tp("marketing.page_viewed", "dup", at(), email=E, props={"url": "b"})
    assert touchpoint_to_json(small) < touchpoint_to_json(large)
    for order in ([small, large], [large, small]):
        record, _ = apply_all(order, PB)
        assert record.touchpoints == [small]
    replaced = core.apply_touchpoint(apply_all([large], PB)[0], small, PB)
    assert replaced.applied and replaced.duplicate
    kept = core.apply_touchpoint(apply_all([small], PB)[0], large, PB)
    assert not kept.applied and kept.duplicate


def test_identifiers_are_the_unblocked_ones_strongest_first() -> None:
    events = [
        tp("marketing.page_viewed", "1", at(), anon="c1", props={"url": "u"}),
        tp("marketing.email_opened", "2", at(), email="info@acme.example", anon="c1"),
        tp("sales.outreach_sent", "3", at(), contact="crm-1", email=E, props={"channel": "call"}),
    ]
    record, _ = apply_all(events, PB)
    assert record.identifiers == ["contact:crm-1", f"email:{E}", "anon:c1"]


def test_record_round_trips_through_json() -> None:
    won = tp("sales.deal_won", "w", at(days=1), email=E,
             props={"amount": "1234.5", "currency": "EUR", "gross_margin": 0.8})  # fmt: skip
    record, _ = apply_all([*hot_lead(), won], PB)
    assert JourneyRecord.model_validate_json(record.model_dump_json()) == record


def test_snapshot_has_everything_the_read_model_needs() -> None:
    record, _ = apply_all(hot_lead(), PB)
    snap = core.snapshot(record, PB, as_of=at(days=1))
    assert snap.stage == "mql" and snap.version == record.version
    assert snap.identities == [f"email:{E}"]
    assert snap.scores.fit.persona == "marketing-leader"
    assert [t.event_id for t in snap.recent_touchpoints] == ["h1", "h2", "h3"]
    assert snap.last_marketing is not None and snap.last_marketing.event_id == "h3"
    assert snap.last_sales is None
    assert {s.signal_type for s in snap.signals} == {"handoff", "nurture"}
    assert snap.counts.touchpoints == 3 and snap.counts.retained == 3
    assert snap.first_touch is not None and snap.first_touch.channel == "paid_search"
    assert (snap.last_touch_at, snap.as_of) == (at(hours=2), at(days=1))
    assert snap.playbook_version == PB.version
    document = json.loads(snap.model_dump_json())
    assert document["stage"] == "mql"
    assert JourneySnapshot.model_validate(document) == snap


def test_merge_is_a_union_named_after_the_strongest_identifier() -> None:
    a, _ = apply_all([tp("marketing.page_viewed", "1", at(), anon="c1", props={"url": "u"})],
                     PB, customer_id="cus_a")  # fmt: skip
    b, _ = apply_all([tp("marketing.form_submitted", "2", at(minutes=1), email=E,
                         props=FIT_FORM)], PB, customer_id="cus_b")  # fmt: skip
    merged = core.merge(a, b)
    assert merged == core.merge(b, a) == core.merge(merged, a)
    assert merged.customer_id == "cus_b"
    assert [t.event_id for t in merged.touchpoints] == ["1", "2"]
    assert merged.identifiers == [f"email:{E}", "anon:c1"]


def test_absorbing_an_empty_or_own_journey_is_a_no_op() -> None:
    record, _ = apply_all(hot_lead(), PB)
    same = core.absorb(record, record, PB, "x", at())
    assert same.record == record and not same.applied


def test_touchpoints_applied_together_are_folded_and_reconciled_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    views = [
        tp("marketing.page_viewed", f"v{n}", at(minutes=n), email=E, props={"url": "u"})
        for n in (5, 1, 4, 2, 3, 0)  # late ones among them
    ]
    steps: list[str] = []
    reconciles: list[int] = []
    step, reconcile = FoldState.step, records._reconcile

    def counted_step(state: FoldState, touchpoint: Any) -> None:
        steps.append(touchpoint.event_id)
        step(state, touchpoint)

    def counted_reconcile(*args: Any, **kwargs: Any) -> Any:
        reconciles.append(1)
        return reconcile(*args, **kwargs)

    monkeypatch.setattr(FoldState, "step", counted_step)
    monkeypatch.setattr(records, "_reconcile", counted_reconcile)
    memo.forget()
    together = core.apply_touchpoints(core.new_journey("cus_1"), views, PB).record
    assert len(reconciles) == 1
    assert sorted(steps) == sorted(v.event_id for v in views)  # each stepped once
    steps.clear()
    reconciles.clear()
    memo.forget()
    one_at_a_time, _ = apply_all(views, PB, customer_id="cus_1")
    assert len(reconciles) == len(views)
    assert len(steps) > len(views)  # each late one refolds what follows it
    assert together.touchpoints == one_at_a_time.touchpoints
