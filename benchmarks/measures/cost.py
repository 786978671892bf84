"""``cost_per_touchpoint_us`` at journey length 10, 1,000 and 10,000: flat or not.

For each length L a journey of L in-order touchpoints is built (`journeys.long_journey`, not
timed), then the next in-order touchpoints go through what the worker does for a changed
journey (`worker_change`): the touchpoint applied (`core.apply_touchpoint`, what the
workflow's handler calls), the next timer (`adapters.journeys.next_due`), the snapshot and the
KPI facts (`adapters.journeys.prepare`, the very functions the journeys agent calls), the
record encoded for the table (`codec`, once per customer per batch in the worker).

The metric is the mean over `cost_appends` appends of apply, timers, snapshot and facts — the
marginal cost near L of a journey the worker holds, not an average from an empty journey —
in each of `cost_rounds` rounds, the lengths taken in turn within a round. One round at 10
is 50 appends, about 30 ms of work, and its mean moved by half from run to run (flatness from
1.2 to 3.9 in thirteen one-round runs within an hour); rounds taken in turn let a machine
that slows down for a while slow every length alike (eight rounds: 1.8–2.3 in six runs).
A journey at the retention cap compacts its oldest touchpoints every `compaction_chunk` appends
(a quarter of the cap): where the appends reach the cap, they are one such cycle
(`appends_for`), so the compaction counts at the rate the worker pays it. Encoding is timed
and reported beside it.

Two costs are kept out of the mean and reported apart, because the worker does not pay them
per touchpoint:

* **The first change** (`first_change_us`). A journey built here (by merging chunks) has
  never had its KPI facts, totals or breakdown asked for, so its first change walks every
  touchpoint it has seen, compacted ones included. The worker pays that once per journey per
  start, or when the journey's fold state was dropped to bound memory
  (`streams.journey.memo.JOURNEYS_KEPT`); a journey that grew change by change keeps these
  up to date. It is the first append here, timed on its own.
* **Decoding** (`decode`). The worker's table store hands back the journey it decoded or wrote
  last while the table holds the same bytes (`adapters.tables.TableJourneyStore`), so a
  journey is decoded after a restart or a rebalance, not per change. It is timed after the
  appends, on the bytes they left.

The collector is tuned as in the worker (`streams.collector.tune_worker_gc`), so the measure is
the same whether it runs alone (`--only cost`) or after `core`.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable

from benchmarks.codec import decode_journey, encode_journey
from benchmarks.context import Context, Result
from benchmarks.journeys import MINUTE_APART, long_journey, page_views
from events import Touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from streams import journey as core
from streams.adapters.journeys import next_due, prepare
from streams.collector import tune_worker_gc
from streams.journey.record import compaction_chunk

PER_CHANGE = ("apply", "timers", "snapshot+facts")
"""The steps of the headline cost; "encode" and "decode" are reported beside it."""

HOUR_APART = 3_600
"""The gap of the `_hourly` variant: B2B touchpoints are more often hours apart than minutes."""

DECODES = 5
"""How many times the stored journey is decoded after the appends (each timed)."""


def worker_change(
    record: JourneyRecord,
    touchpoint: Touchpoint,
    playbook: Playbook,
    clock: Callable[[str], None],
    segments: dict[bytes, bytes],
) -> tuple[JourneyRecord, bytes]:
    """One touchpoint the way the worker handles it; `clock(step)` after each step.
    `segments`: the journey's segments written so far (a long journey's table entries).
    Returns the journey and its head entry as written."""
    record = core.apply_touchpoint(record, touchpoint, playbook).record
    clock("apply")
    next_due(record, playbook)
    clock("timers")
    prepare(record.customer_id, record, playbook)
    clock("snapshot+facts")
    raw = encode_journey(record, segments)
    clock("encode")
    return record, raw


def appends_for(length: int, appends: int) -> int:
    """How many appends to time near `length`: `appends`, or a whole compaction cycle once
    the journey reaches the retention cap (one compaction in the mean, at its steady rate;
    the first change has just compacted: it is timed apart)."""
    if length + appends <= core.MAX_RETAINED_TOUCHPOINTS:
        return appends
    cycle = compaction_chunk(core.MAX_RETAINED_TOUCHPOINTS)
    return -(-appends // cycle) * cycle


def appends_at(
    length: int, appends: int, playbook: Playbook, gap_s: int = MINUTE_APART
) -> dict[str, list[float]]:
    """Seconds per step for `appends` in-order touchpoints (`gap_s` apart) after the first
    `length` and its first change (steps "first:<step>"), and for decoding the journey they
    left ("decode")."""
    record = long_journey(length, playbook, gap_s)
    segments: dict[bytes, bytes] = {}
    raw = encode_journey(record, segments)  # as stored before the appends: not timed
    steps: dict[str, list[float]] = defaultdict(list)
    last = 0.0
    prefix = "first:"

    def clock(step: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps[prefix + step].append(now - last)
        last = now

    for n, touchpoint in enumerate(page_views(length, appends + 1, gap_s)):
        prefix = "first:" if n == 0 else ""
        last = time.perf_counter()
        record, raw = worker_change(record, touchpoint, playbook, clock, segments)
    for _ in range(DECODES):
        started = time.perf_counter()
        decode_journey(raw, segments)
        steps["decode"].append(time.perf_counter() - started)
    return dict(steps)


def rounds_at(
    lengths: tuple[int, ...], appends: int, rounds: int, playbook: Playbook,
    progress: Callable[[str], None] = lambda _: None, gap_s: int = MINUTE_APART,
) -> dict[int, dict[str, list[float]]]:  # fmt: skip
    """`appends_at` each length `rounds` times, the lengths taken in turn within a round (a
    machine that slows down for a while slows every length alike); each step's timings of all
    rounds, by length (a first-change step has one per round)."""
    steps: dict[int, dict[str, list[float]]] = {length: defaultdict(list) for length in lengths}
    for n in range(rounds):
        for length in lengths:
            count = appends_for(length, appends)
            progress(f"round {n + 1} of {rounds}: a journey of {length:,}, {count} appends"
                     f" {gap_s:,} s apart")  # fmt: skip
            for step, timed in appends_at(length, count, playbook, gap_s).items():
                steps[length][step].extend(timed)
    return steps


def _per_change(steps: dict[str, list[float]], prefix: str = "") -> list[float]:
    """Seconds per change: the `PER_CHANGE` steps (named with `prefix`) summed append by append."""
    return [sum(parts) for parts in zip(*(steps[prefix + s] for s in PER_CHANGE), strict=True)]


def run(ctx: Context) -> Result:
    tune_worker_gc()
    playbook = core.default_playbook()
    lengths, rounds = ctx.sizes.cost_lengths, ctx.sizes.cost_rounds
    timed = rounds_at(lengths, ctx.sizes.cost_appends, rounds, playbook, ctx.progress)
    metrics, notes, details = {}, {}, {}
    appended = {str(n): appends_for(n, ctx.sizes.cost_appends) for n in lengths}
    for length, steps in timed.items():
        per_change, firsts = _per_change(steps), _per_change(steps, "first:")
        first = statistics.median(firsts) * 1e6
        name = f"cost_per_touchpoint_us_{length}"
        metrics[name] = statistics.fmean(per_change) * 1e6
        metrics[f"cost_first_change_us_{length}"] = first
        notes[name] = (
            f"{len(per_change)} appends in {rounds} round{'s' if rounds != 1 else ''}; p50 "
            f"{statistics.median(per_change) * 1e6:,.0f} µs; "
            + ", ".join(
                f"{s} {statistics.fmean(steps[s]) * 1e6:,.0f}" for s in (*PER_CHANGE, "encode")
            )
            + f"; decode {statistics.median(steps['decode']) * 1e6:,.0f} (not per change)"
        )
        notes[f"cost_first_change_us_{length}"] = (
            "the journey's first change, median of the rounds: walks every touchpoint "
            "(once per start or eviction)"
        )
        details[str(length)] = {
            step: {"mean_us": statistics.fmean(v) * 1e6, "p50_us": statistics.median(v) * 1e6}
            for step, v in steps.items()
            if not step.startswith("first:")
        } | {"first_change_us": first, "first_change_us_by_round": [f * 1e6 for f in firsts]}
    # The same at the shortest and longest length with touchpoints an hour apart: the
    # breakdown's items then change their rounded value at every append (docs/performance.md).
    ends = (lengths[0], lengths[-1])
    hourly = rounds_at(ends, ctx.sizes.cost_appends, rounds, playbook, ctx.progress, HOUR_APART)
    for length, steps in hourly.items():
        per_change = _per_change(steps)
        name = f"cost_per_touchpoint_us_{length}_hourly"
        metrics[name] = statistics.fmean(per_change) * 1e6
        notes[name] = "touchpoints an hour apart; " + ", ".join(
            f"{s} {statistics.fmean(steps[s]) * 1e6:,.0f}" for s in PER_CHANGE
        )
    return Result(metrics, notes, {"appends": appended, "rounds": rounds, "by_length": details})
