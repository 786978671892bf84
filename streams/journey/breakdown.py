"""The engagement breakdown: one `ScoreItem` per touchpoint with points, decayed to a time.

A breakdown lists the latest `BREAKDOWN_LISTED` touchpoints with points; the engagement of the
others is published as one sum (`EngagementScore.carried`). Listing every retained touchpoint
(up to the retention cap of 500) made every change cost a rewrite of every item whenever
touchpoints come hours or days apart (each item's decayed value then moves), and made a
snapshot grow with the journey; readers show the latest few (the dashboard 8, `tandem journey`
10).

An item's published value is its points decayed to the evaluation time, rounded to 3 decimals;
it changes only every so many minutes or days. A journey's snapshot lists its items,
re-evaluated at every change, so the items are kept (`BreakdownCache`, shared by a fold state
and its clones: values, not state) with the span of evaluation times over which each one's
rounded value holds, and so is the last whole breakdown with the span all its items hold for.
A change then costs its new items, plus the items whose span it left. The items are the ones a
fresh evaluation builds, value for value.

The snapshot's JSON (`breakdown_json`) is kept the same way, one JSON text per item, without
building the items: an item whose value changed is written as its touchpoint's fixed part and
the new value, as pydantic writes them.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

import pydantic_core

from schemas.journey import ScoreItem
from streams.journey import scoring
from streams.journey.trusted import trusted

ScoreEntry = tuple[datetime, float, str, str, int]
"""A touchpoint with points, as the fold keeps it: (time, points, event id, type, cycle)."""

FOREVER = 1 << 62
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(at: datetime) -> int:
    since = at - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


@dataclass(slots=True)
class _Built:  # its span and value never change once made; item and JSON are made on need
    entry: ScoreEntry
    since: int  # µs: the span of evaluation times the item's value holds for
    until: int
    value: float  # the decayed points, rounded
    t_us: int  # the entry's time, µs
    item: ScoreItem | None = None
    json: str | None = None
    head: str | None = None  # the item's JSON up to its value (the value is its last field)


Part = TypeVar("Part")


@dataclass
class _Whole(Generic[Part]):
    last: ScoreEntry  # the entry the breakdown ends with (the same object: the same prefix)
    count: int
    since: int  # µs: the earliest evaluation time all its items hold from
    parts: list[Part]  # the items, or their JSON
    expiring: list[tuple[int, int]]  # a heap of (until when an item holds, its position)


@dataclass
class BreakdownCache:
    """Items built so far, by event id, and the last whole breakdown (as items, as JSON)."""

    built: dict[str, _Built] = field(default_factory=dict)
    whole: _Whole[ScoreItem] | None = None
    written: _Whole[str] | None = None
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
            item = trusted(
                ScoreItem, event_id=event_id, type=type_, occurred_at=t, points=points,
                decayed=value,
            )  # fmt: skip
            once[event_id] = item
        items.append(item)
    return items


def breakdown(
    entries: Sequence[ScoreEntry], at: datetime, half_life: float, cache: BreakdownCache
) -> list[ScoreItem]:
    """The breakdown of `entries` as of `at` (a fresh list)."""
    whole, cache.whole = cache.whole, None  # worked on in place, put back at the end
    whole = _advance(whole, entries, at, half_life, cache.built, _item_of)
    cache.whole = whole
    return [] if whole is None else list(whole.parts)


def breakdown_json(
    entries: Sequence[ScoreEntry], at: datetime, half_life: float, cache: BreakdownCache
) -> str:
    """`breakdown(entries, at, ...)` as JSON, exactly as pydantic writes the list, from the
    JSON kept per item (a snapshot lists up to the retention cap of them on every change)."""
    written, cache.written = cache.written, None
    written = _advance(written, entries, at, half_life, cache.built, _json_of)
    cache.written = written
    return "[]" if written is None else "[" + ",".join(written.parts) + "]"


def _advance(
    whole: _Whole[Part] | None,
    entries: Sequence[ScoreEntry],
    at: datetime,
    half_life: float,
    built: dict[str, _Built],
    part_of: Callable[[_Built], Part],
) -> _Whole[Part] | None:
    """The whole breakdown as of `at`, from the last one: the items whose span `at` left
    again, and the entries appended since."""
    at_us = _us(at)
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
        return None
    parts, expiring = whole.parts, whole.expiring
    while expiring and expiring[0][0] < at_us:
        _, n = heapq.heappop(expiring)
        kept = _item(entries[n], at, at_us, half_life, built)
        parts[n] = part_of(kept)
        heapq.heappush(expiring, (kept.until, n))
        whole.since = max(whole.since, kept.since)
    for n in range(whole.count, len(entries)):
        kept = _item(entries[n], at, at_us, half_life, built)
        parts.append(part_of(kept))
        heapq.heappush(expiring, (kept.until, n))
        whole.since = max(whole.since, kept.since)
    whole.count, whole.last = len(entries), entries[-1]
    return whole


def _item_of(kept: _Built) -> ScoreItem:
    if kept.item is None:
        kept.item = _new_item(kept)
    return kept.item


def _new_item(kept: _Built) -> ScoreItem:
    t, points, event_id, type_, _ = kept.entry
    value = kept.value
    return ScoreItem(event_id=event_id, type=type_, occurred_at=t, points=points, decayed=value)


_VALUE = '"decayed":'


def _json_of(kept: _Built) -> str:
    if kept.json is None:
        if kept.head is None:
            # Not kept: the JSON path needs no items (they would only take memory).
            written = (kept.item or _new_item(kept)).model_dump_json()
            kept.head = written[: written.rindex(_VALUE) + len(_VALUE)]
            kept.json = written
        else:
            # pydantic writes a float field as it writes a lone float.
            kept.json = kept.head + pydantic_core.to_json(kept.value).decode() + "}"
    return kept.json


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
    t, points = entry[0], entry[1]
    exact = scoring.decayed(points, (at - t).total_seconds(), half_life)
    value = round(exact, 3)
    same = kept is not None and _same_touchpoint(kept.entry, entry)
    t_us = kept.t_us if same and kept is not None else _us(t)
    until = _rounded_until(points, t_us, exact, value, at_us, half_life)
    fresh = _Built(entry, at_us, until, value, t_us)
    if same and kept is not None:
        fresh.head = kept.head  # the same touchpoint: the same fixed part
        if kept.value == value:  # and the same value: the same item and JSON
            fresh.item, fresh.json = kept.item, kept.json
    return fresh


def _same_touchpoint(kept: ScoreEntry, entry: ScoreEntry) -> bool:
    # A refold makes new entries of the same touchpoints: the same time object, points and
    # type make the same item (the cycle is not part of it).
    return kept is entry or (
        kept[0] is entry[0] and kept[1] == entry[1] and kept[2] == entry[2] and kept[3] == entry[3]
    )


def _rounded_until(
    points: float, t_us: int, exact: float, value: float, at_us: int, half_life: float
) -> int:
    """The latest evaluation time (µs) up to which the item's rounded value stays `value`,
    found from the decay curve and checked with the very computation; `at_us` when not shown.

    The decayed value moves monotonically towards 0 as the evaluation time grows, so it
    rounds to `value` at every time between two at which it does. Kept clear of both
    rounding edges by far more than the error of the float operations: a value within
    1e-12 of the far edge is not cached, the near edge is approached no closer than a second.
    The check's age is what `(until - t).total_seconds()` gives (whole µs over 10**6,
    correctly rounded), so it is the very value an evaluation at `until` computes.
    """
    if round(exact * (1 + 1e-12), 3) != value:
        return at_us
    edge = abs(value) - 0.0005
    if edge <= 0:
        return FOREVER  # it rounds to 0 now, and only gets closer to 0
    age = half_life * scoring.SECONDS_PER_DAY * math.log2(abs(points) / edge)
    age -= max(1.0, age * 1e-9)
    if not age < FOREVER / 1e6:
        return at_us
    until = t_us + int(age * 1_000_000)
    if until <= at_us:
        return at_us
    held = round(scoring.decayed(points, (until - t_us) / 1_000_000, half_life), 3) == value
    return until if held else at_us
