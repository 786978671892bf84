"""A long journey through the real worker and broker: bounded table entries, read back whole.

One person's 2,400 page views (with duplicates and touchpoints older than the compacted
horizon arriving late) make a journey of a head and sealed segments. No changelog message is
over the cap; after a crash the worker reads the segments back from the changelog, recognises
repeats of old touchpoints, and ends where the replay of the same touchpoints, in the order
they arrived, ends (past the retention cap a late touchpoint counts in the aggregates only,
streams/journey/record.py, so the arrival order is part of the input).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from streams.kafka_admin import create_topics, delete_topics
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.workflow.codec import MAX_JOURNEY_BYTES, is_segment_key
from tests.integration.conftest import WorkerProcess
from tests.integration.helpers import eventually, publish_documents
from tests.integration.test_forget_rebuild import raw_topic
from tests.integration.test_pipeline import expected_snapshots, live_snapshots
from tests.stack import close_read_model

pytestmark = pytest.mark.integration

LENGTH = 2_400


@pytest_asyncio.fixture(params=["memory://", "rocksdb://"])
async def long_settings(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Settings]:
    run_id = uuid.uuid4().hex[:8]
    mine = settings.model_copy(
        update={
            "topic_prefix": f"l{run_id}.",
            "redis_prefix": f"tandem-long-{run_id}:",
            "data_dir": tmp_path,
            "store": request.param,
        }
    )
    await create_topics(mine)
    yield mine
    await delete_topics(mine)


def page_views(run: str, first: int, count: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=30)
    return [
        {
            "event_id": f"{run}-view-{i}",
            "type": "marketing.page_viewed",
            "occurred_at": (start + timedelta(seconds=60 * i)).isoformat(),
            "source": "website",
            "identity": {"email": f"long-{run}@example.com"},
            "properties": {"url": f"https://tandem.example/docs/{i % 50}"},
            "context": {"channel": "organic_search", "campaign_id": f"seo-{i % 4}"},
        }
        for i in range(first, first + count)
    ]


async def test_a_long_journey_is_kept_in_bounded_entries_and_survives_a_crash(
    long_settings: Settings,
) -> None:
    settings = long_settings
    run = uuid.uuid4().hex[:6]
    views = page_views(run, 0, LENGTH)
    late = views[100:130]  # long compacted by the time they arrive again
    withheld = views[200:220]  # first seen after the crash, older than the horizon
    first = [v for v in views if v not in withheld]
    second = [*withheld, *late, *random.Random(5).sample(first, 40)]
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    try:
        worker.start()
        await publish_documents(settings, first)
        expected = expected_snapshots(first, settings)
        live = await eventually(
            lambda: live_snapshots(projection, set(expected)),
            lambda found: found == expected,
            timeout=240,
        )
        assert live == expected
        worker.kill()

        changelog = await raw_topic(settings, f"{settings.topic_prefix}{settings.app_id}-"
                                    "journeys-changelog")  # fmt: skip
        assert max(len(value or b"") for _, value in changelog) <= MAX_JOURNEY_BYTES
        assert sum(1 for key, _ in changelog if is_segment_key(key)) >= 2

        worker.start()  # reads the journey back: head and segments (changelog, or local files)
        await publish_documents(settings, second)
        # Replayed in the order they arrived: one person, one partition, in publishing order.
        expected = expected_snapshots([*first, *second], settings)
        live = await eventually(
            lambda: live_snapshots(projection, set(expected)),
            lambda found: found == expected,
            timeout=120,
        )
        assert live == expected
    finally:
        worker.stop()
        await close_read_model(projection, settings.redis_prefix)
