"""The engagement breakdown kept across evaluations equals a fresh evaluation, item for item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from schemas.journey import BREAKDOWN_LISTED, ScoreItem
from streams import journey as core
from streams.journey import scoring
from streams.journey.breakdown import (
    BreakdownCache,
    ScoreEntry,
    breakdown,
    breakdown_json,
    evaluate_once,
)

from . import builders

T0 = datetime(2024, 3, 1, tzinfo=UTC)
AS_JSON = TypeAdapter(list[ScoreItem])
GAPS = st.sampled_from([0, 1, 7, 60, 599, 3600, 86_400, 40 * 86_400])


@st.composite
def evaluations(draw: st.DrawFn) -> tuple[list[ScoreEntry], list[tuple[int, datetime]], float]:
    """Entries in time order, then (how many of them, evaluated when) questions."""
    at, entries = T0, []
    for n in range(draw(st.integers(1, 60))):
        at += timedelta(seconds=draw(GAPS))
        points = draw(st.sampled_from([1.0, 4.0, 20.0, -10.0, 0.3, 1e6]))
        entries.append((at, points, f"e{n:03d}", "marketing.email_opened", 0))
    questions = []
    for _ in range(draw(st.integers(1, 25))):
        count = draw(st.integers(1, len(entries)))
        # Mostly forward in time like a journey's snapshots; sometimes back (a capture).
        lead = timedelta(seconds=draw(st.integers(0, 90 * 86_400)))
        questions.append((count, entries[count - 1][0] + lead))
    return entries, questions, draw(st.sampled_from([0.01, 1.0, 30.0, 3650.0]))


@settings(max_examples=300, deadline=None)
@given(evaluations())
def test_the_kept_breakdown_is_a_fresh_evaluation(
    case: tuple[list[ScoreEntry], list[tuple[int, datetime]], float],
) -> None:
    entries, questions, half_life = case
    kept = BreakdownCache()
    for count, at in questions:
        items = breakdown(entries[:count], at, half_life, kept)
        fresh = breakdown(entries[:count], at, half_life, BreakdownCache())
        once = evaluate_once(entries[:count], at, half_life, kept)
        assert [i.model_dump_json() for i in items] == [i.model_dump_json() for i in fresh]
        assert [i.model_dump_json() for i in once] == [i.model_dump_json() for i in fresh]
        expected = [
            round(scoring.decayed(p, (at - t).total_seconds(), half_life), 3)
            for t, p, *_ in entries[:count]
        ]
        assert [i.decayed for i in items] == expected


@settings(max_examples=300, deadline=None)
@given(evaluations(), st.lists(st.sampled_from(["items", "json", "both", "refold"]), min_size=25))
def test_the_breakdown_json_kept_per_item_is_what_pydantic_writes(
    case: tuple[list[ScoreEntry], list[tuple[int, datetime]], float], asks: list[str]
) -> None:
    """Asked as items, as JSON or both, after refolds (new entries of the same touchpoints):
    the JSON is pydantic's of a fresh evaluation, byte for byte."""
    entries, questions, half_life = case
    kept = BreakdownCache()
    for (count, at), ask in zip(questions, asks, strict=False):
        if ask == "refold":
            entries = [(t, p, e, k, c + 1) for t, p, e, k, c in entries]
        fresh = breakdown(entries[:count], at, half_life, BreakdownCache())
        if ask in ("items", "both"):
            items = breakdown(entries[:count], at, half_life, kept)
            assert AS_JSON.dump_json(items) == AS_JSON.dump_json(fresh)
        if ask != "items":
            written = breakdown_json(entries[:count], at, half_life, kept)
            assert written == AS_JSON.dump_json(fresh).decode()
            # asked again: nothing changed since
            assert breakdown_json(entries[:count], at, half_life, kept) == written


def test_a_snapshot_written_from_the_kept_json_lists_what_pydantic_writes() -> None:
    # Past `BREAKDOWN_LISTED` items the listed window slides at every append (an hour apart,
    # every item's value moves too); the kept JSON must follow it exactly.
    playbook = core.default_playbook()
    record = core.new_journey("cus_listed")
    for n in range(BREAKDOWN_LISTED + 12):
        when = builders.at(hours=n)
        touchpoint = builders.tp(
            "marketing.email_clicked", f"c{n:03d}", when, email="ada@x.example"
        )
        record = core.apply_touchpoint(record, touchpoint, playbook).record
        _, written = core.snapshot_json(record, playbook)
        snapshot = core.snapshot(record, playbook)
        assert written == snapshot.model_dump_json()
    assert len(snapshot.scores.engagement.breakdown) == BREAKDOWN_LISTED
    assert snapshot.scores.engagement.carried > 0
