"""Incremental fold == full fold, proven over generated histories (≥ 300 examples).

The fold state is kept with the journey in process memory (`streams.journey.memo`): an in-order
touchpoint steps the previous state once, a late one refolds from the nearest checkpoint, and
compaction refolds from the new horizon. For any arrival order, duplication, merge history
(absorbing a journey built separately, sharing some touchpoints) and retention cap:

* every operation gives the same record, the same signals and the same KPI facts (asked for
  after every operation, like the worker does, so their walk is kept and extended) as when
  every state is folded and every walk made from scratch (the memo dropped before each
  operation);
* the state kept for the final record equals a full fold of that record, bit for bit, and so do
  everything derived from it: view, snapshot, KPI facts, the next timer;
* the KPI facts only the retained touchpoints know (NPS answers, voices, won deals' margins)
  are those of the retained touchpoints, however they were compacted or replaced;
* under the cap, the view equals that of a journey folded from scratch from all touchpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.vocabulary import (
    DealWon,
    FeedbackRecorded,
    FormSubmitted,
    ObjectionRaised,
    ProspectAdded,
)
from schemas.journey import JourneyRecord
from schemas.kpis import JourneyFacts
from streams import journey as core
from streams.journey import kpis, memo
from streams.journey.fold import FoldState, summarize
from streams.journey.record import derive, next_timer_due
from tests.property.strategies import law_playbook, parse, touchpoint_documents, with_duplicates
from tests.unit.journey.test_accounts import latest_named_walk

PB = law_playbook()
CID, OTHER = "cus_law", "cus_other"
LAW = settings(max_examples=300, deadline=None)


@dataclass(frozen=True)
class History:
    """A stream for CID and a journey built separately, absorbed after `absorb_at` of them."""

    stream: list[core.Touchpoint]
    other: list[core.Touchpoint]
    absorb_at: int
    cap: int


@st.composite
def histories(draw: st.DrawFn) -> History:
    """Any order, duplicates, an absorb of a journey sharing some touchpoints, any cap."""
    docs = draw(touchpoint_documents(prefix="a", max_size=30))
    stream = parse(draw(with_duplicates(docs)))
    stream = draw(st.permutations(stream))
    own = draw(touchpoint_documents(prefix="b", min_size=0, max_size=12))
    shared = [d for d in docs if draw(st.booleans())]
    other = draw(st.permutations(parse([*own, *shared])))
    absorb_at = draw(st.integers(0, len(stream)))
    cap = draw(st.sampled_from([core.MAX_RETAINED_TOUCHPOINTS, 3, 8]))
    return History(list(stream), list(other), absorb_at, cap)


def play(history: History, fresh: bool) -> tuple[JourneyRecord, list[Any]]:
    """Run the history event by event; `fresh`: fold every state from scratch. Returns the
    final record and, in order, the signals of every operation and the KPI facts after it."""
    cap, seen = history.cap, []

    def apply(record: JourneyRecord, tp: core.Touchpoint) -> JourneyRecord:
        if fresh:
            memo.forget()
        outcome = core.apply_touchpoint(record, tp, PB, max_retained=cap)
        facts = kpis.journey_facts(outcome.record, PB)
        assert retained_facts(facts) == of_retained(outcome.record)
        assert_published_as_fresh(outcome.record)
        seen.extend([*outcome.signals, facts])
        return outcome.record

    other = core.new_journey(OTHER)
    for tp in history.other:
        other = apply(other, tp)
    record = core.new_journey(CID)
    for n, tp in enumerate(history.stream):
        if n == history.absorb_at:
            if fresh:
                memo.forget()
            outcome = core.absorb(record, other, PB, "link", tp.occurred_at, max_retained=cap)
            record = outcome.record
            seen.extend([*outcome.signals, kpis.journey_facts(record, PB)])
            assert_published_as_fresh(record)
        record = apply(record, tp)
    return record, seen


def assert_published_as_fresh(record: JourneyRecord) -> None:
    """The snapshot's JSON written from what is kept per item, and the account named without
    a walk, are what pydantic writes and what a walk over every touchpoint finds."""
    bare, written = core.snapshot_json(record, PB)
    snapshot = core.snapshot(record, PB)
    assert written == snapshot.model_dump_json()
    assert not bare.scores.engagement.breakdown
    assert bare == snapshot.model_copy(update={"scores": bare.scores})
    assert snapshot.account_id == core.account_of(record, PB) == latest_named_walk(record)


def of_retained(record: JourneyRecord) -> tuple[list[Any], list[Any], list[Any]]:
    """NPS answers, voices (without their stage) and won margins, from the retained
    touchpoints directly (the definition)."""
    nps, voices, margins = [], [], []
    for tp in record.touchpoints:
        said: list[tuple[str, str]] = []
        if isinstance(tp, FormSubmitted | ProspectAdded):
            said = [("pain_point", p) for p in tp.properties.pain_points]
        elif isinstance(tp, FeedbackRecorded):
            said = [("pain_point", p) for p in tp.properties.pain_points]
            said += [("motivation", m) for m in tp.properties.motivations]
            if tp.properties.nps is not None:
                nps.append((kpis.micros(tp.occurred_at), tp.properties.nps))
        elif isinstance(tp, ObjectionRaised):
            said = [("objection", tp.properties.category)]
        normalised = sorted({(k, v.strip().lower()) for k, v in said})
        voices += [(kpis.micros(tp.occurred_at), k, v) for k, v in normalised if v]
        if isinstance(tp, DealWon) and tp.properties.gross_margin is not None:
            margins.append((kpis.micros(tp.occurred_at), tp.properties.gross_margin))
    return nps, voices, margins


def retained_facts(facts: JourneyFacts) -> tuple[list[Any], list[Any], list[Any]]:
    """The same, as the facts say."""
    return (
        [(n.at, n.score) for n in facts.nps],
        [(v.at, v.kind, v.value) for v in facts.voices],
        [(w.at, w.gross_margin) for w in facts.won if w.gross_margin is not None],
    )


def fields(state: FoldState) -> dict[str, Any]:
    """Everything a fold state holds, comparable (floats compare bit for bit)."""
    found = {
        k: v
        for k, v in vars(state).items()
        if k
        not in (
            *("playbook", "guards", "since_horizon", "_fit", "score_items"),
            *("last_marketing", "last_sales"),
        )
    }
    found["fingerprint"] = state.fingerprint()
    found["last"] = [summarize(t) for t in (*state.last_marketing, *state.last_sales)]
    found["fit"] = state.fit()
    return found


def derived(record: JourneyRecord) -> tuple[Any, ...]:
    """What the worker derives from a record per change."""
    due: datetime | None = next_timer_due(record, PB)
    return (
        fields(derive(record, PB)),
        core.view(record, PB),
        core.snapshot(record, PB),
        kpis.journey_facts(record, PB),
        due,
    )


@LAW
@given(histories())
def test_incremental_fold_equals_the_full_fold(history: History) -> None:
    memo.forget()
    record, seen = play(history, fresh=False)
    incremental = derived(record)
    memo.forget()
    assert derived(record) == incremental
    again, seen_again = play(history, fresh=True)
    assert again == record
    assert seen_again == seen
    assert derived(again) == incremental


@LAW
@given(histories())
def test_under_the_cap_the_view_is_that_of_a_fold_from_scratch(history: History) -> None:
    memo.forget()
    history = History(history.stream, [], len(history.stream), core.MAX_RETAINED_TOUCHPOINTS)
    record, _ = play(history, fresh=False)
    memo.forget()
    scratch = core.fold(CID, history.stream, PB)
    assert core.view(record, PB) == core.view(scratch, PB)


def active_truth(record: JourneyRecord) -> list[tuple[str, str]]:
    """The signals a journey calls for: its ledger's active entries and their content."""
    return sorted(
        (e.signal_id, e.content_hash) for e in record.signal_ledger.values() if e.status == "active"
    )


@LAW
@given(histories(), st.data())
def test_touchpoints_applied_together_end_as_one_at_a_time(
    history: History, data: st.DataObject
) -> None:
    """A batch's consecutive touchpoints of one customer are folded and reconciled once
    (`apply_touchpoints`): the journey ends with the same touchpoints, identifiers, compacted
    prefix, fold state, desired signals and version as one at a time. Only delivery history
    differs: the signals an in-between state called for, and corrections held in a settle
    window (one at a time, a first send may need one; together, it goes out as it ends)."""
    stream, cap = history.stream, history.cap
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)))))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    memo.forget()
    one = core.new_journey(CID)
    for tp in stream:
        one = core.apply_touchpoint(one, tp, PB, max_retained=cap).record
    together = core.new_journey(CID)
    flags: list[tuple[bool, bool]] = []
    for chunk in filter(None, chunks):
        done = core.apply_touchpoints(together, chunk, PB, max_retained=cap)
        flags += zip(done.applied, done.duplicate, strict=True)
        together = done.record
    for field in ("touchpoints", "compacted", "identifiers", "playbook_version", "version"):
        assert getattr(together, field) == getattr(one, field)
    assert active_truth(together) == active_truth(one)
    assert fields(derive(together, PB)) == fields(derive(one, PB))
    seen = {tp.event_id for tp in stream}
    assert sum(applied and not duplicate for applied, duplicate in flags) == len(seen)
    memo.forget()  # and the state kept is a full fold's
    assert fields(derive(together, PB)) == fields(derive(one, PB))
