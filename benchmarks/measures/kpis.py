"""``kpi_query_s``: the real ``tandem kpis --json`` over `kpi_journeys` journeys.

`benchmarks.bench_kpi_scale` does the work (it is also runnable alone): seeded synthetic
facts spread over a year, loaded already aggregated into the real Redis under a fresh prefix
(`KpiStore.bulk_load`; not timed), then the CLI in a subprocess — interpreter start-up
included, best of 3 — for all time, a 30-day window and ``--by channel``; the in-process
query; the worker's KPI cost per changed journey and the readers' catch-up. Its keys are
deleted at the end. The issue's target is at 1,000,000 journeys (``--kpi-journeys``;
loading that many takes minutes, so the default run uses fewer).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks import bench_kpi_scale
from benchmarks.context import Context, Result

CHANGES = 5_000
"""Changed journeys for the worker-cost and catch-up part (at most the journeys loaded)."""


def run(ctx: Context) -> Result:
    journeys = ctx.sizes.kpi_journeys
    ctx.progress(f"{journeys:,} journeys' KPI aggregates in Redis, then tandem kpis --json")
    found: dict[str, Any] = asyncio.run(
        bench_kpi_scale.measure(journeys, changes=min(CHANGES, journeys))
    )
    note = (
        f"best of 3 at {journeys:,} journeys; 30 days {found['kpi_query_30_days_s']:.2f} s, "
        f"--by channel {found['kpi_query_by_channel_s']:.2f} s; "
        f"start-up {found['cli_startup_s']:.2f} s; load {found['load_s']:.0f} s"
    )
    return Result(
        metrics={"kpi_query_s": found["kpi_query_s"], "kpi_query_journeys": journeys},
        notes={"kpi_query_s": note},
        details=found,
    )
