"""A Redis outage is waited out (issue 10, item 3): nothing dead-lettered, Redis = the replay.

The test runs its own `redis-server` (the shared one on 6379 serves other tests), with an
append-only file so that, like a production Redis, it comes back with what it held. While a
worker drains a shuffled 300-person backlog (links before and after, duplicates, late events),
Redis is stopped for 15 s and started again on the same port and data. At the end there is
no dead letter, and the journeys in Redis equal the replay of the same input.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from streams.projection import JourneyProjection, LiveJourney
from streams.settings import Settings
from streams.topics import DEADLETTER
from streams.workload import build
from tests.integration.conftest import WorkerProcess
from tests.integration.equivalence import (
    compare,
    expected_journeys,
    isolated_deployment,
    publish,
    wait_until_drained,
)
from tests.integration.helpers import read_topic
from tests.integration.own_redis import OwnRedis

pytestmark = pytest.mark.integration

PEOPLE = 300
OUTAGE_S = 15.0


async def test_identifier_pointers_are_not_re_pointed_by_a_stale_write(
    own_redis: OwnRedis,
) -> None:
    projection = JourneyProjection(Redis.from_url(own_redis.url, decode_responses=True), "pt:")
    try:
        newer = LiveJourney("cus_new", 6, "{}", "lead", ("email:ada@x.example",))
        stale = LiveJourney("cus_old", 5, "{}", "lead", ("email:ada@x.example", "anon:c1"))
        await projection.publish_many([newer], [])
        await projection.publish_many([stale], [])  # the former owner's batch, arriving late
        assert await projection.resolve("email:ada@x.example") == "cus_new"
        assert await projection.resolve("anon:c1") == "cus_old"
        assert await projection.link_identifiers("cus_old", ["email:ada@x.example"], 5) == 0
        assert await projection.link_identifiers("cus_new", ["email:ada@x.example"], 6) == 1
    finally:
        await projection.close()


async def wait_for_retries(worker: WorkerProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while "writing Redis failed" not in worker.log_text():
        assert time.monotonic() < deadline, "the worker never tried to write Redis"
        await asyncio.sleep(0.2)


async def run_outage(
    settings: Settings, tmp_path: Path, own_redis: OwnRedis, *, crash: bool, hang: bool = False
) -> None:
    """Stop Redis for 15 s mid-stream (with `hang`, pause it instead: it accepts connections
    and answers nothing; with `crash`, SIGKILL the worker while it waits and start another);
    then require no dead letter and Redis = the replay."""
    workload = build(
        PEOPLE, seed=43, now=datetime.now(UTC) - timedelta(hours=1), prefix="ro", short=True
    )
    base = settings.model_copy(update={"redis_url": own_redis.url})
    started = time.monotonic()
    async with isolated_deployment(base, "outage", tmp_path) as (own, projection):
        worker = WorkerProcess(own, tmp_path / "worker.log")
        try:
            await asyncio.to_thread(worker.start)
            half = len(workload.documents) // 2
            await publish(own, workload.documents[:half])
            await asyncio.sleep(2.0)  # the worker is writing Redis when it goes away
            own_redis.pause() if hang else own_redis.stop()
            down_at = time.monotonic()
            await publish(own, workload.documents[half:])
            if crash:
                await wait_for_retries(worker)
                worker.kill()  # its batch is in the tables, not yet in Redis
                await asyncio.to_thread(worker.start)
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            own_redis.resume() if hang else own_redis.start()
            outage = time.monotonic() - down_at
            expected = expected_journeys(workload.documents, own)
            waited = await wait_until_drained(
                own, projection, expected_journeys=len(expected), timeout=60
            )
            live = await projection.snapshots()
            letters = await read_topic(own, DEADLETTER)
        finally:
            worker.stop()
    retries = worker.log_text().count("writing Redis failed")
    result = compare(expected, live)
    print(
        f"\n{len(workload.documents)} deliveries of {PEOPLE} people; "
        f"Redis {'hanging' if hang else 'down'} {outage:.1f} s "
        f"({retries} retries logged{', worker killed and restarted' if crash else ''}); "
        f"drained {waited:.1f} s after it came back; {len(letters)} dead letters; "
        f"{time.monotonic() - started:.1f} s in all\n{result.summary()}"
    )
    assert retries > 0, "the outage was not noticed: stop Redis while the worker writes"
    assert letters == []
    assert result.equal, result.summary()


async def test_a_redis_outage_is_waited_out(
    settings: Settings, tmp_path: Path, own_redis: OwnRedis
) -> None:
    await run_outage(settings, tmp_path, own_redis, crash=False)


async def test_a_hanging_redis_is_waited_out(
    settings: Settings, tmp_path: Path, own_redis: OwnRedis
) -> None:
    """A paused Redis: calls time out (`redis_timeout_s`) and are retried like an outage."""
    await run_outage(
        settings.model_copy(update={"redis_timeout_s": 1.0}), tmp_path, own_redis,
        crash=False, hang=True,
    )  # fmt: skip


async def test_a_worker_killed_during_a_redis_outage_loses_nothing(
    settings: Settings, tmp_path: Path, own_redis: OwnRedis
) -> None:
    await run_outage(settings, tmp_path, own_redis, crash=True)
