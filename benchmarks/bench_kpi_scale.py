"""KPI queries at scale: 1,000,000 journeys of synthetic facts in the real Redis.

Synthetic facts (seeded) spread over a year: first touch, stage history (lead → … for some,
customer and churn for a few), wins with paths, lost deals, forms, marketing touches,
hand-offs, NPS and voices. They are written through `KpiStore.bulk_load` (pipelined), then:

* ``kpi_query_s``: wall time of the real ``tandem kpis --json`` (all time), and of
  ``--since/--until`` (30 days) and ``--by channel``, in a subprocess (interpreter start-up
  included);
* the in-process query (read the window's buckets + aggregate), best of three;
* ``apply_one_s``: one journey's change through the version-checked ``write_facts``.

    TANDEM_BENCH_KPI_JOURNEYS=1000000 python -m benchmarks.bench_kpi_scale
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
        [sys.executable, "-m", "streams.cli", "kpis", "--json", *args],
        env=env,
        capture_output=True,
        check=True,
    )
    elapsed = time.perf_counter() - t0
    json.loads(done.stdout)
    return elapsed


async def main() -> None:
    n = int(os.environ.get("TANDEM_BENCH_KPI_JOURNEYS", "1000000"))
    settings = Settings()
    prefix = f"tandem-bench-{uuid.uuid4().hex[:6]}:"
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    store = KpiStore(redis, prefix)
    results: dict[str, Any] = {"journeys": n}
    try:
        t0 = time.perf_counter()
        await store.bulk_load(synthetic(n))
        results["load_s"] = round(time.perf_counter() - t0, 1)
        days = await store.days()
        now = datetime.now(UTC)
        for label, kwargs in (
            ("all_time", {}),
            (
                "30_days",
                {
                    "since": datetime(2024, 6, 1, tzinfo=UTC),
                    "until": datetime(2024, 7, 1, tzinfo=UTC),
                },
            ),
            ("by_channel", {"by": "channel"}),
        ):
            best = float("inf")
            for _ in range(3):
                t1 = time.perf_counter()
                q = AggregateQuery.of(now=now, **kwargs)  # type: ignore[arg-type]
                read = await store.read(q.buckets(days))
                t2 = time.perf_counter()
                report = q.report(days, read)
                t3 = time.perf_counter()
                best = min(best, t3 - t1)
            fields = sum(len(b) for b in read.values())
            results[f"in_process_{label}_s"] = round(best, 3)
            results[f"in_process_{label}_read_s"] = round(t2 - t1, 3)
            results[f"{label}_fields_read"] = fields
            results[f"{label}_leads"] = report.leads
        # One journey's change, version-checked (read old facts, delta, Lua apply).
        changed = dict(next(iter(synthetic(1, seed=99)))[2], customer_id="cus_0")
        t4 = time.perf_counter()
        for v in range(2, 12):
            await store.write_facts([("cus_0", v, changed if v % 2 else None)])
        results["apply_one_s"] = round((time.perf_counter() - t4) / 10, 5)
        env = {**os.environ, "TANDEM_REDIS_PREFIX": prefix}
        results["kpi_query_s"] = round(min(_cli(env) for _ in range(3)), 3)
        results["kpi_query_30_days_s"] = round(
            min(_cli(env, "--since", "2024-06-01", "--until", "2024-06-30") for _ in range(3)), 3
        )
        results["kpi_query_by_channel_s"] = round(
            min(_cli(env, "--by", "channel") for _ in range(3)), 3
        )
        results["redis_used_memory"] = (await redis.info("memory"))["used_memory_human"]
        print(json.dumps(results, indent=2))
    finally:
        keys = [k async for k in redis.scan_iter(f"{prefix}*", count=10_000)]
        for i in range(0, len(keys), 10_000):
            await redis.delete(*keys[i : i + 10_000])
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
