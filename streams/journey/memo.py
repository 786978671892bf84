"""The fold state kept with a journey, in process memory (derived: a restart refolds once).

A record's state is the fold of its retained touchpoints from its compacted horizon
(`streams.journey.fold.run`). It is kept here per journey, keyed by the very `touchpoints` list
and `compacted` prefix objects of the record (records are immutable, so the same objects mean
the same fold; the entry keeps them alive so their ids cannot be reused), with:

* checkpoints: the state after every `CHECKPOINT_EVERY`-th retained touchpoint (every
  `DENSE_EVERY`-th before the first of those);
* the event-id index of the retained touchpoints and the set of compacted event ids (exact
  deduplication without a scan), handed on from a record to its successor;
* the journey's totals (counts, revenue, spend, first and last touch) over every touchpoint,
  compacted or retained;
* a `Walk` of every touchpoint in (event time, event id) order (the KPI facts' walk, see
  `streams.journey.kpis.walk`), made on first need and extended by in-order touchpoints, and
  the walk of the compacted prefix alone, which a walk made afresh goes on from.

The operations on a record (`streams.journey.record`) derive the successor's entry from the
predecessor's: an in-order touchpoint steps a `clone` of the state once; a late one refolds from
the nearest checkpoint at or before its position; a compaction, merge or split folds the new
record's retained touchpoints once. Every path runs `FoldState.step` over the same touchpoints,
in the same order, from the same start, so the state is the full fold's bit for bit (checked by
the property law in `tests/property/test_incremental_laws.py`).

States held here are read-only: stepping always works on a clone. A record this module has not
seen (decoded from storage, built by a merge) is folded in full once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from events.vocabulary import LEDGER_TYPES, Touchpoint
from schemas.journey import CompactedPrefix, CompactedTouchpoint, HorizonState, JourneyRecord
from schemas.playbook import Playbook
from streams.journey.fold import FoldState

CHECKPOINT_EVERY = 16
"""Retained touchpoints between two checkpoints: a late touchpoint refolds at most this many
touchpoints before its own position. Measured on 400 page views, a touchpoint 1 or 5 positions
late cost ≈ 0.15–0.2 ms with 16 against ≈ 0.5 ms with 32 and ≈ 1 ms with 128 (and 50 late
≈ 1.1 ms, mostly the refold of what follows it). Memory: a checkpoint copies the state's
containers (≈ 8 bytes per retained touchpoint with points), so a journey at the default cap
holds ≤ 32 of them, ≈ 0.15 MB; short journeys hold none but the start."""

DENSE_EVERY = 2
"""Before the first `CHECKPOINT_EVERY` retained touchpoints, a checkpoint every this many:
a short journey hit by late touchpoints (a shuffled backlog) otherwise refolds from the
start every time. Measured on the bench workload (22,289 shuffled touchpoints): 93,470 fold
steps and 27,574 state copies → 73,252 and 48,800 (a step costs ≈ 9 copies), for ≈ 36 MB more
held by 2,700 journeys (≤ 7 more checkpoints of a short state each)."""

Summarize = Callable[[Touchpoint], CompactedTouchpoint]

JOURNEYS_KEPT = 20_000
"""How many journeys' states are kept (least recently used are dropped and refolded on need):
the worker sets it to as many as it keeps decoded (`keep_at_most`). Too few costs a refold and a
new KPI facts walk on nearly every change once more customers are active than fit: on a
5,000-person backlog, 4,096 gave 148 touchpoints/s and a KPI CPU share of 0.062, 20,000 gave
175/s and 0.043 (docs/performance.md)."""

NO_CURRENCY = "XXX"
"""ISO 4217's code for "no currency": amounts that name none are counted under it."""


@dataclass(frozen=True)
class Totals:
    """Set functions over every touchpoint of a journey (compacted too): exact, order-free."""

    revenue: dict[str, Decimal]
    spend: dict[str, Decimal]
    counts: dict[str, int]
    first: CompactedTouchpoint | None
    last_at: datetime | None
    count: int

    @classmethod
    def of(cls, summaries: Sequence[CompactedTouchpoint]) -> Totals:
        """The totals of some touchpoints (what `plus` one by one gives, in one pass: the
        first need of a long journey's totals sums every touchpoint it has seen)."""
        revenue: dict[str, Decimal] = {}
        spend: dict[str, Decimal] = {}
        counts: dict[str, int] = {}
        first: CompactedTouchpoint | None = None
        first_key: tuple[datetime, str] | None = None
        last_at: datetime | None = None
        for s in summaries:
            kind, at = s.type, s.occurred_at
            counts[kind] = counts.get(kind, 0) + 1
            if s.amount is not None:
                if kind in ("sales.deal_won", "sales.renewed"):
                    currency = s.currency or NO_CURRENCY
                    revenue[currency] = revenue.get(currency, Decimal(0)) + s.amount
                elif kind in LEDGER_TYPES:
                    key = f"{s.campaign_id or '-'}|{s.currency or NO_CURRENCY}"
                    spend[key] = spend.get(key, Decimal(0)) + s.amount
            # The key compared only when the time does not decide (most are later in time).
            if kind not in LEDGER_TYPES and (
                first_key is None
                or at < first_key[0]
                or (at == first_key[0] and s.event_id < first_key[1])
            ):
                first, first_key = s, (at, s.event_id)
            if last_at is None or at > last_at:
                last_at = at
        return cls(revenue, spend, counts, first, last_at, len(summaries))

    def plus(self, s: CompactedTouchpoint) -> Totals:
        """These totals and one more touchpoint (a new value: the dicts are small copies)."""
        revenue, spend, counts = self.revenue, self.spend, dict(self.counts)
        counts[s.type] = counts.get(s.type, 0) + 1
        if s.amount is not None and s.type in ("sales.deal_won", "sales.renewed"):
            revenue = dict(revenue)
            currency = s.currency or NO_CURRENCY
            revenue[currency] = revenue.get(currency, Decimal(0)) + s.amount
        elif s.amount is not None and s.type in LEDGER_TYPES:
            spend = dict(spend)
            key = f"{s.campaign_id or '-'}|{s.currency or NO_CURRENCY}"
            spend[key] = spend.get(key, Decimal(0)) + s.amount
        first = self.first
        if s.type not in LEDGER_TYPES and (
            first is None or (s.occurred_at, s.event_id) < (first.occurred_at, first.event_id)
        ):
            first = s
        last_at = s.occurred_at if self.last_at is None else max(self.last_at, s.occurred_at)
        return Totals(revenue, spend, counts, first, last_at, self.count + 1)


class Walk(Protocol):
    """An order-dependent summary of every touchpoint of a journey (compacted or retained),
    walked in (event time, event id) order. Values: extending one never changes it."""

    def plus(self, summary: CompactedTouchpoint, touchpoint: Touchpoint) -> Walk | None:
        """This walk and one more (retained) touchpoint; None (or a voided walk) unless it
        comes after every touchpoint walked so far (the walk is then made afresh on next
        need)."""

    def voided(self, *others: Walk) -> Walk:
        """A walk to make afresh on next need, keeping what these walks derived per
        touchpoint (for a union of their journeys)."""

    def then(self, summaries: Sequence[CompactedTouchpoint]) -> Walk | None:
        """This walk and these compacted touchpoints (in order); None unless they come after
        every touchpoint walked so far."""


@dataclass
class Derived:
    """What is kept with one record: its fold state and what makes the next step cheap."""

    touchpoints: list[Touchpoint]
    compacted: CompactedPrefix | None
    playbook: Playbook
    state: FoldState
    checkpoints: list[tuple[int, FoldState]]
    """(n, the state after the first n retained touchpoints), ascending, starting at 0."""
    ids: dict[str, Touchpoint] | None = None
    """Retained event id → touchpoint; None once handed on to a successor."""
    compacted_ids: set[str] | None = None
    totals: Totals | None = None
    walk: Walk | None = None
    """Of the same touchpoints as `totals` (None: not made yet, or voided by a change)."""
    prefix_named: tuple[tuple[datetime, str], str] | None = None
    """The compacted prefix's latest summary naming an account: ((time, event id), account)."""
    prefix_named_known: bool = False
    prefix_walk: Walk | None = None
    """The walk of the compacted prefix alone (None: not made yet): a walk made afresh after a
    late touchpoint goes on from it through the retained touchpoints, which all come after
    the horizon, instead of walking the whole journey again."""
    facts: tuple[str, str | None, str, tuple[str, ...]] | None = None
    """The KPI facts' JSON of these touchpoints (`kpis.journey_facts_json`): (customer id,
    account, the text before the version, the text after it in pieces to join)."""


_KEPT: OrderedDict[tuple[int, int], Derived] = OrderedDict()


def _key(record: JourneyRecord) -> tuple[int, int]:
    return (id(record.touchpoints), id(record.compacted))


def _resume(record: JourneyRecord, playbook: Playbook) -> tuple[HorizonState | None, bool]:
    prefix = record.compacted
    if prefix is None:
        return None, True
    # Pinned facts were computed under the prefix's playbook: void under another one.
    return prefix.state, prefix.playbook_version == playbook.version


def _keep(entry: Derived, predecessor: Derived | None = None) -> Derived:
    if predecessor is not None and predecessor.compacted is entry.compacted:
        # The same prefix object (it changes once per compaction chunk): the same answer.
        entry.prefix_named = predecessor.prefix_named
        entry.prefix_named_known = predecessor.prefix_named_known
        entry.prefix_walk = predecessor.prefix_walk
    else:  # another prefix (an entry made by `replace` copied the old one's answer)
        entry.prefix_named, entry.prefix_named_known = None, False
        entry.prefix_walk = None
    if predecessor is not None and predecessor is not entry:
        # The predecessor was superseded: keep one entry per journey in the usual flow.
        old = (id(predecessor.touchpoints), id(predecessor.compacted))
        if _KEPT.get(old) is predecessor:
            _KEPT.pop(old, None)
    key = (id(entry.touchpoints), id(entry.compacted))
    _KEPT[key] = entry
    _KEPT.move_to_end(key)
    _evict()
    return entry


def _evict() -> None:
    while len(_KEPT) > JOURNEYS_KEPT:
        _KEPT.popitem(last=False)


def _kept_of(record: JourneyRecord) -> Derived | None:
    """The entry kept for this very record, if any (a key's ids may name a record since gone)."""
    entry = _KEPT.get(_key(record))
    if (
        entry is not None
        and entry.touchpoints is record.touchpoints
        and entry.compacted is record.compacted
    ):
        return entry
    return None


def keep_at_most(journeys: int) -> None:
    """Keep the states of at most this many journeys (the least recently used go first)."""
    global JOURNEYS_KEPT
    if journeys < 1:
        raise ValueError("keep at least one journey's state")
    JOURNEYS_KEPT = journeys
    _evict()


def forget() -> None:
    """Drop every kept state (the next operation on any record folds it in full)."""
    _KEPT.clear()


def release(record: JourneyRecord) -> None:
    """A record that moved away (merged into another journey, still on its way there): its
    state is the first to go when room is needed, not dropped, so the absorb that takes it in
    can still fold on from it."""
    if _kept_of(record) is not None:
        with suppress(KeyError):
            _KEPT.move_to_end(_key(record), last=False)


def drop(*records: JourneyRecord, keeping: JourneyRecord) -> None:
    """Drop the kept states of records that are gone (merged into `keeping`, whose state
    stays): left to age out, each would hold a place among the `JOURNEYS_KEPT` that a live
    journey's state needs."""
    for record in records:
        key = _key(record)
        if key != _key(keeping) and _kept_of(record) is not None:
            _KEPT.pop(key, None)


def _checkpoint_at(n: int) -> bool:
    return n % CHECKPOINT_EVERY == 0 or (n < CHECKPOINT_EVERY and n % DENSE_EVERY == 0)


def _fold(
    touchpoints: Sequence[Touchpoint],
    start: FoldState,
    begin: int,
    checkpoints: list[tuple[int, FoldState]],
) -> FoldState:
    """Step a clone of `start` (the state after `touchpoints[:begin]`) through the rest,
    appending a checkpoint every `CHECKPOINT_EVERY` touchpoints (the last is the result)."""
    state = start.clone()
    end = len(touchpoints)
    for n in range(begin + 1, end + 1):
        state.step(touchpoints[n - 1])
        if _checkpoint_at(n) and n < end:
            checkpoints.append((n, state.clone()))
    if end > begin and _checkpoint_at(end):
        checkpoints.append((end, state))  # read-only from here on, like every kept state
    return state


def lookup(record: JourneyRecord, playbook: Playbook) -> Derived:
    """The entry of a record under a playbook: kept, or folded in full now."""
    entry = _KEPT.get(_key(record))
    if (
        entry is not None
        and entry.touchpoints is record.touchpoints
        and entry.compacted is record.compacted
        and entry.playbook is playbook
    ):
        with suppress(KeyError):  # dropped meanwhile by another thread (the KPI one, say)
            _KEPT.move_to_end(_key(record))
        return entry
    return refold(record, playbook, entry)


def refold(
    record: JourneyRecord,
    playbook: Playbook,
    predecessor: Derived | None = None,
    ids: tuple[dict[str, Touchpoint], set[str]] | None = None,
    totals: Totals | None = None,
    walk: Walk | None = None,
) -> Derived:
    """Fold a record's retained touchpoints in full from its horizon and keep the result
    (`totals` and `walk`, if given, are of the same touchpoints)."""
    start = FoldState.start(playbook, *_resume(record, playbook))
    checkpoints = [(0, start)]
    state = _fold(record.touchpoints, start, 0, checkpoints)
    entry = Derived(record.touchpoints, record.compacted, playbook, state, checkpoints)
    if ids is not None:
        entry.ids, entry.compacted_ids = ids
    entry.totals, entry.walk = totals, walk
    return _keep(entry, predecessor)


def latest_named(
    summaries: Sequence[CompactedTouchpoint],
) -> tuple[tuple[datetime, str], str] | None:
    """The last of `summaries` (in list order) naming an account: ((time, event id), account)."""
    for summary in reversed(summaries):
        if summary.account_id is not None:
            return (summary.occurred_at, summary.event_id), summary.account_id
    return None


def hand_on_prefix_named(
    entry: Derived, predecessor: Derived, added: Sequence[CompactedTouchpoint]
) -> None:
    """After a compaction that appended `added` to the predecessor's prefix (in order, no
    sort), the new prefix's `latest_named` from the predecessor's and `added` alone: scanning
    the whole prefix again cost O(journey length) per compaction chunk."""
    if predecessor.compacted is not None and not predecessor.prefix_named_known:
        return  # not known before: found on first need, as usual
    entry.prefix_named = latest_named(added) or predecessor.prefix_named
    entry.prefix_named_known = True


def hand_on_prefix_walk(
    entry: Derived, predecessor: Derived, added: Sequence[CompactedTouchpoint]
) -> None:
    """After a compaction that appended `added` to the predecessor's prefix (in order), the
    new prefix's walk from the predecessor's, if it had one: O(chunk), not O(journey)."""
    if predecessor.prefix_walk is not None:
        entry.prefix_walk = predecessor.prefix_walk.then(added)


def _shared_prefix(a: Sequence[Touchpoint], b: Sequence[Touchpoint]) -> int:
    """How many touchpoints `a` and `b` begin with in common (the very same objects)."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x is not y:
            break
        count += 1
    return count


def fold_merged(record: JourneyRecord, playbook: Playbook, *sources: JourneyRecord) -> None:
    """Keep the entry of `record`, the union of `sources` (nothing compacted in any), folded
    on from the latest checkpoint of the kept source it shares the most touchpoints with:
    the state after a prefix depends on that prefix alone. Without one, nothing is kept
    (the next operation folds `record` in full)."""
    if record.compacted is not None or _KEPT.get(_key(record)) is not None:
        return
    best: tuple[int, FoldState, list[tuple[int, FoldState]]] | None = None
    for source in sources:
        kept = _KEPT.get(_key(source))
        if (
            source.compacted is not None
            or kept is None
            or kept.touchpoints is not source.touchpoints
            or kept.compacted is not None
            or kept.playbook is not playbook
        ):
            continue
        shared = _shared_prefix(kept.touchpoints, record.touchpoints)
        checkpoints = [c for c in kept.checkpoints if c[0] <= shared]
        begin, start = checkpoints[-1]
        if shared == len(kept.touchpoints):
            begin, start = shared, kept.state
        if best is None or begin > best[0]:
            best = (begin, start, checkpoints)
    if best is None or best[0] == 0:
        return
    begin, start, checkpoints = best
    state = _fold(record.touchpoints, start, begin, checkpoints)
    _keep(Derived(record.touchpoints, None, playbook, state, checkpoints))


def carry_walks(record: JourneyRecord, playbook: Playbook, *sources: JourneyRecord) -> None:
    """Give `record`, made of the touchpoints of `sources` (a merge), a voided walk that
    keeps what their walks derived per touchpoint: its walk is made afresh on next need
    without deriving their touchpoints again. Folds `record` now (its next operation would)."""
    walks: list[Walk] = []
    for source in sources:
        kept = _KEPT.get(_key(source))
        if kept is not None and kept.touchpoints is source.touchpoints and kept.walk is not None:
            walks.append(kept.walk)
    if walks:
        entry = lookup(record, playbook)
        if entry.walk is None:
            entry.walk = walks[0].voided(*walks[1:])


def take_ids(entry: Derived, record: JourneyRecord) -> tuple[dict[str, Touchpoint], set[str]]:
    """The record's event-id indexes, to change and hand on to its successor (rebuilt when an
    earlier successor took them)."""
    ids, compacted_ids = entry.ids, entry.compacted_ids
    entry.ids = entry.compacted_ids = None
    if ids is None or compacted_ids is None:
        ids = {tp.event_id: tp for tp in record.touchpoints}
        prefix = record.compacted
        compacted_ids = {s.event_id for s in prefix.touchpoints} if prefix else set()
    return ids, compacted_ids


def totals(entry: Derived, record: JourneyRecord, summarize: Summarize) -> Totals:
    """The record's totals (computed once, then carried forward step by step)."""
    if entry.totals is None:
        compacted = record.compacted.touchpoints if record.compacted else []
        entry.totals = Totals.of([*compacted, *map(summarize, record.touchpoints)])
    return entry.totals


def state_at(entry: Derived, count: int) -> FoldState:
    """The (read-only) state after the first `count` retained touchpoints."""
    if count == len(entry.touchpoints):
        return entry.state
    begin, start = max((c for c in entry.checkpoints if c[0] <= count), key=lambda c: c[0])
    if begin == count:
        return start
    state = start.clone()
    for tp in entry.touchpoints[begin:count]:
        state.step(tp)
    return state


def successor(
    entry: Derived,
    record: JourneyRecord,
    changed_from: int | None,
    ids: tuple[dict[str, Touchpoint], set[str]],
    totals: Totals | None,
    walk: Walk | None = None,
) -> Derived:
    """Keep the entry of `record`, made from `entry`'s record by changing its retained
    touchpoints from position `changed_from` on (None: none changed); `totals` and `walk`
    are the record's (carried forward), or None."""
    touchpoints = record.touchpoints
    if changed_from is None:
        following = replace(entry, touchpoints=touchpoints, compacted=record.compacted, facts=None)
    else:
        kept = [c for c in entry.checkpoints if c[0] <= changed_from]
        if changed_from == len(entry.touchpoints):
            begin, start = changed_from, entry.state  # in order: one step from the last state
        else:
            begin, start = kept[-1]  # late: refold from the nearest checkpoint before it
        state = _fold(touchpoints, start, begin, kept)
        following = Derived(touchpoints, record.compacted, entry.playbook, state, kept)
    following.ids, following.compacted_ids = ids
    following.totals, following.walk = totals, walk
    return _keep(following, entry)
