"""The production table store: a worker on `rocksdb://` (rocksdict) keeps journeys on disk and
picks up where it left off after a restart."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from streams import journey as core
from streams.kafka_admin import create_topics, delete_topics
from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings
from tests.integration.conftest import WorkerProcess
from tests.integration.helpers import eventually, publish_documents
from tests.integration.test_pipeline import expected_snapshots, live_snapshots
from tests.stack import close_read_model

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def rocksdb_settings(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    run_id = uuid.uuid4().hex[:8]
    mine = settings.model_copy(
        update={
            "topic_prefix": f"r{run_id}.",
            "redis_prefix": f"tandem-rocks-{run_id}:",
            "store": "rocksdb://",
            "data_dir": tmp_path,
        }
    )
    await create_topics(mine)
    yield mine
    await delete_topics(mine)


async def test_journeys_survive_a_restart_on_rocksdb(rocksdb_settings: Settings) -> None:
    settings = rocksdb_settings
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    documents = [
        d for d in demo_journeys(datetime.now(UTC) - timedelta(hours=1), prefix="rocks")
        if "ledger" not in str(d.get("identity"))
    ]  # fmt: skip
    first, second = documents[:20], documents[20:]
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    try:
        worker.start()
        await publish_documents(settings, first)
        expected = expected_snapshots(first, settings)
        expected.pop(core.LEDGER_CUSTOMER, None)
        live = await eventually(
            lambda: live_snapshots(projection, set(expected)), lambda f: f == expected
        )
        assert live == expected
        worker.stop()
        tables = settings.data_dir / "faust" / "v1" / "tables"
        assert sorted(p.name for p in tables.glob("journeys-*.db")), "no RocksDB files on disk"

        worker.start()
        await publish_documents(settings, second)
        expected = expected_snapshots(documents, settings)
        expected.pop(core.LEDGER_CUSTOMER, None)
        live = await eventually(
            lambda: live_snapshots(projection, set(expected)), lambda f: f == expected
        )
        assert live == expected
    finally:
        worker.stop()
        await close_read_model(projection, settings.redis_prefix)
