"""A crash loop loses nothing (issue 10): SIGKILL the worker ten times, restart Redis and the
broker once.

A shuffled backlog of 2,000 people (identity links before and after the touchpoints they join,
duplicates, late events) is published in ten parts. After each part the worker is killed with
SIGKILL at a random moment — no graceful shutdown, no final commit — and a new one is started;
half-way, Redis (the test's own, with an append-only file) is restarted too, and later the
broker (the test's own) while a worker runs, which must wait it out. At the end the
journeys in Redis equal the replay of the same input, nothing is dead-lettered, and no signal
was published twice under one (id, version) with different content.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.topics import DEADLETTER, HANDOFF, NURTURE
from streams.workload import build
from tests.integration.conftest import WorkerProcess
from tests.integration.equivalence import (
    compare,
    expected_journeys,
    isolated_deployment,
    publish,
    wait_until_drained,
)
from tests.integration.helpers import TIMER_RULES, read_topic
from tests.integration.own_kafka import OwnKafka
from tests.integration.own_redis import OwnRedis

pytestmark = pytest.mark.integration

PEOPLE = 2_000
KILLS = 10


def conflicting_signals(messages: list[tuple[str | None, object]]) -> list[str]:
    """(signal id, version) pairs published with different content (timer signals aside:
    their content depends on the wall clock of the tick that fired them)."""
    seen: dict[tuple[str, int], set[str]] = defaultdict(set)
    for _key, value in messages:
        if not isinstance(value, dict) or value.get("rule") in TIMER_RULES:
            continue
        seen[(value["signal_id"], value["version"])].add(json.dumps(value, sort_keys=True))
    return [f"{sid} v{version}" for (sid, version), bodies in seen.items() if len(bodies) > 1]


async def test_ten_kills_a_redis_and_a_broker_restart_end_at_the_replay(
    settings: Settings, tmp_path: Path, own_redis: OwnRedis, own_kafka: OwnKafka
) -> None:
    workload = build(
        PEOPLE, seed=71, now=datetime.now(UTC) - timedelta(hours=1), prefix="cl", short=True
    )
    documents = workload.documents
    size = len(documents) // KILLS
    parts = [documents[k * size : (k + 1) * size] for k in range(KILLS - 1)]
    parts.append(documents[(KILLS - 1) * size :])
    chance = random.Random(71)
    base = settings.model_copy(
        update={"redis_url": own_redis.url, "kafka_bootstrap": own_kafka.bootstrap}
    )
    broker_away = 0.0
    started = time.monotonic()
    async with isolated_deployment(base, "crash", tmp_path) as (own, projection):
        worker = WorkerProcess(own, tmp_path / "worker.log")
        try:
            await asyncio.to_thread(worker.start)
            for number, part in enumerate(parts, start=1):
                await publish(own, part)
                await asyncio.sleep(chance.uniform(0.3, 2.5))  # mid-batch, at a random moment
                if number == KILLS - 3:
                    broker_away = await asyncio.to_thread(own_kafka.restart)
                    await asyncio.sleep(3.0)
                    assert worker.process is not None and worker.process.poll() is None, (
                        "the worker exited while the broker restarted: it must wait it out"
                    )
                worker.kill()
                if number == KILLS // 2:
                    own_redis.stop()
                    own_redis.start()
                await asyncio.to_thread(worker.start)
            expected = expected_journeys(documents, own)
            waited = await wait_until_drained(
                own, projection, expected_journeys=len(expected), timeout=240
            )
            live = await projection.snapshots()
            letters = await read_topic(own, DEADLETTER)
            signals = await read_topic(own, HANDOFF) + await read_topic(own, NURTURE)
        finally:
            worker.stop()
    result = compare(expected, live)
    conflicts = conflicting_signals(signals)
    print(
        f"\n{len(documents)} deliveries ({workload.duplicates} duplicates) of {PEOPLE} people; "
        f"{KILLS} SIGKILLs, 1 Redis restart, 1 broker restart ({broker_away:.1f} s to ready); "
        f"drained {waited:.1f} s after the last start, "
        f"{time.monotonic() - started:.1f} s in all; {len(letters)} dead letters; "
        f"{len(signals)} signals, {len(conflicts)} (id, version) with two contents\n"
        f"{result.summary()}"
    )
    # Every delivery ended as a touchpoint of a journey, a recognised duplicate or a dead letter.
    distinct = sum(int(snapshot["counts"]["touchpoints"]) for snapshot in live.values())
    assert distinct + workload.duplicates + len(letters) == len(documents)
    assert letters == []
    assert conflicts == []
    assert result.equal, result.summary()
