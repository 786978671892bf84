"""``core_events_per_s``: the whole workflow in one process, no I/O — `tandem replay`'s engine.

`streams.workflow.replay` (the handlers the worker runs, on in-memory ports) over the run's
workload, in its delivery order. Timed: the replay call only; the touchpoints are parsed
before the clock starts (the worker's decoding is in the engine measure). The collector is
set as `tandem replay` sets it (`streams.collector.freeze_survivors`).

The metric is the replay one touchpoint at a time (`tandem replay`'s default). The details also
give `tandem replay --batch N` (each customer's touchpoints of a batch folded together) at
5,000 and at the whole backlog: the same journeys, fewer steps.
"""

from __future__ import annotations

import time

from benchmarks.context import Context, Result
from streams import journey as core
from streams import workflow
from streams.collector import freeze_survivors

BATCH = 5_000
"""A `tandem replay --batch` size the details report (besides the whole backlog at once)."""


def run(ctx: Context) -> Result:
    workload, touchpoints = ctx.workload()
    playbook = core.default_playbook()
    ctx.progress(f"replaying {len(touchpoints):,} touchpoints of {len(workload.people):,} people")
    freeze_survivors()
    started = time.perf_counter()
    result = workflow.replay(touchpoints, playbook)
    elapsed = time.perf_counter() - started
    ctx.replayed_journeys[ctx.sizes.people] = len(result.records)
    batched: dict[str, float] = {}
    for batch in (BATCH, len(touchpoints)):
        ctx.progress(f"replaying them again, {batch:,} at a time")
        started = time.perf_counter()
        together = workflow.replay(touchpoints, playbook, batch=batch)
        batched[f"batch_{batch}_events_per_s"] = len(touchpoints) / (time.perf_counter() - started)
        if set(together.records) != set(result.records):
            raise AssertionError(f"a replay {batch:,} at a time ended with other journeys")
    rates = ", ".join(f"{rate:,.0f}/s" for rate in batched.values())
    return Result(
        metrics={"core_events_per_s": len(touchpoints) / elapsed},
        notes={
            "core_events_per_s": f"replay of {len(touchpoints):,} in {elapsed:.1f} s "
            f"(--batch {BATCH:,} / all: {rates})"
        },
        details={
            **batched,
            "touchpoints": len(touchpoints),
            "people": len(workload.people),
            "journeys": len(result.records),
            "signals": len(result.signals),
            "seconds": elapsed,
        },
    )
