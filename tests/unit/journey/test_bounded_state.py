"""The retention cap: boundaries, the compacted prefix, late touchpoints behind the horizon."""

from __future__ import annotations

import pytest

from schemas.journey import JourneyRecord
from streams import journey as core
from streams.journey.record import compaction_chunk

from .builders import FIT_FORM, apply_all, at, tp

PB = core.default_playbook()
CAP = 5
E = "ada@lovelace.example"


def journey(n: int) -> list[core.Touchpoint]:
    """A form, then page views, a won deal at the end — one touchpoint per hour, in order."""
    events = [tp("marketing.form_submitted", "t00", at(), email=E, props=FIT_FORM,
                 campaign_id="launch", channel="paid_search")]  # fmt: skip
    events += [
        tp("marketing.webinar_attended", f"t{i:02d}", at(hours=i), email=E) for i in range(1, n)
    ]
    return events


@pytest.mark.parametrize("n", [CAP - 1, CAP])
def test_at_or_under_the_cap_nothing_is_compacted(n: int) -> None:
    record, _ = apply_all(journey(n), PB, max_retained=CAP)
    assert record.compacted is None and len(record.touchpoints) == n


def test_one_over_the_cap_compacts_the_oldest() -> None:
    record, _ = apply_all(journey(CAP + 1), PB, max_retained=CAP)
    assert len(record.touchpoints) == CAP
    assert record.touchpoints[0].event_id == "t01"
    prefix = record.compacted
    assert prefix is not None
    assert (prefix.horizon_event_id, prefix.horizon_at) == ("t00", at())
    assert [s.event_id for s in prefix.touchpoints] == ["t00"]
    assert prefix.state.stage == "lead" and prefix.state.carry == 20
    assert record.seen_event_ids() == {f"t{i:02d}" for i in range(CAP + 1)}


def test_in_order_the_capped_view_matches_the_uncapped_one() -> None:
    events = journey(12)
    capped, capped_signals = apply_all(events, PB, max_retained=CAP)
    full, full_signals = apply_all(events, PB)
    a, b = core.view(capped, PB), core.view(full, PB)
    for name in (
        "stage",
        "cycle",
        "stage_history",
        "fit",
        "firmographics",
        "campaigns",
        "counts_by_type",
        "touchpoint_count",
        "first_touch",
        "last_touch_at",
    ):
        assert getattr(a, name) == getattr(b, name), name  # fmt: skip
    assert a.engagement.score == pytest.approx(b.engagement.score, abs=0.01)
    assert len(a.engagement.breakdown) == CAP and a.engagement.carried > 0
    # Compaction never changes a signal: the same signals, no corrections.
    assert capped_signals == full_signals
    assert capped.signal_ledger == full.signal_ledger
    assert a.first_touch is not None and a.first_touch.campaign_id == "launch"


def test_a_late_touchpoint_behind_the_horizon_only_updates_the_aggregates() -> None:
    record, _ = apply_all(journey(12), PB, max_retained=CAP)
    before = core.view(record, PB)
    late = tp(
        "sales.deal_won",
        "late",
        at(minutes=-30),
        email=E,
        props={"amount": "900", "currency": "EUR"},
        campaign_id="old",
        channel="event",
    )
    outcome = core.apply_touchpoint(record, late, PB, max_retained=CAP)
    after = core.view(outcome.record, PB)
    assert outcome.applied and not outcome.duplicate and outcome.signals == []
    assert after.stage_history == before.stage_history  # the won deal is behind the horizon
    assert after.engagement == before.engagement
    assert str(after.revenue["EUR"]) == "900"
    assert after.counts_by_type["sales.deal_won"] == 1 and after.touchpoint_count == 13
    assert after.first_touch is not None and after.first_touch.event_id == "late"
    assert len(outcome.record.touchpoints) == CAP


def test_a_redelivered_compacted_touchpoint_is_a_duplicate() -> None:
    events = journey(CAP + 3)
    record, _ = apply_all(events, PB, max_retained=CAP)
    outcome = core.apply_touchpoint(record, events[0], PB, max_retained=CAP)
    assert outcome.duplicate and not outcome.applied and outcome.signals == []
    assert outcome.record == record  # a repeat leaves no trace, not even a new version


def test_a_late_touchpoint_after_the_horizon_still_counts_in_full() -> None:
    record, _ = apply_all(journey(12), PB, max_retained=CAP)
    late = tp("sales.objection_raised", "obj", at(hours=10, minutes=30), email=E,
              props={"category": "timing"})  # fmt: skip
    outcome = core.apply_touchpoint(record, late, PB, max_retained=CAP)
    assert [o.category for o in core.view(outcome.record, PB).open_objections] == ["timing"]
    assert len(outcome.record.touchpoints) == CAP


def test_a_compacted_record_survives_json() -> None:
    record, _ = apply_all(journey(12), PB, max_retained=CAP)
    assert JourneyRecord.model_validate_json(record.model_dump_json()) == record


def test_snapshot_counts_compacted_touchpoints() -> None:
    record, _ = apply_all(journey(12), PB, max_retained=CAP)
    counts = core.snapshot(record, PB).counts
    assert (counts.touchpoints, counts.retained) == (12, CAP)


def test_fold_from_scratch_compacts_like_an_in_order_stream() -> None:
    events = journey(12)
    folded = core.fold("cus_test", list(reversed(events)), PB, max_retained=CAP)
    streamed, _ = apply_all(events, PB, max_retained=CAP)
    assert folded.touchpoints == streamed.touchpoints
    a, b = core.view(folded, PB), core.view(streamed, PB)
    assert a.stage_history == b.stage_history
    assert a.engagement.score == pytest.approx(b.engagement.score, abs=0.01)


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        core.apply_touchpoint(core.new_journey("c"), journey(1)[0], PB, max_retained=0)


def test_a_late_touchpoint_between_horizon_and_trigger_still_corrects_the_signal() -> None:
    views = [tp("marketing.page_viewed", f"v{i}", at(hours=i), email=E, props={"url": "u"})
             for i in range(8)]  # fmt: skip
    hot = [
        tp("marketing.form_submitted", "f8", at(hours=8), email=E, props=FIT_FORM),
        tp("marketing.webinar_attended", "w9", at(hours=9), email=E),
        tp("marketing.webinar_attended", "w10", at(hours=10), email=E),
    ]
    record, signals = apply_all([*views, *hot], PB, max_retained=CAP)
    [handoff] = [s for s in signals if s.signal_type == "handoff"]
    assert record.compacted is not None and record.compacted.horizon_event_id == "v5"
    assert handoff.version == 1 and handoff.trigger_event_id == "w9"
    late = tp("sales.objection_raised", "o", at(hours=8, minutes=30), email=E,
              props={"category": "competitor"})  # fmt: skip
    outcome = core.apply_touchpoint(record, late, PB, max_retained=CAP)
    [correction] = [s for s in outcome.signals if s.signal_type == "handoff"]
    assert (correction.signal_id, correction.version) == (handoff.signal_id, 2)
    assert [o.category for o in correction.open_objections] == ["competitor"]
    again = core.apply_touchpoint(outcome.record, late, PB, max_retained=CAP)
    assert again.signals == [] and again.duplicate


# --- compaction in chunks (a quarter of the cap at a time) --------------------------------

WIDE = 8  # chunk 2


def test_compaction_runs_in_chunks_of_a_quarter_of_the_cap() -> None:
    assert [compaction_chunk(n) for n in (1, 3, 5, 8, 500)] == [1, 1, 1, 2, 125]
    record, _ = apply_all(journey(WIDE), PB, max_retained=WIDE)
    assert record.compacted is None and len(record.touchpoints) == WIDE
    record, _ = apply_all(journey(WIDE + 1), PB, max_retained=WIDE)
    # One over the cap compacts a whole chunk: the oldest two.
    assert [t.event_id for t in record.touchpoints][:1] == ["t02"]
    assert len(record.touchpoints) == WIDE - 1
    assert record.compacted is not None and record.compacted.horizon_event_id == "t01"
    assert [s.event_id for s in record.compacted.touchpoints] == ["t00", "t01"]


def test_in_order_the_retained_touchpoints_never_exceed_the_cap() -> None:
    record = core.new_journey("cus_test")
    sizes = []
    for touchpoint in journey(30):
        record = core.apply_touchpoint(record, touchpoint, PB, max_retained=WIDE).record
        sizes.append(len(record.touchpoints))
    assert max(sizes) == WIDE
    # Between compactions, appends are cheap: the retained count climbs back to the cap.
    assert sizes[8:14] == [7, 8, 7, 8, 7, 8]
    assert core.snapshot(record, PB).counts.touchpoints == 30


@pytest.mark.parametrize("n", range(WIDE, WIDE + 9))
def test_from_scratch_and_in_order_keep_the_same_touchpoints(n: int) -> None:
    events = journey(n)
    folded = core.fold("cus_test", list(reversed(events)), PB, max_retained=WIDE)
    streamed, _ = apply_all(events, PB, max_retained=WIDE)
    assert folded.touchpoints == streamed.touchpoints
    if streamed.compacted is not None:
        assert folded.compacted is not None
        assert folded.compacted.horizon_event_id == streamed.compacted.horizon_event_id
        assert folded.compacted.touchpoints == streamed.compacted.touchpoints
