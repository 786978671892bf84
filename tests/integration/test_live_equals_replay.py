"""Live = replay under chained merges (issue 9, item 6).

A shuffled backlog of 1,000 people whose identity chains (anonymous id → email → CRM contact
id) are linked by touchpoints delivered before and after the touchpoints they join, with 10 %
duplicates, through a real worker: every journey in Redis must equal the replay's, and there
must be no journey the replay does not have.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.workload import build
from tests.integration.conftest import WorkerProcess
from tests.integration.equivalence import (
    compare,
    expected_journeys,
    isolated_deployment,
    publish,
    wait_until_drained,
)

pytestmark = pytest.mark.integration

PEOPLE = 1000


async def test_live_journeys_equal_the_replay_under_chained_merges(
    settings: Settings, tmp_path: Path
) -> None:
    workload = build(
        PEOPLE, seed=91, now=datetime.now(UTC) - timedelta(hours=1), prefix="lr", short=True
    )
    assert workload.links_before > 0.3 * workload.links
    assert workload.links_after > 0.3 * workload.links
    started = time.monotonic()
    async with isolated_deployment(settings, "live", tmp_path) as (own, projection):
        worker = WorkerProcess(own, tmp_path / "worker.log")
        try:
            await asyncio.gather(asyncio.to_thread(worker.start), publish(own, workload.documents))
            published = time.monotonic() - started
            expected = expected_journeys(workload.documents, own)
            waited = await wait_until_drained(
                own, projection, expected_journeys=len(expected), timeout=180
            )
            live = await projection.snapshots()
        finally:
            worker.stop()
    result = compare(expected, live)
    print(
        f"\n{len(workload.documents)} deliveries ({len(workload.events)} events, "
        f"{workload.duplicates} duplicates) of {PEOPLE} people: published and worker ready "
        f"in {published:.1f} s, drained {waited:.1f} s later, "
        f"{time.monotonic() - started:.1f} s in all\n{result.summary()}"
    )
    assert result.equal, result.summary()
