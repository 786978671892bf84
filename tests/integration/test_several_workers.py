"""Several workers (issue 9, item 7): one joins mid-stream, the other leaves mid-stream.

Two real `tandem worker` processes of one deployment (same topics, same consumer group) share
a shuffled backlog with chained identity links and duplicates. The second starts while the
first is working through the backlog; the first is stopped (SIGTERM) while events are still
arriving, and the second finishes alone. The journeys left in Redis must equal the replay's.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.workload import build
from tests.integration.conftest import WorkerProcess
from tests.integration.equivalence import (
    compare,
    consumer_lag,
    expected_journeys,
    isolated_deployment,
    publish,
    wait_until_drained,
)

pytestmark = pytest.mark.integration

PEOPLE = 600


async def test_a_worker_joining_and_one_leaving_mid_stream_leave_the_replays_journeys(
    settings: Settings, tmp_path: Path
) -> None:
    workload = build(
        PEOPLE, seed=92, now=datetime.now(UTC) - timedelta(hours=1), prefix="sw", short=True
    )
    documents = workload.documents
    quarter = len(documents) // 4
    parts = [documents[k * quarter : (k + 1) * quarter] for k in range(3)]
    parts.append(documents[3 * quarter :])
    started = time.monotonic()
    async with isolated_deployment(settings, "several", tmp_path) as (own, projection):
        first = WorkerProcess(own, tmp_path / "first.log")
        second = WorkerProcess(own, tmp_path / "second.log")
        try:
            await asyncio.gather(asyncio.to_thread(first.start), publish(own, parts[0]))
            # The second joins while the first works and while events keep arriving.
            await asyncio.gather(asyncio.to_thread(second.start), publish(own, parts[1]))
            lag_at_leave = await consumer_lag(own)
            # The first leaves (SIGTERM) while events keep arriving; the second goes on alone.
            await asyncio.gather(asyncio.to_thread(first.stop), publish(own, parts[2]))
            assert first.process is not None
            left_with = first.process.returncode
            await publish(own, parts[3])
            expected = expected_journeys(documents, own)
            waited = await wait_until_drained(
                own, projection, expected_journeys=len(expected), timeout=180
            )
            live = await projection.snapshots()
        finally:
            first.stop()
            second.stop()
    result = compare(expected, live)
    print(
        f"\n{len(documents)} deliveries ({workload.duplicates} duplicates) of {PEOPLE} people; "
        f"lag when the first worker left: {lag_at_leave}; it exited with {left_with}; drained "
        f"{waited:.1f} s after the last publish, {time.monotonic() - started:.1f} s in all\n"
        f"{result.summary()}"
    )
    assert left_with in (0, -signal.SIGTERM), "the first worker did not stop on SIGTERM"
    assert second.log_text().count("Ready") >= 1
    assert "event loop uvloop" in " ".join(second.log_text().split())  # the console wraps
    assert "collector: reclaimed" in second.log_text()  # every 5 s in the tests
    assert result.equal, result.summary()


async def test_workers_joining_and_leaving_six_times_lose_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Six rebalances while events arrive: each worker starts or stops during the previous
    rebalance. Faust's own read-offset shortcuts lost touchpoints here every few runs (see
    `streams.adapters.consumer`)."""
    workload = build(
        PEOPLE, seed=93, now=datetime.now(UTC) - timedelta(hours=1), prefix="sx", short=True
    )
    documents = workload.documents
    size = len(documents) // 7
    parts = [documents[k * size : (k + 1) * size] for k in range(6)] + [documents[6 * size :]]
    async with isolated_deployment(settings, "churn", tmp_path) as (own, projection):
        started: list[WorkerProcess] = []

        def worker(name: str) -> WorkerProcess:
            started.append(WorkerProcess(own, tmp_path / f"{name}.log"))
            return started[-1]

        try:
            a, b = worker("a1"), worker("b1")
            await asyncio.gather(asyncio.to_thread(a.start), publish(own, parts[0]))
            await asyncio.gather(asyncio.to_thread(b.start), publish(own, parts[1]))
            await asyncio.gather(asyncio.to_thread(a.stop), publish(own, parts[2]))
            a = worker("a2")
            await asyncio.gather(asyncio.to_thread(a.start), publish(own, parts[3]))
            await asyncio.gather(asyncio.to_thread(b.stop), publish(own, parts[4]))
            b = worker("b2")
            await asyncio.gather(asyncio.to_thread(b.start), publish(own, parts[5]))
            await asyncio.gather(asyncio.to_thread(a.stop), publish(own, parts[6]))
            expected = expected_journeys(documents, own)
            await wait_until_drained(own, projection, expected_journeys=len(expected), timeout=180)
            live = await projection.snapshots()
        finally:
            for process in started:
                process.stop()
    result = compare(expected, live)
    print(f"\n{len(documents)} deliveries, 6 joins and leaves\n{result.summary()}")
    assert result.equal, result.summary()
