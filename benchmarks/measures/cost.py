"""``cost_per_touchpoint_us`` at journey length 10, 1,000 and 10,000: flat or not.

For each length L a journey of L in-order touchpoints is built (`journeys.long_journey`, not
timed), then the next `cost_appends` in-order touchpoints go through what the worker does for
a changed journey (`worker_change`): the touchpoint applied (`core.apply_touchpoint`, what the
workflow's handler calls), the next timer (`adapters.journeys.next_due`), the snapshot and the
KPI facts (`adapters.journeys.prepare`, the very functions the journeys agent calls). The
metric is the mean over those appends — the marginal cost near L, not an average from an
empty journey. Encoding the record for the table (`codec`, once per customer per batch in the
worker) and decoding it are timed too and reported beside it.

The collector is tuned as in the worker (`streams.collector.tune_worker_gc`), so the measure is the
same whether it runs alone (`--only cost`) or after `core`. The first append to a journey the
process has not seen change pays one-time walks over every touchpoint (the KPI facts' walk,
the totals): it is in the mean, and reported beside it with the mean of the others.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable

from benchmarks.codec import decode_journey, encode_journey
from benchmarks.context import Context, Result
from benchmarks.journeys import long_journey, page_views
from events import Touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from streams import journey as core
from streams.adapters.journeys import next_due, prepare
from streams.collector import tune_worker_gc

PER_CHANGE = ("apply", "timers", "snapshot+facts")
"""The steps of the headline cost; "encode" and "decode" are reported beside it."""


def worker_change(
    record: JourneyRecord,
    touchpoint: Touchpoint,
    playbook: Playbook,
    clock: Callable[[str], None],
    segments: dict[bytes, bytes],
) -> JourneyRecord:
    """One touchpoint the way the worker handles it; `clock(step)` after each step.
    `segments`: the journey's segments written so far (a long journey's table entries)."""
    record = core.apply_touchpoint(record, touchpoint, playbook).record
    clock("apply")
    next_due(record, playbook)
    clock("timers")
    prepare(record.customer_id, record, playbook)
    clock("snapshot+facts")
    raw = encode_journey(record, segments)
    clock("encode")
    decode_journey(raw, segments)
    clock("decode")
    return record


def appends_at(length: int, appends: int, playbook: Playbook) -> dict[str, list[float]]:
    """Seconds per step for `appends` in-order touchpoints after the first `length`."""
    record = long_journey(length, playbook)
    segments: dict[bytes, bytes] = {}
    encode_journey(record, segments)  # as stored before the appends: not timed
    steps: dict[str, list[float]] = defaultdict(list)
    last = 0.0

    def clock(step: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps[step].append(now - last)
        last = now

    for touchpoint in page_views(length, appends):
        last = time.perf_counter()
        record = worker_change(record, touchpoint, playbook, clock, segments)
    return dict(steps)


def run(ctx: Context) -> Result:
    tune_worker_gc()
    playbook = core.default_playbook()
    metrics, notes, details = {}, {}, {}
    for length in ctx.sizes.cost_lengths:
        ctx.progress(f"journey of {length:,} touchpoints: {ctx.sizes.cost_appends} appends")
        steps = appends_at(length, ctx.sizes.cost_appends, playbook)
        per_change = [sum(parts) for parts in zip(*(steps[s] for s in PER_CHANGE), strict=True)]
        name = f"cost_per_touchpoint_us_{length}"
        metrics[name] = statistics.fmean(per_change) * 1e6
        first, rest = per_change[0] * 1e6, statistics.fmean(per_change[1:] or per_change) * 1e6
        notes[name] = (
            f"p50 {statistics.median(per_change) * 1e6:,.0f} µs; first {first:,.0f}, "
            f"then mean {rest:,.0f}; "
            + ", ".join(
                f"{s} {statistics.fmean(steps[s]) * 1e6:,.0f}" for s in (*PER_CHANGE, "encode")
            )
        )
        details[str(length)] = {
            step: {"mean_us": statistics.fmean(v) * 1e6, "p50_us": statistics.median(v) * 1e6}
            for step, v in steps.items()
        } | {"first_append_us": first, "mean_after_first_us": rest}
    return Result(metrics, notes, {"appends": ctx.sizes.cost_appends, "by_length": details})
