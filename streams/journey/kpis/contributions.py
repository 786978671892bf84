"""Facts → additive contributions: what one journey adds to the per-day KPI aggregates.

A journey's contributions are integers (counts, microseconds, 0.0001 money units) under keys
``(bucket, field)``; the aggregates are their sums over every live journey. When a journey
changes, the store subtracts its old contributions and adds its new ones (`delta`), so the
aggregates always equal the sum over the latest facts — whatever the order of changes.

Buckets (``SEP`` separates the parts of a field; a field starts with the slice's group):

* ``d:{day}:{dim}`` — the counts and sums of a UTC day, per slicing dimension (``persona``,
  ``channel``, ``campaign``, ``source``); ``d:{day}:x`` holds what is not sliced (attribution,
  spend and cost); ``d:{day}:vp`` / ``d:{day}:vs`` the voices by persona and by stage. The
  durations (sales cycle, stays, hand-off → first sales touch) count and sum here too.
* ``c:{day}:{dim}`` — customer stays entered and left that day (customers at a window start).
* ``l:{dceil}:{dim}`` — exact hand-off deadlines, by the day they end at, for the one day on
  which "pending or breached" depends on the exact time of the question.
* ``g`` — all-time tallies: amounts per currency (the default currency), group members.
* ``B:{block}:{dim}`` — the sums of the ``d`` buckets of an aligned block of `BLOCK_DAYS`
  days, with every second day of a field (`SECOND_DAYS`) replaced by its block: a window reads
  these for the whole blocks inside it, since every day of a block compares alike with the
  window's thresholds unless one falls inside it; ``X:{block}.{other}:{dim}`` keeps the
  exact day-level fields of the block whose second day falls in block ``other``, for those
  thresholds; ``C:{block}:{dim}`` sums the ``c`` buckets; ``r:{day}:{dim}`` and
  ``R:{block}:{dim}`` hold only the revenue (what the window before a window needs).

Ranked entries (`Contributions.ranked`, sorted sets in Redis) keep each duration once per
slicing dimension, member = customer id and ordinal, score = the duration in microseconds, for
exact medians: ``z:{metric}:d{day}:{dim}:{group}`` per day, ``z:{metric}:b{block}:…`` per
aligned block of `BLOCK_DAYS` days (a window reads whole blocks, and days only at its edges),
and ``z:th:p{day}.{touch day}:…`` for hand-offs first touched on a later day (what a window
ending before that touch must leave out); for a touch in a later block also
``z:th:q{block}.{touch block}:…`` and ``z:th:r{block}.{touch day}:…`` (the same, for a
window's interior blocks).

A KPI that counts journeys rather than events (churned, paying, engaged, customers exposed,
a journey's latest NPS answer, voices) is made additive by keying each day's entry with the
neighbouring day it depends on — e.g. a churn day with the journey's previous churn day — so a
window counts a journey once: at its first such day in the window. See docs/kpis.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.kpis import NONE_GROUP, JourneyFacts
from streams.journey.kpis.attribution import credit_sums
from streams.journey.kpis.loaded import LoadedJourney, load
from streams.journey.kpis.units import CHURNED, CUSTOMER, FUNNEL_VALUES, US_PER_DAY, units_of

SEP = "\x1f"
"""Separates the parts of a field (ASCII unit separator: not expected in names)."""

DIMS: tuple[str, ...] = ("persona", "channel", "campaign", "source", "account")
"""The slicing dimensions a person journey's counts are kept under."""

BLOCK_DAYS = 32
"""Days per block (blocks are aligned: block = day // BLOCK_DAYS)."""

SECOND_DAYS: dict[str, tuple[int, ...]] = {
    "coh": (3,), "cus": (2,), "chu": (2,), "pay": (3,), "eng": (2,), "nps": (3,),
    "hs": (2, 4), "thn": (2,), "ths": (2,),
}  # fmt: skip
"""Fields keyed by a second day, by kind: that day's positions among the field's parts."""


def second_days(dim: str, parts: list[str]) -> tuple[int, ...]:
    """The positions of the days (other than its bucket's) a field of `dim` is keyed by."""
    if dim in ("vp", "vs"):
        return (3,)
    if dim == "x":
        return ()
    return SECOND_DAYS.get(parts[1], ())


Key = tuple[str, str]

# (kind, day, field without group, value); kind: d (day counts), c (customer stays), l
# (deadlines, "day" is the deadline's ceiling day).
_Item = tuple[str, int, str, int]
# (metric, day, duration, ordinal, day of the first sales touch for hand-offs)
_Duration = tuple[str, int, int, int, int | None]


@dataclass(slots=True)
class Contributions:
    """What one journey adds: `sums` to add to hash fields, `ranked` members of sorted sets
    (``(key, member) → score``, the member naming the journey)."""

    sums: Counter[Key] = field(default_factory=Counter)
    ranked: dict[Key, int] = field(default_factory=dict)


@dataclass(slots=True)
class Delta:
    """What a journey's change does to the aggregates: `sums` to add (no zeros), `ranked`
    members to set (new or moved score) and `unranked` members to remove."""

    sums: dict[Key, int] = field(default_factory=dict)
    ranked: dict[Key, int] = field(default_factory=dict)
    unranked: list[Key] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sums or self.ranked or self.unranked)


def _day(us: int) -> int:
    return us // US_PER_DAY


def _f(*parts: object) -> str:
    return SEP.join(["" if p is None else str(p) for p in parts])


def _chain(days: Iterable[int]) -> Iterator[tuple[int, int | None]]:
    """Distinct days in order, each with the previous one (None for the first)."""
    previous: int | None = None
    for day in sorted(set(days)):
        yield day, previous
        previous = day


def contributions(facts: JourneyFacts | Mapping[str, Any] | None) -> Contributions:
    """Everything one journey adds to the aggregates (empty for None: no journey)."""
    c = Contributions()
    if facts is None:
        return c
    out = c.sums
    j = load(facts)
    _ledger(j, out)
    _currencies(j, out)
    if j.first is None:  # no person touchpoint: the spend and cost ledger only
        _blocks(out)
        return c
    groups = {
        "persona": j.persona or NONE_GROUP,
        "channel": j.channel or NONE_GROUP,
        "campaign": j.campaign or NONE_GROUP,
        "source": j.source or NONE_GROUP,
        "account": j.account or NONE_GROUP,
    }
    durations: list[_Duration] = []
    items = [*_stages(j, durations), *_money(j, out), *_activity(j), *_handoffs(j, durations)]
    merged: dict[tuple[str, str], int] = {}  # one entry per field, then once per dimension
    for kind, day, name, value in items:
        at = (f"{kind}:{day}:", name)
        merged[at] = merged.get(at, 0) + value
    for dim, group in groups.items():
        out["g", _f("m", dim, group)] += 1
        prefix = group + SEP
        for (bucket, name), value in merged.items():
            key = (bucket + dim, prefix + name)
            out[key] = out.get(key, 0) + value
        _rank(j.customer_id, dim, group, durations, c)
    _voices(j, out)
    _blocks(out)
    return c


def _blocks(out: Counter[Key]) -> None:
    """Add the block buckets: ``B:{block}:{dim}`` sums the days' fields with every second day
    replaced by its block (what a window's interior block needs when no threshold of the
    question falls inside that second block), ``X:{block}.{other}:{dim}`` keeps the exact
    day-level fields whose second day falls in another block (for a threshold inside it), and
    ``C:{block}:{dim}`` sums customer stays."""
    for (bucket, name), value in list(out.items()):
        kind, _, rest = bucket.partition(":")
        if kind not in ("d", "c"):
            continue
        day, _, dim = rest.partition(":")
        block = int(day) // BLOCK_DAYS
        if kind == "c":
            out[f"C:{block}:{dim}", name] += value
            continue
        parts = name.split(SEP)
        if dim in DIMS and parts[1] == "rev":  # all the window before a window needs
            out[f"r:{day}:{dim}", name] += value
            out[f"R:{block}:{dim}", name] += value
        others: set[int] = set()
        for at in second_days(dim, parts):
            if parts[at] != "":
                other = int(parts[at]) // BLOCK_DAYS
                parts[at] = str(other)
                if other != block:
                    others.add(other)
        out[f"B:{block}:{dim}", SEP.join(parts)] += value
        for other in others:
            out[f"X:{block}.{other}:{dim}", name] += value


def _rank(customer_id: str, dim: str, group: str, durations: list[_Duration],
          c: Contributions) -> None:  # fmt: skip
    out, ranked = c.sums, c.ranked
    for metric, day, value, ordinal, touch_day in durations:
        bucket = f"d:{day}:{dim}"
        if touch_day is None:
            out[bucket, _f(group, "dn", metric)] += 1
            out[bucket, _f(group, "ds", metric)] += value
        else:  # a window counts a hand-off's touch only if it came before the window's end
            out[bucket, _f(group, "thn", touch_day)] += 1
            out[bucket, _f(group, "ths", touch_day)] += value
        tail = f"{dim}:{group}"
        member = f"{customer_id}{SEP}{ordinal}"
        ranked[f"z:{metric}:d{day}:{tail}", member] = value
        ranked[f"z:{metric}:b{day // BLOCK_DAYS}:{tail}", member] = value
        if touch_day is not None and touch_day > day:
            ranked[f"z:{metric}:p{day}.{touch_day}:{tail}", member] = value
            block, touch_block = day // BLOCK_DAYS, touch_day // BLOCK_DAYS
            if touch_block > block:  # left out of a window's interior block, exactly
                ranked[f"z:{metric}:q{block}.{touch_block}:{tail}", member] = value
                ranked[f"z:{metric}:r{block}.{touch_day}:{tail}", member] = value


def delta(old: Contributions, new: Contributions) -> Delta:
    """new − old: what to apply to the aggregates when a journey changes."""
    change = Delta()
    sums, o, n = change.sums, old.sums, new.sums
    for key in o.keys() | n.keys():
        diff = n.get(key, 0) - o.get(key, 0)
        if diff:
            sums[key] = diff
    for key, score in new.ranked.items():
        if old.ranked.get(key) != score:
            change.ranked[key] = score
    change.unranked = [key for key in old.ranked if key not in new.ranked]
    return change


def _stages(j: LoadedJourney, durations: list[_Duration]) -> Iterator[_Item]:
    yield "d", _day(j.first or 0), "new", 1
    reached = j.reached
    lead = reached.get(FUNNEL_VALUES[0])
    for i, stage in enumerate(FUNNEL_VALUES):
        at = reached.get(stage)
        if at is None:
            continue
        yield "d", _day(at), _f("reach", i), 1
        if lead is not None:  # the lead cohort: who reached the stage, by when
            yield "d", _day(lead), _f("coh", i, _day(at)), 1
    customer_at = reached.get(CUSTOMER)
    if customer_at is not None and j.first is not None:
        durations.append(("cyc", _day(customer_at), customer_at - j.first, 0, None))
    stages = j.stages
    previous_exit: int | None = None
    churns: list[int] = []
    for i, (stage, at) in enumerate(stages):
        if i:
            left, left_at = stages[i - 1]
            durations.append((f"st={left}", _day(at), at - left_at, i, None))
        if stage == CHURNED:
            churns.append(_day(at))
        elif stage == CUSTOMER:
            yield "c", _day(at), "in", 1
            yield "d", _day(at), _f("cus", previous_exit), 1
            if i + 1 < len(stages):
                previous_exit = _day(stages[i + 1][1])
                yield "c", previous_exit, "out", 1
    for day, before in _chain(churns):
        yield "d", day, _f("chu", before), 1


def _money(j: LoadedJourney, out: Counter[Key]) -> Iterator[_Item]:
    paid: dict[str, list[int]] = {}
    for at, amount, currency, margin, channels, campaigns in j.won:
        day, units = _day(at), units_of(amount)
        yield "d", day, "won", 1
        yield "d", day, _f("rev", currency), units
        yield "d", day, _f("mon", currency), 1
        if margin is not None:
            yield "d", day, _f("mw", currency, margin), units
        paid.setdefault(currency, []).append(day)
        out[f"d:{day}:x", _f("aw", currency)] += units
        out[f"d:{day}:x", _f("an", currency)] += 1
        for (dim, model, value, denominator), credit in credit_sums(units, channels, campaigns):
            out[f"d:{day}:x", _f("at", currency, dim, model, value, denominator)] += credit
    for at, amount, currency in j.renewals:
        day = _day(at)
        yield "d", day, _f("rev", currency), units_of(amount)
        yield "d", day, _f("mon", currency), 1
        paid.setdefault(currency, []).append(day)
    for currency, days in paid.items():
        for day, before in _chain(days):
            yield "d", day, _f("pay", currency, before), 1


def _activity(j: LoadedJourney) -> Iterator[_Item]:
    for at in j.lost:
        yield "d", _day(at), "lost", 1
    for at in j.form_views:
        yield "d", _day(at), "fv", 1
    for at in j.form_submissions:
        yield "d", _day(at), "fs", 1
    for at in j.marketing:
        yield "d", _day(at), "mk", 1
    for day, before in _chain(_day(at) for at in j.marketing):
        yield "d", day, _f("eng", before), 1
    # NPS: a journey's latest answer of a window is the last of its last answer day there.
    last_of_day: dict[int, int] = {}
    for at, score in sorted(j.nps):
        last_of_day[_day(at)] = score
    days = sorted(last_of_day)
    for i, day in enumerate(days):
        score = last_of_day[day]
        category = "p" if score >= 9 else ("d" if score <= 6 else "n")
        following = days[i + 1] if i + 1 < len(days) else None
        yield "d", day, _f("nps", category, following), 1


def _handoffs(j: LoadedJourney, durations: list[_Duration]) -> Iterator[_Item]:
    for i, (at, deadline, answered, touch) in enumerate(j.handoffs):
        day = _day(at)
        answered_day = None if answered is None else _day(answered)
        in_time = int(answered is not None and answered <= deadline)
        ends = -(-deadline // US_PER_DAY)  # deadline <= day start ⟺ ends <= day
        yield "d", day, "ho", 1
        yield "d", day, _f("hs", answered_day, in_time, ends), 1
        yield "l", ends, _f(day, answered_day, in_time, deadline), 1
        if touch is not None:
            durations.append(("th", day, touch - at, i, _day(touch)))


def _voices(j: LoadedJourney, out: Counter[Key]) -> None:
    persona = j.persona or NONE_GROUP
    by_persona: dict[tuple[str, str], list[int]] = {}
    by_stage: dict[tuple[str, str, str], list[int]] = {}
    for at, kind, value, stage in j.voices:
        by_persona.setdefault((kind, value), []).append(_day(at))
        by_stage.setdefault((kind, value, stage or NONE_GROUP), []).append(_day(at))
    for (kind, value), days in by_persona.items():
        for day, before in _chain(days):
            out[f"d:{day}:vp", _f(persona, kind, value, before)] += 1
    for (kind, value, stage), days in by_stage.items():
        for day, before in _chain(days):
            out[f"d:{day}:vs", _f(stage, kind, value, before)] += 1


def _ledger(j: LoadedJourney, out: Counter[Key]) -> None:
    for kind, at, amount, currency, campaign, channel in j.ledger:
        day, units = _day(at), units_of(amount)
        name = "sp" if kind == "spend" else "co"
        out[f"d:{day}:x", _f(name, currency)] += units
        out[f"d:{day}:x", _f("lmon", currency)] += 1
        for dim, group in (("channel", channel), ("campaign", campaign)):
            out["g", _f("lm", dim, group or NONE_GROUP)] += 1
            if group is not None:
                out[f"d:{day}:{dim}", _f(group, "l" + name, currency)] += units


def _currencies(j: LoadedJourney, out: Counter[Key]) -> None:
    for currency in [w[2] for w in j.won] + [r[2] for r in j.renewals] + [i[3] for i in j.ledger]:
        out["g", _f("cur", currency)] += 1
