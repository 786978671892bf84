"""End-to-end throughput: publisher → Kafka → Faust worker (3 hops) → Redis, on this machine.

Starts Kafka and Redis if they are not running (and stops what it started), runs a real
`tandem worker` on its own topic prefix, publishes a generated funnel and measures the time
until every touchpoint is reflected in a journey in Redis.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from events import parse_touchpoint
from events.publisher import TouchpointPublisher
from streams import infra
from streams.kafka_admin import create_topics, delete_topics
from streams.projection import JourneyProjection
from streams.samples import funnel
from streams.settings import Settings

LEADS = int(os.environ.get("TANDEM_BENCH_LEADS", "500"))


async def _measure(settings: Settings) -> tuple[int, float, float]:
    documents = funnel(LEADS, datetime.now(UTC), prefix="bench")
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    started = time.perf_counter()
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in documents:
            await publisher.publish(parse_touchpoint(document))
    published = time.perf_counter() - started
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            snapshots = await projection.snapshots()
            if sum(s["counts"]["touchpoints"] for s in snapshots.values()) >= len(documents):
                break
            await asyncio.sleep(0.5)
        else:
            raise TimeoutError("the worker did not process the funnel within 10 minutes")
        return len(documents), published, time.perf_counter() - started
    finally:
        keys = [k async for k in projection.redis.scan_iter(f"{settings.redis_prefix}*")]
        if keys:
            await projection.redis.delete(*keys)
        await projection.close()


def main() -> int:
    base = Settings()
    status = infra.up(base)
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as data_dir:
        settings = base.model_copy(
            update={
                "topic_prefix": f"bench{run_id}.",
                "redis_prefix": f"tandem-bench-{run_id}:",
                "data_dir": Path(data_dir),
            }
        )
        asyncio.run(create_topics(settings))
        env = dict(os.environ)
        env.update({f"TANDEM_{k.upper()}": str(v) for k, v in settings.model_dump().items()
                    if v is not None})  # fmt: skip
        log = (Path(data_dir) / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            time.sleep(12)  # join the group and recover the (empty) tables
            count, published, total = asyncio.run(_measure(settings))
            print(f"{LEADS} leads, {count} touchpoints: published in {published:.1f} s, "
                  f"all in journeys after {total:.1f} s -> {count / total:.0f} touchpoints/s "
                  "end to end")  # fmt: skip
        finally:
            worker.terminate()
            worker.wait(30)
            asyncio.run(delete_topics(settings))
    if any(service.started for service in status.services):
        infra.down(base)
    return 0
