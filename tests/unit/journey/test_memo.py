"""The fold states kept in process memory: bounded, and not held for journeys that are gone.

The states are a cache (the laws in tests/property/test_incremental_laws.py show a journey's
outcome does not depend on what is kept); what is tested here is what they cost in memory and
in refolds: a merged-away journey gives its place up at once, and the bound holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams import journey as core
from streams.journey import memo
from streams.journey.record import moved_away

from .builders import at, tp

PB = core.default_playbook()


@pytest.fixture(autouse=True)
def default_bound() -> Iterator[None]:
    memo.forget()
    kept = memo.JOURNEYS_KEPT
    yield
    memo.keep_at_most(kept)
    memo.forget()


def kept(record: core.JourneyRecord) -> bool:
    entry = memo._KEPT.get((id(record.touchpoints), id(record.compacted)))
    return entry is not None and entry.touchpoints is record.touchpoints


def journey_of(name: str, views: int) -> core.JourneyRecord:
    record = core.new_journey(f"cus_{name}")
    for n in range(views):
        event = tp("marketing.page_viewed", f"{name}{n}", at(minutes=n),
                   email=f"{name}@b.example", props={"url": "u"})  # fmt: skip
        record = core.apply_touchpoint(record, event, PB).record
    return record


def test_an_absorb_keeps_the_merged_journeys_state_and_drops_those_it_merged() -> None:
    ours, theirs = journey_of("ours", 4), journey_of("theirs", 3)
    assert kept(ours) and kept(theirs)
    merged = core.absorb(ours, theirs, PB, "link", at(days=1)).record
    assert not kept(ours)
    assert not kept(theirs)
    assert kept(merged)
    assert len(memo._KEPT) == 1


def test_a_redelivered_absorb_drops_nothing() -> None:
    ours, theirs = journey_of("ours", 2), journey_of("theirs", 2)
    merged = core.absorb(ours, theirs, PB, "link", at(days=1)).record
    again = core.absorb(merged, theirs, PB, "link", at(days=1))
    assert again.duplicate and again.record is merged
    assert kept(merged)


def test_at_most_the_bound_is_kept_the_least_recently_used_going_first() -> None:
    core.keep_fold_states(3)
    journeys = [journey_of(f"j{n}", 2) for n in range(5)]
    assert len(memo._KEPT) == 3
    assert [kept(j) for j in journeys] == [False, False, True, True, True]
    memo.lookup(journeys[2], PB)  # used again: the last to go
    memo.lookup(journeys[0], PB)  # folded again, and kept
    assert [kept(j) for j in journeys] == [True, False, True, False, True]


def test_lowering_the_bound_drops_states_at_once() -> None:
    for n in range(4):
        journey_of(f"j{n}", 1)
    core.keep_fold_states(2)
    assert len(memo._KEPT) == 2


def test_a_bound_under_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        core.keep_fold_states(0)


def test_a_journey_that_moved_away_goes_first_yet_stays_for_its_absorb() -> None:
    core.keep_fold_states(3)
    theirs = journey_of("theirs", 3)
    ours = journey_of("ours", 2)
    moved_away(theirs)
    assert kept(theirs)  # still there for the absorb on its way
    merged = core.absorb(ours, theirs, PB, "link", at(days=1)).record
    assert kept(merged) and not kept(theirs)
    moved = journey_of("moved", 1)
    moved_away(moved)
    others = [journey_of(f"j{n}", 1) for n in range(2)]
    assert not kept(moved)  # room was needed: it went first
    assert kept(merged) and all(kept(j) for j in others)
