"""KPI queries at scale: 1,000,000 journeys of synthetic facts in the real Redis.

Synthetic facts (seeded) spread over a year: first touch, stage history (lead → … for some,
customer and churn for a few), wins with paths, lost deals, forms, marketing touches,
hand-offs, NPS and voices. They are loaded already aggregated (`KpiStore.bulk_load`), then:

* ``kpi_query_s``: wall time of the real ``tandem kpis --json`` (all time), and of
  ``--since/--until`` (30 days) and ``--by channel``, in a subprocess (interpreter start-up
  included; ``cli_startup_s`` is ``tandem kpis --help``);
* the in-process query (catch-up, read the window's buckets, medians in Redis, formulas);
* the worker's KPI cost per changed journey: building the facts (`journey_facts` + JSON, from
  a replayed funnel) and queueing the version-checked facts write in its Redis pipeline
  (Python) plus that write's share of the pipeline's round trip (Redis);
* the readers' catch-up cost per changed journey (delta + CAS), off the worker's path.

    python -m benchmarks.bench_kpi_scale 1000000     # or TANDEM_BENCH_KPI_JOURNEYS
    from benchmarks.bench_kpi_scale import run; run(1_000_000)["kpi_query_s"]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from streams.journey.kpis import AggregateQuery
from streams.kpi_store import KpiStore
from streams.settings import Settings

DAY = 86_400_000_000
HOUR = 3_600_000_000
START = 19_723 * DAY  # 2024-01-01
STAGES = ["lead", "mql", "sal", "sql", "opportunity", "customer", "churned"]
CHANNELS = ["paid_search", "email", "social", "event", "organic", "referral"]
CAMPAIGNS = [f"c{i}" for i in range(20)]
PERSONAS = ["buyer", "champion", "student", None]


def synthetic(n: int, seed: int = 7) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """n journeys' facts (JSON-shaped), deterministic."""
    rng = random.Random(seed)
    for i in range(n):
        first = START + rng.randrange(365 * DAY)
        channel, campaign = rng.choice(CHANNELS), rng.choice(CAMPAIGNS)
        depth = min(int(rng.expovariate(0.7)), 6)
        at, stages = first, []
        for s in STAGES[: depth + 1]:
            at += rng.randrange(1, 20 * DAY)
            stages.append({"stage": s, "at": at})
        f: dict[str, Any] = {
            "customer_id": f"cus_{i}",
            "persona": rng.choice(PERSONAS),
            "source": rng.choice(["inbound", "outbound"]),
            "first_touch_at": first,
            "first_channel": channel,
            "first_campaign": campaign,
            "stages": stages,
            "marketing_touches": sorted(first + rng.randrange(30 * DAY) for _ in range(3)),
            "form_views": [first + rng.randrange(DAY)],
        }
        if depth >= 1:
            mql = stages[1]["at"]
            f["handoffs"] = [
                {
                    "at": mql,
                    "deadline": mql + 24 * HOUR,
                    "answered_at": stages[2]["at"] if depth >= 2 else None,
                    "first_sales_touch_at": mql + rng.randrange(1, 48 * HOUR),
                }
            ]
        if depth >= 5:
            path = {"first": channel, "last": rng.choice(CHANNELS), "counts": {channel: 2}}
            f["won"] = [
                {
                    "at": stages[5]["at"],
                    "amount": str(rng.randrange(1000, 90000)),
                    "currency": "EUR",
                    "gross_margin": 0.6,
                    "channels": path,
                    "campaigns": {"first": campaign, "last": campaign, "counts": {campaign: 1}},
                }
            ]
            f["nps"] = [{"at": stages[5]["at"] + DAY, "score": rng.randrange(11)}]
            f["voices"] = [
                {
                    "at": stages[5]["at"],
                    "kind": "pain_point",
                    "value": rng.choice(["price", "speed", "support"]),
                    "stage": "customer",
                }
            ]
        elif depth >= 3 and rng.random() < 0.3:
            f["lost"] = [stages[-1]["at"] + DAY]
        yield f"cus_{i}", 1, f


def _cli(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "kpis", *args],
        env=env,
        capture_output=True,
        check=True,
    )
    elapsed = time.perf_counter() - t0
    if "--help" not in args:
        json.loads(done.stdout)
    return elapsed


WINDOWS: dict[str, dict[str, Any]] = {
    "all_time": {},
    "30_days": {
        "since": datetime(2024, 6, 1, tzinfo=UTC),
        "until": datetime(2024, 7, 1, tzinfo=UTC),
    },
    "by_channel": {"by": "channel"},
}
CLI_ARGS: dict[str, list[str]] = {
    "all_time": [],
    "30_days": ["--since", "2024-06-01", "--until", "2024-06-30"],
    "by_channel": ["--by", "channel"],
}


async def _in_process(store: KpiStore, results: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    for label, kwargs in WINDOWS.items():
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            await store.catch_up()
            q = AggregateQuery.of(now=now, **kwargs)
            days = await store.days()
            read = await store.read(q.buckets(days))
            t1 = time.perf_counter()
            answer = q.answer(days, read)
            medians = await store.medians(answer.medians)
            t2 = time.perf_counter()
            report = answer.report(medians)
            t3 = time.perf_counter()
            if t3 - t0 < best:
                best = t3 - t0
                parts = {"read": t1 - t0, "medians": t2 - t1, "formulas": t3 - t2}
        results[f"in_process_{label}_s"] = round(best, 3)
        results[f"in_process_{label}_parts_s"] = {k: round(v, 3) for k, v in parts.items()}
        results[f"{label}_fields_read"] = sum(len(b) for b in read.values())
        results[f"{label}_medians"] = len(answer.medians)
        results[f"{label}_leads"] = report.leads


def _facts_cost(people: int = 400) -> float:
    """µs of Python per changed journey to build its facts JSON, as the worker does."""
    from events import parse_touchpoint
    from streams import workflow
    from streams.journey import default_playbook, kpis
    from streams.samples import kpi_funnel

    playbook = default_playbook()
    documents = kpi_funnel(people, datetime(2024, 1, 1, tzinfo=UTC))
    records = list(
        workflow.replay([parse_touchpoint(d) for d in documents], playbook).records.values()
    )
    t0 = time.process_time()
    for record in records:
        kpis.journey_facts(record, playbook).model_dump_json(exclude_defaults=True)
    return (time.process_time() - t0) / len(records) * 1e6


async def _worker_cost(store: KpiStore, n: int, results: dict[str, Any]) -> None:
    """The worker's facts writes for `n` changed journeys in pipelined batches of 500, then
    the readers' catch-up of those changes."""
    changed = [
        (f"cus_{i}", 2, json.dumps(f, separators=(",", ":")))
        for i, (_, _, f) in enumerate(synthetic(n, seed=99))
    ]
    python = wall = 0.0
    for start in range(0, n, 500):
        pipe = store.redis.pipeline(transaction=False)
        t0, c0 = time.perf_counter(), time.process_time()
        for customer_id, version, text in changed[start : start + 500]:
            await store.queue_facts(pipe, customer_id, version, text)
        c1 = time.process_time()
        await pipe.execute()
        python += c1 - c0
        wall += time.perf_counter() - t0
    results["worker_write_python_us_per_journey"] = round(python / n * 1e6, 1)
    results["worker_write_wall_us_per_journey"] = round(wall / n * 1e6, 1)
    results["worker_facts_python_us_per_journey"] = round(_facts_cost(), 1)
    t0, c0 = time.perf_counter(), time.process_time()
    done = await store.catch_up()
    results["catch_up_journeys"] = done
    results["catch_up_us_per_journey"] = round((time.perf_counter() - t0) / max(done, 1) * 1e6)
    results["catch_up_python_us_per_journey"] = round(
        (time.process_time() - c0) / max(done, 1) * 1e6
    )


async def measure(journeys: int, changes: int = 5_000, cli: bool = True) -> dict[str, Any]:
    """Load `journeys` synthetic journeys under a fresh prefix, measure, clean up."""
    settings = Settings()
    prefix = f"tandem-bench-{uuid.uuid4().hex[:6]}:"
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    store = KpiStore(redis, prefix)
    results: dict[str, Any] = {"journeys": journeys}
    try:
        t0 = time.perf_counter()
        await store.bulk_load(synthetic(journeys))
        results["load_s"] = round(time.perf_counter() - t0, 1)
        results["redis_used_memory"] = (await redis.info("memory"))["used_memory_human"]
        await _in_process(store, results)
        await _worker_cost(store, min(changes, journeys), results)
        if cli:
            env = {**os.environ, "TANDEM_REDIS_PREFIX": prefix}
            results["cli_startup_s"] = round(min(_cli(env, "--help") for _ in range(3)), 3)
            for label, args in CLI_ARGS.items():
                name = "kpi_query_s" if label == "all_time" else f"kpi_query_{label}_s"
                results[name] = round(min(_cli(env, "--json", *args) for _ in range(3)), 3)
    finally:
        keys = [k async for k in redis.scan_iter(f"{prefix}*", count=10_000)]
        for i in range(0, len(keys), 10_000):
            await redis.delete(*keys[i : i + 10_000])
        await redis.aclose()
    return results


def run(journeys: int = 1_000_000) -> dict[str, Any]:
    """For the bench harness: the measurements at `journeys`, with ``kpi_query_s``."""
    return asyncio.run(measure(journeys))


if __name__ == "__main__":
    count = int(
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TANDEM_BENCH_KPI_JOURNEYS", "1000000")
    )
    print(json.dumps(run(count), indent=2))
