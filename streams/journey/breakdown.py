"""The engagement breakdown: one `ScoreItem` per touchpoint with points, decayed to a time.

An item's published value is its points decayed to the evaluation time, rounded to 3 decimals;
it changes only every so many minutes or days. A journey's snapshot lists one item per retained
touchpoint with points (up to the retention cap), re-evaluated at every change, so the items
are kept (`BreakdownCache`, shared by a fold state and its clones: values, not state) with the
span of evaluation times over which each one's rounded value holds, and so is the last whole
breakdown with the span all its items hold for. A change then costs its new items, plus the
items whose span it left. The items are the ones a fresh evaluation builds, value for value.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.journey import ScoreItem
from streams.journey import scoring

ScoreEntry = tuple[datetime, float, str, str, int]
"""A touchpoint with points, as the fold keeps it: (time, points, event id, type, cycle)."""

FOREVER = 1 << 62
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(at: datetime) -> int:
    since = at - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


@dataclass(slots=True)
class _Built:  # never changed once made (not frozen: a frozen __init__ costs more)
    entry: ScoreEntry
    since: int  # µs: the span of evaluation times the item's value holds for
    until: int
    item: ScoreItem


@dataclass
class _Whole:
    last: ScoreEntry  # the entry the breakdown ends with (the same object: the same prefix)
    count: int
    since: int  # µs: the earliest evaluation time all its items hold from
    items: list[ScoreItem]
    expiring: list[tuple[int, int]]  # a heap of (until when an item holds, its position)
    fragments: list[str] = field(default_factory=list)
    """Each item's JSON, as `breakdown_json` last wrote it ("" where it changed since)."""
    changed: set[int] = field(default_factory=set)
    """Positions whose item changed since `breakdown_json` last wrote the fragments."""


@dataclass
class BreakdownCache:
    """Items built so far, by event id, and the last whole breakdown."""

    built: dict[str, _Built] = field(default_factory=dict)
    whole: _Whole | None = None
    once: dict[str, ScoreItem] = field(default_factory=dict)
    """Items of `evaluate_once`, by event id."""


def evaluate_once(
    entries: Sequence[ScoreEntry], at: datetime, half_life: float, cache: BreakdownCache
) -> list[ScoreItem]:
    """The breakdown as of `at`, for a question asked once (a signal's facts while folding):
    every item evaluated, none kept with a span (cheaper than `breakdown` when not asked
    again)."""
    items: list[ScoreItem] = []
    once = cache.once
    for t, points, event_id, type_, _ in entries:
        value = round(scoring.decayed(points, (at - t).total_seconds(), half_life), 3)
        item = once.get(event_id)
        if (
            item is None
            or item.decayed != value
            or item.occurred_at != t
            or item.points != points
            or item.type != type_
        ):
            item = ScoreItem(
                event_id=event_id, type=type_, occurred_at=t, points=points, decayed=value
            )
            once[event_id] = item
        items.append(item)
    return items


def breakdown(
    entries: Sequence[ScoreEntry], at: datetime, half_life: float, cache: BreakdownCache
) -> list[ScoreItem]:
    """The breakdown of `entries` as of `at` (a fresh list)."""
    at_us = _us(at)
    whole, cache.whole = cache.whole, None  # worked on in place, put back at the end
    if (
        whole is None
        or whole.count > len(entries)
        or at_us < whole.since
        or entries[whole.count - 1] is not whole.last
    ):
        # The fold only appends entries: the same object at the same place means the same
        # entries before it. Anything else: every item again (each kept while it holds).
        whole = _Whole(entries[0], 0, at_us, [], []) if entries else None
    if whole is None:
        return []
    items, expiring = whole.items, whole.expiring
    while expiring and expiring[0][0] < at_us:
        _, n = heapq.heappop(expiring)
        kept = _item(entries[n], at, at_us, half_life, cache.built)
        if items[n] is not kept.item:
            items[n] = kept.item
            whole.changed.add(n)
        heapq.heappush(expiring, (kept.until, n))
        whole.since = max(whole.since, kept.since)
    for n in range(whole.count, len(entries)):
        kept = _item(entries[n], at, at_us, half_life, cache.built)
        items.append(kept.item)
        whole.changed.add(n)
        heapq.heappush(expiring, (kept.until, n))
        whole.since = max(whole.since, kept.since)
    whole.count, whole.last = len(entries), entries[-1]
    cache.whole = whole
    return list(items)


def breakdown_json(items: Sequence[ScoreItem], cache: BreakdownCache) -> str:
    """`items` as JSON, exactly as pydantic writes the list; when they are the last whole
    `breakdown` of `cache`, from the JSON kept per item (only items changed since are
    written again: a snapshot lists up to the retention cap of them on every change)."""
    whole = cache.whole
    if (
        whole is None
        or len(whole.items) != len(items)
        or not all(map(operator.is_, whole.items, items))
    ):
        return "[" + ",".join(item.model_dump_json() for item in items) + "]"
    fragments = whole.fragments
    if len(fragments) < len(items):
        fragments.extend([""] * (len(items) - len(fragments)))
    for n in whole.changed:
        fragments[n] = items[n].model_dump_json()
    whole.changed.clear()
    return "[" + ",".join(fragments) + "]"


def _item(
    entry: ScoreEntry, at: datetime, at_us: int, half_life: float, built: dict[str, _Built]
) -> _Built:
    kept = built.get(entry[2])
    if kept is None or kept.entry is not entry or not kept.since <= at_us <= kept.until:
        kept = _build(entry, at, at_us, half_life, kept)
        built[entry[2]] = kept
    return kept


def _build(
    entry: ScoreEntry, at: datetime, at_us: int, half_life: float, kept: _Built | None
) -> _Built:
    t, points, event_id, type_, _ = entry
    exact = scoring.decayed(points, (at - t).total_seconds(), half_life)
    value = round(exact, 3)
    item = None if kept is None else kept.item
    if (
        item is None
        or item.decayed != value
        or item.occurred_at != t
        or item.points != points
        or item.type != type_
    ):
        item = ScoreItem(event_id=event_id, type=type_, occurred_at=t, points=points, decayed=value)
    return _Built(entry, at_us, _rounded_until(entry, exact, value, at, half_life), item)


def _rounded_until(
    entry: ScoreEntry, exact: float, value: float, at: datetime, half_life: float
) -> int:
    """The latest evaluation time (µs) up to which the item's rounded value stays `value`,
    found from the decay curve and checked with the very computation; `at` when not shown.

    The decayed value moves monotonically towards 0 as the evaluation time grows, so it
    rounds to `value` at every time between two at which it does. Kept clear of both
    rounding edges by far more than the error of the float operations: a value within
    1e-12 of the far edge is not cached, the near edge is approached no closer than a second.
    """
    t, points = entry[0], entry[1]
    at_us = _us(at)
    if round(exact * (1 + 1e-12), 3) != value:
        return at_us
    edge = abs(value) - 0.0005
    if edge <= 0:
        return FOREVER  # it rounds to 0 now, and only gets closer to 0
    age = half_life * scoring.SECONDS_PER_DAY * math.log2(abs(points) / edge)
    age -= max(1.0, age * 1e-9)
    try:
        until = t + timedelta(seconds=age)
    except OverflowError:
        return at_us
    if until <= at:
        return at_us
    held = round(scoring.decayed(points, (until - t).total_seconds(), half_life), 3) == value
    return _us(until) if held else at_us
