"""Operations on a stored journey: add a touchpoint, merge two journeys, compact, reevaluate.

A journey record is a *set* of touchpoints (deduplicated by event id) plus bookkeeping; every
operation here is a set operation followed by re-deriving the view and reconciling signals.
That is what makes the laws hold (checked by the property tests in `tests/property/`):

* any permutation or duplication of the same touchpoints gives the same journey and view;
* a delivery of a touchpoint the journey already holds changes nothing, not even `version`:
  after a crash the worker handles messages again, and a repeat must leave no trace, or the
  versions it would bump collide with those the read model already holds;
* `merge` is commutative, associative and idempotent, and
  ``fold(A + B) == merge(fold(A), fold(B))`` (up to `version`, which counts changes);
* evaluated event by event in any order, the final set of active signals — ids, content — is
  the one the full set of touchpoints calls for (the emitted history may contain corrections).

Conflicting duplicates: two messages with the same `event_id` but different content are the
same event delivered twice with a difference; deterministically the one with the smaller
canonical JSON (`events.touchpoint_to_json`, bytewise) is kept — so the choice does not depend
on which arrived first.

Bounded state: at most `max_retained` (default `MAX_RETAINED_TOUCHPOINTS`) touchpoints are kept
in full. When one more arrives, the oldest are compacted in whole chunks of
`compaction_chunk(max_retained)` (a quarter of the cap, at least one) until no more than the cap
remain — so with the default cap a journey keeps 375 to 500 in full, and a compaction (a fold
from the new horizon) runs once per 125 appends: O(1) amortised per touchpoint. Because the
number compacted depends only on how many are retained, folding from scratch keeps the same
touchpoints in full as an in-order stream. The oldest are folded into a compacted prefix — the
fold state at the *horizon* (the newest compacted touchpoint) plus a summary per compacted
touchpoint (event id, type, time, channel, campaign, amount), which keeps deduplication and the
aggregates (counts per type, revenue, spend, first touch) exact. What the cap changes: a
touchpoint older than the horizon arriving late updates the exact aggregates but no longer the
stage history, the scores or the signals; a conflicting duplicate of a compacted touchpoint
cannot replace it; the engagement of compacted touchpoints is carried as one decayed sum (no
per-event breakdown); merging two journeys that both have a prefix keeps the later horizon's
state; and a changed playbook only re-derives what comes after the horizon. Under the cap none
of this applies.

Cost: the fold state of a record is kept with it in process memory (`streams.journey.memo`), so
an in-order touchpoint steps the previous state once and a late one refolds from the nearest
checkpoint; a record the process has not seen is folded once. The results are those of a full
fold, bit for bit.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from events.attribution import attributed_campaign, attributed_channel
from events.envelope import Envelope
from events.vocabulary import (
    CostRecorded,
    DealWon,
    ProposalSent,
    Renewed,
    SpendRecorded,
    Touchpoint,
    touchpoint_to_json,
)
from schemas.journey import (
    CompactedPrefix,
    CompactedTouchpoint,
    JourneyRecord,
    LedgerEntry,
    MergeEntry,
    UnmergeEntry,
)
from schemas.playbook import Playbook
from schemas.signals import Signal
from streams.journey import churn, memo
from streams.journey import fold as folding
from streams.journey import signals as sig
from streams.journey.identity import IdentityGuards, by_strength, customer_id_for, strength

MAX_RETAINED_TOUCHPOINTS = 500
"""Touchpoints kept in full per journey; older ones are compacted."""


@dataclass(frozen=True)
class Outcome:
    """The result of an operation on a journey.

    `applied`: the journey's content changed (a new or replacing touchpoint, a merge, a changed
    playbook, a timer); `duplicate`: the touchpoint (or absorb) had been seen before;
    `signals`: what to publish, in order.
    """

    record: JourneyRecord
    applied: bool
    duplicate: bool
    signals: list[Signal] = field(default_factory=list)


def new_journey(customer_id: str) -> JourneyRecord:
    """An empty journey for a customer id."""
    return JourneyRecord(customer_id=customer_id)


def canonical(tp: Envelope) -> bytes:
    """The canonical JSON of a touchpoint (decides between conflicting duplicates)."""
    return touchpoint_to_json(tp)


def _key(tp: Envelope) -> tuple[datetime, str]:
    return tp.order_key


def compact_summary(tp: Envelope) -> CompactedTouchpoint:
    """What is kept of a compacted touchpoint."""
    amount = currency = None
    if isinstance(tp, DealWon | ProposalSent | SpendRecorded | CostRecorded | Renewed):
        amount, currency = tp.properties.amount, tp.properties.currency
    campaign = attributed_campaign(tp.context)
    channel = attributed_channel(tp.context)
    if isinstance(tp, SpendRecorded):
        campaign, channel = tp.properties.campaign_id, tp.properties.channel
    elif isinstance(tp, CostRecorded):
        campaign = tp.properties.campaign_id or campaign
    return CompactedTouchpoint(
        event_id=tp.event_id,
        type=tp.type,
        occurred_at=tp.occurred_at,
        channel=channel,
        campaign_id=campaign,
        amount=amount,
        currency=currency,
        account_id=None if tp.identity is None else tp.identity.account_id,
    )


def _summary_key(summary: CompactedTouchpoint) -> tuple[datetime, str]:
    return (summary.occurred_at, summary.event_id)


def _horizon(record: JourneyRecord) -> tuple[datetime, str] | None:
    prefix = record.compacted
    return None if prefix is None else (prefix.horizon_at, prefix.horizon_event_id)


# --- adding one touchpoint (no signals) ----------------------------------------------------


@dataclass(frozen=True)
class _Added:
    record: JourneyRecord
    changed: bool  # the set of touchpoints changed
    duplicate: bool
    changed_from: int | None  # the first retained position that changed (None: none)
    totals: memo.Totals | None
    walk: memo.Walk | None = None


def _add(
    record: JourneyRecord,
    tp: Touchpoint,
    guards: IdentityGuards,
    indexes: tuple[dict[str, Touchpoint], set[str]],
    totals: memo.Totals | None,
    walk: memo.Walk | None,
) -> _Added:
    """Add one touchpoint to a record, given the record's event-id indexes (changed in place),
    totals and walk (None: not made yet)."""
    identifiers = record.identifiers
    if tp.identity is not None:
        new_ids = set(guards.linkable(tp.identity.identifiers())) - set(identifiers)
        if new_ids:
            identifiers = by_strength([*identifiers, *new_ids])
    ids, compacted_ids = indexes
    retained = record.touchpoints
    existing = ids.get(tp.event_id)
    if existing is not None:
        replace = canonical(tp) < canonical(existing)
        changed_from = None
        if replace:
            index = bisect.bisect_left(retained, _key(existing), key=_key)
            retained = [*retained[:index], *retained[index + 1 :]]
            position = bisect.bisect(retained, _key(tp), key=_key)
            retained.insert(position, tp)
            ids[tp.event_id], changed_from, totals = tp, min(index, position), None
        update = {"touchpoints": retained, "identifiers": identifiers}
        return _Added(record.model_copy(update=update), replace, True, changed_from, totals,
                      None if replace else walk)  # fmt: skip
    prefix = record.compacted
    if tp.event_id in compacted_ids:
        update = {"identifiers": identifiers}
        return _Added(record.model_copy(update=update), False, True, None, totals, walk)
    horizon = _horizon(record)
    behind = prefix is not None and horizon is not None and _key(tp) <= horizon
    summary = compact_summary(tp) if behind or totals is not None or walk is not None else None
    if totals is not None and summary is not None:
        totals = totals.plus(summary)
    if prefix is not None and summary is not None and behind:
        # Older than the horizon: it can only count in the exact aggregates.
        summaries = list(prefix.touchpoints)
        summaries.insert(bisect.bisect(summaries, _summary_key(summary), key=_summary_key),
                         summary)  # fmt: skip
        compacted_ids.add(tp.event_id)
        prefix = prefix.model_copy(update={"touchpoints": summaries})
        update = {"compacted": prefix, "identifiers": identifiers}
        return _Added(record.model_copy(update=update), True, False, None, totals)
    position = len(retained)
    if position and _key(tp) < _key(retained[-1]):
        position = bisect.bisect(retained, _key(tp), key=_key)
    retained = list(retained)
    retained.insert(position, tp)
    ids[tp.event_id] = tp
    update = {"touchpoints": retained, "identifiers": identifiers}
    if walk is not None and summary is not None:
        walk = walk.plus(summary, tp)  # None when late: made afresh on next need
    return _Added(record.model_copy(update=update), True, False, position, totals, walk)


def compaction_chunk(max_retained: int) -> int:
    """How many touchpoints are compacted at a time: a quarter of the cap (at least one)."""
    return max(1, max_retained // 4)


def compact(record: JourneyRecord, playbook: Playbook, max_retained: int) -> JourneyRecord:
    """Fold the oldest touchpoints into the compacted prefix, in whole chunks, once more than
    `max_retained` are kept (see the module doc)."""
    if max_retained < 1:
        raise ValueError("max_retained must be at least 1")
    excess = len(record.touchpoints) - max_retained
    if excess <= 0:
        return record
    chunk = compaction_chunk(max_retained)
    count = -(-excess // chunk) * chunk
    oldest, kept = record.touchpoints[:count], record.touchpoints[count:]
    prefix = record.compacted
    entry = memo.lookup(record, playbook)
    ids, compacted_ids = memo.take_ids(entry, record)
    horizon = oldest[-1]
    # The signal facts as they stand before compaction, to pin those triggered after the
    # new horizon: compaction must not change a signal's content (see fold.PinnedTrigger).
    frozen = (
        memo.state_at(entry, count)
        .freeze()
        .model_copy(
            update={"pinned": folding.pin_triggers(entry.state.triggers, kept, horizon.order_key)}
        )
    )
    summaries = list(prefix.touchpoints) if prefix else []
    added = [compact_summary(tp) for tp in oldest]
    in_order = not summaries or _summary_key(added[0]) >= _summary_key(summaries[-1])
    if in_order:
        summaries += added  # the usual case: no sort
    else:
        summaries = sorted([*summaries, *added], key=_summary_key)
    new_prefix = CompactedPrefix(
        horizon_at=horizon.occurred_at,
        horizon_event_id=horizon.event_id,
        playbook_version=playbook.version,
        state=frozen,
        touchpoints=summaries,
    )
    for tp in oldest:
        del ids[tp.event_id]
        compacted_ids.add(tp.event_id)
    compacted = record.model_copy(update={"touchpoints": kept, "compacted": new_prefix})
    # The same touchpoints, so the same totals; the state is refolded from the new horizon.
    kept_entry = memo.refold(
        compacted, playbook, entry, (ids, compacted_ids), entry.totals, entry.walk
    )
    if in_order:
        memo.hand_on_prefix_named(kept_entry, entry, added)
        memo.hand_on_prefix_walk(kept_entry, entry, added)
    return compacted


# --- deriving state and reconciling signals ------------------------------------------------


def derive(record: JourneyRecord, playbook: Playbook) -> folding.FoldState:
    """The fold state of a record under a playbook.

    Applying a touchpoint, planning timers, building the snapshot and the KPI facts all need
    the same fold of the same (immutable) touchpoints: it is kept with the journey in process
    memory (`streams.journey.memo`), stepped once per in-order touchpoint. Callers treat the
    state as read-only.
    """
    return memo.lookup(record, playbook).state


def totals(record: JourneyRecord, playbook: Playbook) -> memo.Totals:
    """Counts, amounts and first and last touch over every touchpoint, compacted or not."""
    return memo.totals(memo.lookup(record, playbook), record, compact_summary)


def _reconcile(
    record: JourneyRecord, playbook: Playbook, at: datetime | None, now: datetime | None = None
) -> tuple[JourneyRecord, list[Signal]]:
    state = derive(record, playbook)
    desired = sig.desired_signals(state, record.customer_id, playbook)
    when = at or state.last_at
    if when is None:
        return record, []
    # The journey's event time closes settle windows: its latest touchpoint, or a timer's now.
    stream = max(t for t in (state.last_at, when, now) if t is not None)
    # A fall is judged at the journey's event time (its latest touchpoint or a timer's now),
    # not at a merge's or split's: the same journey however its touchpoints came together.
    moment = max(t for t in (state.last_at or when, now) if t is not None)
    times = engagement_times(record, state, playbook)
    fall = churn.desired_fall(state, times, record.customer_id, playbook, moment)
    if fall is not None:
        desired = sorted([*desired, fall], key=lambda d: (d.signal.occurred_at, d.signal.signal_id))
    ledger, out = sig.reconcile(
        record.signal_ledger, desired, record.customer_id, record.identifiers, playbook, when,
        stream,
    )  # fmt: skip
    if ledger != record.signal_ledger:
        record = record.model_copy(update={"signal_ledger": ledger})
    return record, out


def engagement_times(
    record: JourneyRecord, state: folding.FoldState, playbook: Playbook
) -> list[datetime]:
    """The customer stay's engagement touchpoint times, compacted ones included (none unless
    the journey is a customer and the playbook watches engagement falls)."""
    since = churn.customer_since(state)
    if since is None or playbook.nurture.customer.engagement_fall is None:
        return []
    compacted = record.compacted.touchpoints if record.compacted is not None else []
    kept = ((tp.type, tp.occurred_at) for tp in record.touchpoints)
    every = chain(((s.type, s.occurred_at) for s in compacted), kept)
    return churn.engagement_times(every, playbook, since)


def _bump(before: JourneyRecord, after: JourneyRecord) -> JourneyRecord:
    # Any change at all gets a new version, so a stale snapshot can never overwrite it.
    if after == before:
        return after
    return after.model_copy(update={"version": before.version + 1})


# --- the public operations -----------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """Touchpoints added to a journey together: the journey, per touchpoint (in the order
    given) whether it changed the journey and whether it had been seen before, and the
    signals to publish, in order."""

    record: JourneyRecord
    applied: list[bool]
    duplicate: list[bool]
    signals: list[Signal]


def apply_touchpoint(
    record: JourneyRecord,
    touchpoint: Touchpoint,
    playbook: Playbook,
    *,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> Outcome:
    """Add one touchpoint to a journey: dedupe, re-derive, reconcile signals."""
    done = apply_touchpoints(record, [touchpoint], playbook, max_retained=max_retained)
    return Outcome(done.record, done.applied[0], done.duplicate[0], done.signals)


def apply_touchpoints(
    record: JourneyRecord,
    touchpoints: Sequence[Touchpoint],
    playbook: Playbook,
    *,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> Applied:
    """Add touchpoints (in arrival order) to a journey, folding and reconciling signals once.

    The journey ends as `apply_touchpoint` one at a time leaves it — the same touchpoints,
    identifiers, fold and desired signals — but its state is stepped from the earliest
    position any of them changed, and its signals are reconciled as of the last one only: a
    signal that only a state in between called for is never sent (one at a time, it would be
    sent and taken back). The version goes up by one per touchpoint that changed the journey,
    as one at a time, so a version always names the same touchpoints. A compaction cuts where
    one at a time cuts: after the touchpoint that takes the journey past `max_retained`.
    """
    if not touchpoints:
        raise ValueError("no touchpoints to apply")
    entry = memo.lookup(record, playbook)
    guards = IdentityGuards.from_playbook(playbook)
    indexes = memo.take_ids(entry, record)
    totals, walk = entry.totals, entry.walk
    current, changed, changed_from = record, False, None
    applied: list[bool] = []
    duplicate: list[bool] = []
    last = len(touchpoints) - 1
    for n, touchpoint in enumerate(touchpoints):
        added = _add(current, touchpoint, guards, indexes, totals, walk)
        current, totals, walk = added.record, added.totals, added.walk
        # Positions before the earliest change are those of the record given: fold from it.
        at = added.changed_from
        if at is not None and (changed_from is None or at < changed_from):
            changed_from = at
        changed = changed or added.changed
        applied.append(added.changed)
        duplicate.append(added.duplicate)
        if n < last and len(current.touchpoints) > max_retained:
            # Compacted where one at a time compacts: after the touchpoint that went over.
            memo.successor(entry, current, changed_from, indexes, totals, walk)
            current = compact(current, playbook, max_retained)
            entry = memo.lookup(current, playbook)
            indexes = memo.take_ids(entry, current)
            totals, walk, changed_from = entry.totals, entry.walk, None
    memo.successor(entry, current, changed_from, indexes, totals, walk)
    updated = compact(current, playbook, max_retained)
    if updated.playbook_version != playbook.version:
        updated = updated.model_copy(update={"playbook_version": playbook.version})
    signals: list[Signal] = []
    if changed or record.playbook_version != playbook.version:
        updated, signals = _reconcile(updated, playbook, touchpoints[-1].occurred_at)
    if changed:  # a new version per touchpoint that changed it, as one at a time counts
        updated = updated.model_copy(update={"version": record.version + sum(applied)})
    else:
        updated = _bump(record, updated)
    return Applied(updated, applied, duplicate, signals)


def fold(
    customer_id: str,
    touchpoints: Iterable[Touchpoint],
    playbook: Playbook,
    *,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> JourneyRecord:
    """A journey from scratch: its touchpoints, deduplicated, compacted beyond the cap.

    No signals are emitted (the ledger is empty and `version` is 0): pass the result to
    `reevaluate` to get the signals it calls for.
    """
    guards = IdentityGuards.from_playbook(playbook)
    chosen: dict[str, Touchpoint] = {}
    identifiers: set[str] = set()
    for tp in touchpoints:
        if tp.identity is not None:
            identifiers.update(guards.linkable(tp.identity.identifiers()))
        known = chosen.get(tp.event_id)
        if known is None or canonical(tp) < canonical(known):
            chosen[tp.event_id] = tp
    record = JourneyRecord(
        customer_id=customer_id,
        identifiers=by_strength(identifiers),
        touchpoints=sorted(chosen.values(), key=_key),
    )
    record = compact(record, playbook, max_retained)
    return record.model_copy(update={"playbook_version": playbook.version})


def _merge_touchpoints(*groups: Iterable[Touchpoint]) -> list[Touchpoint]:
    chosen: dict[str, Touchpoint] = {}
    for group in groups:
        for tp in group:
            known = chosen.get(tp.event_id)
            if known is None or canonical(tp) < canonical(known):
                chosen[tp.event_id] = tp
    return sorted(chosen.values(), key=_key)


def _merge_summaries(*groups: Iterable[CompactedTouchpoint]) -> list[CompactedTouchpoint]:
    chosen: dict[str, CompactedTouchpoint] = {}
    for group in groups:
        for summary in group:
            known = chosen.get(summary.event_id)
            if known is None or summary.model_dump_json() < known.model_dump_json():
                chosen[summary.event_id] = summary
    return sorted(chosen.values(), key=_summary_key)


def _prefix_rank(prefix: CompactedPrefix) -> tuple[datetime, str, str]:
    return (prefix.horizon_at, prefix.horizon_event_id, prefix.state.model_dump_json())


def _customer_rank(record: JourneyRecord) -> tuple[int, tuple[int, str], str]:
    # The journey whose strongest identifier is strongest names the union, like the resolver.
    if record.identifiers:
        return (0, strength(record.identifiers[0]), record.customer_id)
    return (1, (0, ""), record.customer_id)


def merge(a: JourneyRecord, b: JourneyRecord) -> JourneyRecord:
    """The union of two journeys — commutative, associative and idempotent.

    Touchpoints, identifiers, merge history and signal ledger are unions (conflicting
    duplicates: the smaller canonical JSON wins; ledger: the furthest-along entry wins). The
    customer id is that of the journey with the strongest identifier (the resolver's rule);
    `version` is the maximum. With compacted prefixes, the later horizon's
    state is kept and touchpoints behind it are reduced to summaries (see the module doc).
    """
    customer_id = min(a, b, key=_customer_rank).customer_id
    prefixes = [p for p in (a.compacted, b.compacted) if p is not None]
    touchpoints = _merge_touchpoints(a.touchpoints, b.touchpoints)
    prefix: CompactedPrefix | None = None
    if prefixes:
        base = max(prefixes, key=_prefix_rank)
        horizon = (base.horizon_at, base.horizon_event_id)
        behind = [tp for tp in touchpoints if _key(tp) <= horizon]
        summaries = _merge_summaries(
            *(p.touchpoints for p in prefixes), map(compact_summary, behind)
        )
        compacted_ids = {s.event_id for s in summaries}
        touchpoints = [tp for tp in touchpoints if tp.event_id not in compacted_ids]
        prefix = base.model_copy(update={"touchpoints": summaries})
    merges = sorted(
        {m.model_dump_json(): m for m in (*a.merges, *b.merges)}.values(),
        key=lambda m: (m.at, m.absorbed_customer_id, m.cause_event_id, m.model_dump_json()),
    )
    unmerges = sorted(
        {u.model_dump_json(): u for u in (*a.unmerges, *b.unmerges)}.values(),
        key=lambda u: (u.at, u.cause_id, u.model_dump_json()),
    )
    versions = [v for v in (a.playbook_version, b.playbook_version) if v is not None]
    return JourneyRecord(
        customer_id=customer_id,
        version=max(a.version, b.version),
        identifiers=by_strength([*a.identifiers, *b.identifiers]),
        touchpoints=touchpoints,
        compacted=prefix,
        merges=merges,
        unmerges=unmerges,
        signal_ledger=sig.merge_ledgers(a.signal_ledger, b.signal_ledger),
        playbook_version=max(versions) if versions else None,
    )


def absorb(
    record: JourneyRecord,
    other: JourneyRecord,
    playbook: Playbook,
    cause_event_id: str,
    at: datetime,
    *,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> Outcome:
    """Merge `other` (a journey moved here by the identity resolver) into `record`.

    The result keeps `record`'s customer id and remembers the merge. Signals are reconciled
    under that id: a signal `other` had emitted for the same rule is superseded by one issued
    under this id. A redelivered absorb (same journey, same cause) changes nothing.
    """
    entry = MergeEntry(
        absorbed_customer_id=other.customer_id,
        identifiers=list(other.identifiers),
        cause_event_id=cause_event_id,
        at=at,
    )
    if other.customer_id == record.customer_id or any(
        m.absorbed_customer_id == entry.absorbed_customer_id
        and m.cause_event_id == entry.cause_event_id
        for m in record.merges
    ):
        return Outcome(record, applied=False, duplicate=True)
    merged = merge(record, other)
    merged = merged.model_copy(
        update={
            "customer_id": record.customer_id,
            "merges": sorted(
                [*merged.merges, entry],
                key=lambda m: (m.at, m.absorbed_customer_id, m.cause_event_id),
            ),
            "version": max(record.version, other.version),
            "playbook_version": playbook.version,
        }
    )
    memo.fold_merged(merged, playbook, record, other)
    memo.carry_walks(merged, playbook, record, other)
    merged = compact(merged, playbook, max_retained)
    merged, signals = _reconcile(merged, playbook, at)
    memo.drop(record, other, keeping=merged)
    version = max(record.version, other.version) + 1
    return Outcome(merged.model_copy(update={"version": version}), True, False, signals)


def moved_away(record: JourneyRecord) -> None:
    """The journey moved to the customer it merged into: what is kept of it in memory goes
    first when room is needed (the absorb that takes it in drops it)."""
    memo.release(record)


@dataclass(frozen=True)
class Split:
    """The two journeys `split` makes of one.

    `kept`: the side that keeps the record's customer id (the side of its strongest
    identifier), with its signals reconciled — a hand-off it no longer calls for is revoked, a
    nurture withdrawn, changed content re-issued. `moved`: the other side under its own
    customer id, not yet reconciled: hand it to `receive_split` at that id.
    """

    kept: Outcome
    moved: JourneyRecord
    remaining_customer_id: str
    split_customer_id: str


@dataclass(frozen=True)
class _Sides:
    """Who is who in a split: the two sides' customer ids and identities, and which side keeps
    the record's customer id."""

    chosen: frozenset[str]
    split_id: str
    remaining_id: str
    split_ids: list[str]
    remaining_ids: list[str]
    kept_id: str
    moved_id: str


def _name_sides(
    record: JourneyRecord,
    chosen: frozenset[str],
    remaining_customer_id: str | None,
    split_customer_id: str | None,
) -> _Sides:
    """Each side is named after its strongest identifier unless its id is given."""
    remaining_ids = [i for i in record.identifiers if i not in chosen]
    split_ids = by_strength(chosen)
    split_id = split_customer_id or customer_id_for(split_ids[0])
    remaining_id = remaining_customer_id or (
        customer_id_for(remaining_ids[0]) if remaining_ids else record.customer_id
    )
    split_kept = split_id == record.customer_id
    kept_id, moved_id = (split_id, remaining_id) if split_kept else (record.customer_id, split_id)
    return _Sides(chosen, split_id, remaining_id, split_ids, remaining_ids, kept_id, moved_id)


def _partition(
    touchpoints: Iterable[Touchpoint], guards: IdentityGuards, chosen: frozenset[str]
) -> tuple[list[Touchpoint], list[Touchpoint]]:
    """The touchpoints whose strongest linkable identifier is chosen (split off), and the rest."""
    split_tps: list[Touchpoint] = []
    rest_tps: list[Touchpoint] = []
    for tp in touchpoints:
        linkable = guards.linkable(tp.identity.identifiers()) if tp.identity else []
        (split_tps if linkable and linkable[0] in chosen else rest_tps).append(tp)
    return split_tps, rest_tps


def _identifiers_of(
    guards: IdentityGuards, tps: list[Touchpoint], extra: Iterable[str] = ()
) -> list[str]:
    found = {i for tp in tps if tp.identity for i in guards.linkable(tp.identity.identifiers())}
    return by_strength([*found, *extra])


def _side_of_merge(entry: MergeEntry, s: _Sides) -> str | None:
    """The side a merge entry follows (by its identifiers); None when the merge is the one
    undone (its absorbed journey is that very side)."""
    inside = [i in s.chosen for i in entry.identifiers]
    side = s.split_id if all(inside) else s.remaining_id if not any(inside) else s.kept_id
    return None if entry.absorbed_customer_id == side else side


def _divide_ledger(
    ledger: dict[str, LedgerEntry], moved_id: str
) -> tuple[dict[str, LedgerEntry], dict[str, LedgerEntry]]:
    """The signal ledger of the kept side, and of the moved side (the ids it would issue)."""
    moved = {sid: e for sid, e in ledger.items() if sid == sig.signal_id(moved_id, e.rule, e.key)}
    kept = {sid: e for sid, e in ledger.items() if sid not in moved}
    return kept, moved


def _unmerge_entry(s: _Sides, side_id: str, cause_id: str, at: datetime) -> UnmergeEntry:
    # The other side's identities (not the identifiers seen on its touchpoints): what
    # `resplit` sends over should more of it arrive.
    other_id, other_idents = (
        (s.remaining_id, s.remaining_ids) if side_id == s.split_id else (s.split_id, s.split_ids)
    )
    return UnmergeEntry(
        other_customer_id=other_id, other_identifiers=list(other_idents), cause_id=cause_id, at=at
    )


def _side_record(
    record: JourneyRecord,
    s: _Sides,
    side_id: str,
    touchpoints: list[Touchpoint],
    identifiers: list[str],
    compacted: CompactedPrefix | None,
    ledger: dict[str, LedgerEntry],
    playbook: Playbook,
    entry: UnmergeEntry,
) -> JourneyRecord:
    """One side of the split, not yet compacted or reconciled; splitting again adds no entry."""
    history = record.unmerges if side_id == s.kept_id else []
    return JourneyRecord(
        customer_id=side_id,
        version=record.version + 1,
        identifiers=identifiers,
        touchpoints=touchpoints,
        compacted=compacted,
        merges=[m for m in record.merges if _side_of_merge(m, s) == side_id],
        unmerges=history if entry in history else [*history, entry],
        signal_ledger=ledger,
        playbook_version=playbook.version,
    )


def split(
    record: JourneyRecord,
    identifiers_to_split: Iterable[str],
    playbook: Playbook,
    cause_id: str,
    at: datetime,
    *,
    remaining_customer_id: str | None = None,
    split_customer_id: str | None = None,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> Split:
    """Undo a wrong merge: rebuild two journeys from the touchpoints of one.

    A touchpoint goes to the split-off side when its strongest (non-blocklisted) identifier
    is one of `identifiers_to_split`, else it stays. So a touchpoint carrying identifiers of
    both sides — typically the one that caused the wrong link — goes where its strongest
    identifier goes: exactly where `resolve` sends it once the sides are separated, so replaying
    the events later gives the same two journeys. Each side's identifiers, stage, scores and
    signals are re-derived from its own touchpoints (a compacted prefix, which keeps no
    identities, stays with the remaining side). Merge entries of the undone merge are dropped,
    the others follow their identifiers; both sides record an `UnmergeEntry`. The sides are
    named after their strongest identifier unless the ids are given (the identity agent's
    decision). Splitting again changes nothing but the history.
    """
    chosen = frozenset(identifiers_to_split)
    if not chosen:
        raise ValueError("nothing to split: name at least one identifier")
    guards = IdentityGuards.from_playbook(playbook)
    s = _name_sides(record, chosen, remaining_customer_id, split_customer_id)
    split_tps, rest_tps = _partition(record.touchpoints, guards, chosen)
    split_idents = _identifiers_of(guards, split_tps)
    rest_idents = _identifiers_of(guards, rest_tps, s.remaining_ids if record.compacted else ())
    kept_ledger, moved_ledger = _divide_ledger(record.signal_ledger, s.moved_id)
    sides: dict[str, JourneyRecord] = {}
    for side_id, tps, idents, prefix in (
        (s.split_id, split_tps, split_idents, None),
        (s.remaining_id, rest_tps, rest_idents, record.compacted),
    ):
        ledger = kept_ledger if side_id == s.kept_id else moved_ledger
        entry = _unmerge_entry(s, side_id, cause_id, at)
        sides[side_id] = _side_record(
            record, s, side_id, tps, idents, prefix, ledger, playbook, entry
        )
    kept_record = compact(sides[s.kept_id], playbook, max_retained)
    kept_record, signals = _reconcile(kept_record, playbook, at)
    return Split(
        kept=Outcome(kept_record, applied=True, duplicate=False, signals=signals),
        moved=sides[s.moved_id],
        remaining_customer_id=s.remaining_id,
        split_customer_id=s.split_id,
    )


def resplit(record: JourneyRecord, playbook: Playbook) -> Split | None:
    """Split off again what belongs to a side this journey was split from, if anything.

    A merge in flight when the unmerge was carried out (moved before it, absorbed after the
    split) brings the other side's touchpoints back; call this after `absorb`. None when every
    touchpoint's strongest identifier is on this side.
    """
    guards = IdentityGuards.from_playbook(playbook)
    for entry in record.unmerges:
        other = set(entry.other_identifiers)
        for tp in record.touchpoints:
            linkable = guards.linkable(tp.identity.identifiers()) if tp.identity else []
            if linkable and linkable[0] in other:
                return split(
                    record, entry.other_identifiers, playbook, entry.cause_id, entry.at,
                    remaining_customer_id=record.customer_id,
                    split_customer_id=entry.other_customer_id,
                )  # fmt: skip
    return None


def receive_split(
    record: JourneyRecord,
    moved: JourneyRecord,
    playbook: Playbook,
    at: datetime,
    *,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> Outcome:
    """Take in the side `split` moved to this customer id (usually onto an empty journey).

    A union like `merge` (touchpoints that reached this id since the unmerge are kept), under
    this record's customer id, with no merge entry; signals are reconciled here: those the
    journey had under this id before the wrong merge are re-issued (version + 1). Idempotent.
    """
    merged = merge(record, moved).model_copy(
        update={
            "customer_id": record.customer_id,
            "version": record.version,
            "playbook_version": playbook.version,
        }
    )
    memo.carry_walks(merged, playbook, record, moved)
    merged = compact(merged, playbook, max_retained)
    merged, signals = _reconcile(merged, playbook, at)
    if merged == record:
        return Outcome(record, applied=False, duplicate=True)
    version = max(record.version, moved.version) + 1
    return Outcome(merged.model_copy(update={"version": version}), True, False, signals)


def reevaluate(record: JourneyRecord, playbook: Playbook) -> Outcome:
    """Re-derive a journey under a (changed) playbook and reconcile its signals."""
    updated = record.model_copy(update={"playbook_version": playbook.version})
    updated, signals = _reconcile(updated, playbook, None)
    updated = _bump(record, updated)
    return Outcome(updated, applied=updated.version != record.version, duplicate=False,
                   signals=signals)  # fmt: skip


def _identities(record: JourneyRecord) -> list[str]:
    return list(record.identifiers)


def evaluate_timers(record: JourneyRecord, now: datetime, playbook: Playbook) -> Outcome:
    """Emit the timer signals due at `now` (SLA breach/escalation, stalled, upsell, renewal),
    the corrections held in a settle window that has closed by `now`, and a churn risk whose
    engagement has fallen by `now` (`streams.journey.churn`).

    Idempotent: an emitted timer signal is remembered in the ledger under its deterministic
    id, and a sent correction is no longer owed, so evaluating again (after a restart, say)
    emits nothing new.
    """
    owed = sig.owed_due(record.signal_ledger, playbook)
    state = derive(record, playbook)
    fall = churn.fall_due(
        state, engagement_times(record, state, playbook), record.signal_ledger, playbook
    )
    flushed: list[Signal] = []
    if any(due is not None and due <= now for due in (owed, fall)):
        # A settle window closed, or engagement has fallen since: reconcile as of `now`.
        record, flushed = _reconcile(record, playbook, now, now)
    state = derive(record, playbook)
    candidates = sig.timer_candidates(
        state, record.signal_ledger, record.customer_id, _identities(record), playbook
    )
    due = sig.due_timers(candidates, now)
    if not due and not flushed:
        return Outcome(record, applied=False, duplicate=False)
    ledger: dict[str, LedgerEntry] = dict(record.signal_ledger)
    for candidate in due:
        ledger[candidate.signal.signal_id] = sig.timer_entry(candidate)
    updated = record.model_copy(
        update={"signal_ledger": dict(sorted(ledger.items())), "version": record.version + 1}
    )
    return Outcome(updated, True, False, [*flushed, *(c.signal for c in due)])


def next_timer_due(record: JourneyRecord, playbook: Playbook) -> datetime | None:
    """When `evaluate_timers` would next emit something for this journey (None: never)."""
    state = derive(record, playbook)
    timer = sig.next_timer(state, record.signal_ledger, record.customer_id, playbook)
    owed = sig.owed_due(record.signal_ledger, playbook)
    times = engagement_times(record, state, playbook)
    fall = churn.fall_due(state, times, record.signal_ledger, playbook)
    return min((t for t in (timer, owed, fall) if t is not None), default=None)
