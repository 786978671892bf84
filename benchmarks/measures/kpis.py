"""KPI latency: ``tandem kpis --json`` over a funnel of more than 8,000 leads (budget: 2 s).

Setup (not timed): `streams.samples.kpi_funnel` people are run through the pure core the way
the worker runs them (identity resolution, merges, journeys — `workflow.replay`), each journey's
facts are written to the real Redis under a fresh key prefix exactly as the worker writes them
(`JourneyProjection.write_facts`), and the report is checked to hold at least 8,000 leads.

Measured: the wall-clock time of the real ``tandem kpis --json`` command in a subprocess —
interpreter start, imports, the Redis round trip, parsing, computing and printing — for the
all-time report, a window, and a window sliced by channel; then, in process, where the time
goes. Redis keys of the run are deleted at the end.

    python -m benchmarks kpis          # TANDEM_BENCH_KPI_PEOPLE=9500 by default
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from events import parse_touchpoint
from streams import journey as core
from streams import kpi_service, workflow
from streams.journey import kpis
from streams.projection import JourneyProjection
from streams.samples import kpi_funnel
from streams.settings import Settings

BUDGET_S = 2.0
MIN_LEADS = 8_000
RUNS = 7
START = datetime(2024, 1, 1, tzinfo=UTC)


def _tandem() -> list[str]:
    script = Path(sys.executable).with_name("tandem")
    return [str(script)] if script.exists() else [sys.executable, "-m", "streams.cli"]


async def _populate(settings: Settings, people: int) -> tuple[int, int, float]:
    playbook = core.default_playbook()
    started = time.perf_counter()
    documents = kpi_funnel(people, START)
    replayed = workflow.replay([parse_touchpoint(d) for d in documents], playbook)
    facts = [kpis.journey_facts(r, playbook) for r in replayed.records.values()]
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        for i in range(0, len(facts), 50):
            await asyncio.gather(
                *(
                    projection.write_facts(
                        f.customer_id, f.version, f.model_dump_json(exclude_defaults=True)
                    )
                    for f in facts[i : i + 50]
                )
            )
    finally:
        await projection.close()
    return len(documents), len(facts), time.perf_counter() - started


async def _breakdown(settings: Settings) -> dict[str, float]:
    # Best of three, with the cyclic GC paused as `tandem kpis` does (kpi_service.report).
    best: dict[str, float] = {}
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    gc.disable()
    try:
        for _ in range(3):
            t0 = time.perf_counter()
            raw = await projection.all_facts()
            t1 = time.perf_counter()
            facts = kpi_service.parse_facts(raw)
            t2 = time.perf_counter()
            report = kpis.compute_kpis(facts, now=datetime.now(UTC))
            t3 = time.perf_counter()
            report.model_dump_json(indent=2)
            t4 = time.perf_counter()
            parts = {
                "Redis HVALS": t1 - t0,
                "decode facts": t2 - t1,
                "compute": t3 - t2,
                "serialise": t4 - t3,
            }
            best = {k: min(v, best.get(k, v)) for k, v in parts.items()}
    finally:
        gc.enable()
        await projection.close()
    return best


def _startup(env: dict[str, str]) -> float:
    """The fixed cost of any `tandem` command: interpreter and CLI imports (`--help`)."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([*_tandem(), "kpis", "--help"], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _cleanup(settings: Settings) -> None:
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        keys = [k async for k in projection.redis.scan_iter(f"{settings.redis_prefix}*")]
        if keys:
            await projection.redis.delete(*keys)
    finally:
        await projection.close()


def _time_cli(env: dict[str, str], args: list[str]) -> tuple[list[float], dict[str, object]]:
    times: list[float] = []
    output: dict[str, object] = {}
    for _ in range(RUNS):
        started = time.perf_counter()
        done = subprocess.run(
            [*_tandem(), "kpis", "--json", *args], env=env, capture_output=True, check=True
        )
        times.append(time.perf_counter() - started)
        output = json.loads(done.stdout)
    return times, output


def main() -> int:
    """Populate, measure, report; 0 when every median is within the budget."""
    people = int(os.environ.get("TANDEM_BENCH_KPI_PEOPLE", "9500"))
    settings = Settings(redis_prefix=f"tandem-bench-{uuid.uuid4().hex[:8]}:")
    env = {
        **os.environ,
        "TANDEM_REDIS_PREFIX": settings.redis_prefix,
        "TANDEM_REDIS_URL": settings.redis_url,
    }
    try:
        documents, journeys, setup_s = asyncio.run(_populate(settings, people))
        print(
            f"setup: {people:,} people, {documents:,} touchpoints -> {journeys:,} journeys' "
            f"facts in Redis ({setup_s:.1f} s, not timed)"
        )
        cases = {
            "all time": [],
            "window": ["--since", "2024-01-15", "--until", "2024-02-15"],
            "window --by channel": [
                "--since",
                "2024-01-15",
                "--until",
                "2024-02-15",
                "--by",
                "channel",
            ],
        }
        worst = 0.0
        for name, args in cases.items():
            times, output = _time_cli(env, args)
            median = statistics.median(times)
            worst = max(worst, median)
            print(
                f"tandem kpis --json {' '.join(args):<58} median {median:.3f} s "
                f"(min {min(times):.3f}, max {max(times):.3f}, {RUNS} runs); "
                f"leads {output['leads']:,}"
            )
            if name == "all time" and int(str(output["leads"])) < MIN_LEADS:
                print(f"only {output['leads']} leads: raise TANDEM_BENCH_KPI_PEOPLE")
                return 1
        parts = asyncio.run(_breakdown(settings))
        print(
            "in process (best of 3, all time): "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items())
        )
        print(
            f"start-up of any tandem command (kpis --help): median {_startup(env):.3f} s; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        verdict = "within" if worst <= BUDGET_S else "OVER"
        print(f"worst median {worst:.3f} s: {verdict} the {BUDGET_S:.0f} s budget")
        return 0 if worst <= BUDGET_S else 1
    finally:
        asyncio.run(_cleanup(settings))


if __name__ == "__main__":
    sys.exit(main())
