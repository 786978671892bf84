"""``kpi_query_s``: the real ``tandem kpis --json`` over `kpi_journeys` journeys' facts.

Setup (not timed): `streams.samples.kpi_funnel` people (the whole funnel, every KPI has
something to count) are replayed through the workflow (`streams.workflow.replay`), each
journey's KPI facts built as the worker builds them, and the facts cloned under new customer
ids up to `kpi_journeys` (synthetic: the issue's target is at 1,000,000 journeys), written to
Redis under a fresh key prefix exactly as the worker writes them
(`JourneyProjection.write_facts`).

Measured: the wall-clock time of the ``tandem kpis --json`` command in a subprocess —
interpreter start, imports, the Redis round trip, parsing, computing and printing — median of
`kpi_runs`; then once a window sliced by channel, the start-up cost of any ``tandem``
command, and in process where the time of one all-time report goes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks.context import Context, Result
from benchmarks.deployment import Deployment
from events import parse_touchpoint
from streams import journey as core
from streams import kpi_service, workflow
from streams.journey import kpis
from streams.projection import JourneyProjection
from streams.samples import kpi_funnel

BASE_PEOPLE = 1_000
START = datetime(2024, 1, 1, tzinfo=UTC)
WRITE_BATCH = 100  # concurrent writes: the connection pool has a limit
WINDOW_BY_CHANNEL = ["--since", "2024-01-15", "--until", "2024-02-15", "--by", "channel"]


def base_facts() -> list[tuple[str, str]]:
    """(customer id, facts JSON) of the replayed funnel's journeys."""
    playbook = core.default_playbook()
    documents = kpi_funnel(BASE_PEOPLE, START)
    replayed = workflow.replay([parse_touchpoint(d) for d in documents], playbook)
    facts = (kpis.journey_facts(r, playbook) for r in replayed.records.values())
    return [(f.customer_id, f.model_dump_json(exclude_defaults=True)) for f in facts]


def clone(base: list[tuple[str, str]], index: int) -> tuple[str, str]:
    """The `index`-th synthetic journey: a base journey's facts under a new customer id."""
    customer_id, facts = base[index % len(base)]
    copy = f"{customer_id}-{index // len(base)}"
    return copy, facts.replace(f'"customer_id":"{customer_id}"', f'"customer_id":"{copy}"', 1)


async def populate(deployment: Deployment, journeys: int) -> None:
    base = base_facts()
    projection = JourneyProjection.from_url(
        deployment.settings.redis_url, deployment.settings.redis_prefix
    )
    try:
        for first in range(0, journeys, WRITE_BATCH):
            batch = [clone(base, i) for i in range(first, min(journeys, first + WRITE_BATCH))]
            await asyncio.gather(*(projection.write_facts(c, 1, f) for c, f in batch))
    finally:
        await projection.close()


def _tandem() -> list[str]:
    script = Path(sys.executable).with_name("tandem")
    return [str(script)] if script.exists() else [sys.executable, "-m", "streams.cli"]


def time_cli(env: dict[str, str], args: list[str], runs: int) -> tuple[list[float], dict[str, Any]]:
    times: list[float] = []
    output: dict[str, Any] = {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([*_tandem(), *args], env=env, capture_output=True, check=True,
                              cwd=processes.PROJECT_ROOT)  # fmt: skip
        times.append(time.perf_counter() - started)
        output = json.loads(done.stdout) if "--json" in args else {}
    return times, output


async def breakdown(deployment: Deployment) -> dict[str, float]:
    """Seconds per step of one all-time report, in process (GC paused as `tandem kpis` does)."""
    projection = JourneyProjection.from_url(
        deployment.settings.redis_url, deployment.settings.redis_prefix
    )
    gc.disable()
    try:
        t0 = time.perf_counter()
        raw = await projection.all_facts()
        t1 = time.perf_counter()
        facts = kpi_service.parse_facts(raw)
        t2 = time.perf_counter()
        report = kpis.compute_kpis(facts, now=datetime.now(UTC))
        t3 = time.perf_counter()
        report.model_dump_json(indent=2)
        t4 = time.perf_counter()
    finally:
        gc.enable()
        await projection.close()
    return {"redis_s": t1 - t0, "decode_s": t2 - t1, "compute_s": t3 - t2, "serialise_s": t4 - t3}


def run(ctx: Context) -> Result:
    journeys = ctx.sizes.kpi_journeys
    deployment = ctx.deployment("kpis")
    ctx.progress(f"writing {journeys:,} journeys' facts to Redis (not timed)")
    asyncio.run(populate(deployment, journeys))
    env = processes.python_env(deployment.env())
    ctx.progress(f"tandem kpis --json x {ctx.sizes.kpi_runs}")
    times, output = time_cli(env, ["kpis", "--json"], ctx.sizes.kpi_runs)
    by_channel, _ = time_cli(env, ["kpis", "--json", *WINDOW_BY_CHANNEL], 1)
    startup, _ = time_cli(env, ["kpis", "--help"], 3)
    parts = asyncio.run(breakdown(deployment))
    median = statistics.median(times)
    return Result(
        metrics={"kpi_query_s": median, "kpi_query_journeys": journeys},
        notes={"kpi_query_s": f"at {journeys:,} journeys (median of {len(times)}); "
               f"start-up {statistics.median(startup):.2f} s; "
               + ", ".join(f"{k} {v:.2f}" for k, v in parts.items())},
        details={"journeys": journeys, "runs_s": times, "window_by_channel_s": by_channel[0],
                 "startup_s": statistics.median(startup), "in_process": parts,
                 "journeys_reported": output.get("journeys")},
    )  # fmt: skip
