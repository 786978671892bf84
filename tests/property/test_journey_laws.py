"""The journey laws, proven over generated journeys (≥ 500 examples each).

A journey is a set of touchpoints and everything else is a pure fold over it, so:

* the same touchpoints in any order, delivered any number of times, give the same journey,
  view and snapshot; a re-delivery leaves no trace at all;
* evaluated event by event, the final *active* signals (ids and content) do not depend on
  the order either, and are those the whole set calls for; replaying the same stream gives the
  same signals, versions included;
* `merge` is commutative, associative and idempotent, and folding a union is merging folds.

`version` counts changes, which depend on the order; the laws compare everything else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.journey import JourneyRecord
from streams import journey as core
from streams import workflow
from streams.journey import churn
from streams.journey import signals as sig
from tests.property.strategies import (
    law_playbook,
    parse,
    touchpoint_documents,
    with_duplicates,
)

PB = law_playbook()
CID = "cus_law"
LAW = settings(max_examples=500, deadline=None)

Docs = list[dict[str, Any]]


def content(record: JourneyRecord) -> dict[str, Any]:
    """The record without its change counter."""
    return record.model_dump(exclude={"version"})


def published(record: JourneyRecord) -> dict[str, Any]:
    """The snapshot without its change counter and signal history."""
    return core.snapshot(record, PB).model_dump(exclude={"version", "signals"})


def active(record: JourneyRecord) -> dict[str, tuple[str, str, str, str]]:
    """The signals currently in force: id → (type, rule, key, content hash)."""
    return {
        e.signal_id: (e.signal_type, e.rule, e.key, e.content_hash)
        for e in record.signal_ledger.values()
        if e.status == "active"
    }


def apply_all(touchpoints: list[core.Touchpoint], customer_id: str = CID) -> tuple[
    JourneyRecord, list[core.Signal]
]:  # fmt: skip
    record = core.new_journey(customer_id)
    emitted: list[core.Signal] = []
    for touchpoint in touchpoints:
        outcome = core.apply_touchpoint(record, touchpoint, PB)
        record = outcome.record
        emitted += outcome.signals
    return record, emitted


def unique_ids(docs: Docs) -> int:
    return len({d["event_id"] for d in docs})


@st.composite
def two_orders(draw: st.DrawFn) -> tuple[Docs, Docs]:
    """The same multiset of deliveries (with conflicts) in two orders, the second with extra
    exact re-deliveries."""
    deliveries = draw(with_duplicates(draw(touchpoint_documents())))
    extra = draw(st.lists(st.sampled_from(deliveries), max_size=5))
    first = draw(st.permutations(deliveries))
    second = draw(st.permutations([*deliveries, *(dict(d) for d in extra)]))
    return first, second


@LAW
@given(two_orders())
def test_fold_ignores_order_and_duplication(orders: tuple[Docs, Docs]) -> None:
    first, second = orders
    a, b = core.fold(CID, parse(first), PB), core.fold(CID, parse(second), PB)
    assert content(a) == content(b)
    assert core.view(a, PB) == core.view(b, PB)
    assert published(a) == published(b)


@LAW
@given(two_orders())
def test_event_by_event_any_order_ends_in_the_same_journey_and_signals(
    orders: tuple[Docs, Docs],
) -> None:
    first, second = orders
    (a, emitted_a), (b, _) = apply_all(parse(first)), apply_all(parse(second))
    assert content(a) | {"signal_ledger": None} == content(b) | {"signal_ledger": None}
    assert core.view(a, PB) == core.view(b, PB)
    assert published(a) == published(b)
    # The signals in force are the ones the whole set of touchpoints calls for.
    expected = core.reevaluate(core.fold(CID, parse(first), PB), PB).record
    assert active(a) == active(b) == active(expected)
    # What was emitted last for each signal is what the ledger says is in force.
    last = {s.signal_id: s for s in emitted_a}
    for signal_id, entry in a.signal_ledger.items():
        assert last[signal_id].version == entry.version
        assert last[signal_id].signal_type == entry.signal_type
    # A re-delivery of anything already seen emits nothing and changes nothing, not even the
    # version (a crash makes the worker handle messages again: see test_workflow_laws).
    again = core.apply_touchpoint(a, parse(first[:1])[0], PB)
    assert again.duplicate and again.signals == [] and again.record == a


@LAW
@given(st.data())
def test_replaying_the_same_stream_gives_the_same_state_and_signals(data: st.DataObject) -> None:
    docs = data.draw(with_duplicates(data.draw(touchpoint_documents())))
    stream = parse(data.draw(st.permutations(docs)))
    first, second = workflow.replay(stream, PB), workflow.replay(parse(stream_docs(stream)), PB)
    assert first.records == second.records
    assert first.signals == second.signals  # ids and versions included
    # A conflicting duplicate that replaces the kept version counts as applied and duplicate.
    assert first.duplicates == len(stream) - unique_ids(docs)
    assert first.applied >= unique_ids(docs)


def stream_docs(stream: list[core.Touchpoint]) -> Docs:
    """The stream as documents again (so the replay starts from fresh objects)."""
    return [t.model_dump(mode="json", exclude_none=True) for t in stream]


@st.composite
def three_records(draw: st.DrawFn) -> tuple[JourneyRecord, JourneyRecord, JourneyRecord]:
    """Three journeys over overlapping touchpoints (conflicts included), with signal ledgers,
    under different customer ids."""
    pool = draw(touchpoint_documents(max_size=20))
    records = []
    for name in ("cus_a", "cus_b", "cus_c"):
        chosen = [d for d in pool if draw(st.booleans())]
        deliveries = draw(with_duplicates(chosen)) if chosen else []
        records.append(apply_all(parse(deliveries), name)[0])
    return records[0], records[1], records[2]


@LAW
@given(three_records())
def test_merge_is_commutative_associative_and_idempotent(
    records: tuple[JourneyRecord, JourneyRecord, JourneyRecord],
) -> None:
    a, b, c = records
    assert core.merge(a, b) == core.merge(b, a)
    assert core.merge(core.merge(a, b), c) == core.merge(a, core.merge(b, c))
    assert core.merge(a, a) == a
    ab = core.merge(a, b)
    assert core.merge(ab, b) == ab


@LAW
@given(st.data())
def test_folding_a_union_is_merging_the_folds(data: st.DataObject) -> None:
    pool = data.draw(touchpoint_documents())
    left = data.draw(with_duplicates([d for d in pool if data.draw(st.booleans())] or pool[:1]))
    right = data.draw(with_duplicates([d for d in pool if data.draw(st.booleans())] or pool[:1]))
    union = core.fold(CID, parse([*left, *right]), PB)
    merged = core.merge(core.fold(CID, parse(left), PB), core.fold(CID, parse(right), PB))
    assert content(union) == content(merged)
    assert core.view(union, PB) == core.view(merged, PB)
    assert published(union) == published(merged)


@LAW
@given(touchpoint_documents())
def test_in_order_compaction_never_corrects_a_signal(docs: Docs) -> None:
    """Beyond the cap (3 here) a stream in event order reaches the same stages and emits the
    same signals, each exactly once: compaction alone never re-issues one. (A signal triggered
    after compaction lists the compacted touchpoints as one carried sum in its breakdown.)"""
    stream = sorted(parse(docs), key=lambda t: t.order_key)
    full, full_signals = apply_all(stream)
    capped = core.new_journey(CID)
    capped_signals: list[core.Signal] = []
    for touchpoint in stream:
        outcome = core.apply_touchpoint(capped, touchpoint, PB, max_retained=3)
        capped, capped_signals = outcome.record, capped_signals + outcome.signals
    a, b = core.view(full, PB), core.view(capped, PB)
    assert (a.stage, a.cycle, a.stage_history) == (b.stage, b.cycle, b.stage_history)
    assert (a.counts_by_type, a.revenue, a.first_touch) == (b.counts_by_type, b.revenue,
                                                            b.first_touch)  # fmt: skip
    assert abs(a.engagement.score - b.engagement.score) <= 0.011
    assert [(s.signal_id, s.signal_type, s.version) for s in full_signals] == [
        (s.signal_id, s.signal_type, s.version) for s in capped_signals
    ]
    # A fall in engagement begins and ends with time (`streams.journey.churn`): in event order
    # too, a recovery withdraws it and a new fall raises it again — news, not corrections.
    falls = {e.signal_id for e in capped.signal_ledger.values() if churn.KEY_MARK in e.key}
    assert all(
        s.version == 1
        for s in capped_signals
        if s.signal_type != "handoff_revoked" and s.signal_id not in falls
    )
    assert {e.signal_id: e.status for e in full.signal_ledger.values()} == {
        e.signal_id: e.status for e in capped.signal_ledger.values()
    }


SETTLE_LAW = settings(max_examples=300, deadline=None)
AT_ONCE = PB.model_copy(update={"signals": PB.signals.model_copy(update={"settle_minutes": 0})})


def close_windows(record: JourneyRecord, playbook: core.Playbook) -> tuple[
    JourneyRecord, list[core.Signal], datetime | None
]:  # fmt: skip
    """Evaluate timers as each settle window closes, the earliest first, until none is open
    (the windows of signals held at different event times close at different times); also
    the time the last one closed (None: none was open)."""
    flushed: list[core.Signal] = []
    closed: datetime | None = None
    for _ in range(len(record.signal_ledger)):
        due = sig.owed_due(record.signal_ledger, playbook)
        if due is None:
            break
        outcome = core.evaluate_timers(record, due, playbook)
        record, closed = outcome.record, due
        flushed += [s for s in outcome.signals if s.signal_type in SENT_TYPES]
    return record, flushed, closed


SENT_TYPES = {"handoff", "handoff_revoked", "nurture", "nurture_withdrawn"}


@SETTLE_LAW
@given(st.data())
def test_coalescing_never_changes_the_final_active_set_nor_what_was_last_sent(
    data: st.DataObject,
) -> None:
    """With or without a settle window, in any order: the same active signals, those the whole
    set calls for; once the windows close nothing is owed, and what was last sent for each
    signal is, in everything material, what the whole set calls for (or its take-back)."""
    docs = data.draw(with_duplicates(data.draw(touchpoint_documents())))
    stream = parse(data.draw(st.permutations(docs)))
    whole = core.reevaluate(core.fold(CID, stream, PB), PB)
    truth = {s.signal_id: s for s in whole.signals}
    at_once = core.new_journey(CID)
    for touchpoint in stream:
        at_once = core.apply_touchpoint(at_once, touchpoint, AT_ONCE).record
    held, emitted = apply_all(stream)
    assert active(held) == active(at_once) == active(whole.record)
    held, flushed, due = close_windows(held, PB)
    assert not any(e.owed for e in held.signal_ledger.values())
    if due is not None:
        # A fall in engagement depends on time itself (`streams.journey.churn`): the timer that
        # closes the windows judges it as of `due`, so the truth is the whole set's as of then.
        truth |= {s.signal_id: s for s in core.evaluate_timers(whole.record, due, PB).signals}
    last = {s.signal_id: s for s in [*emitted, *flushed]}
    for signal_id, entry in held.signal_ledger.items():
        if entry.origin != "event" or entry.status == "superseded":
            continue
        sent = last[signal_id]
        assert (sent.version, sent.signal_type) == (entry.version, entry.signal_type)
        if entry.status == "active":
            assert sig.material_hash(sent, PB) == sig.material_hash(truth[signal_id], PB)
        else:
            assert sent.signal_type in ("handoff_revoked", "nurture_withdrawn")
