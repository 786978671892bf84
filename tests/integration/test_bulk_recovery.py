"""Bulk changelog recovery (`streams.adapters.recovery`) on the real broker.

The reader applies fetched changelog records through a real Faust table (memory store), as
the worker's recovery does; the table must end as the changelog says: the last value of every
key, deleted keys gone, each key in its partition.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import faust
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from faust.types import TP

from streams.adapters.recovery import (
    BulkRecoveryTableManager,
    ChangelogReader,
    bulk_readable,
    changelog_entries,
)
from streams.kafka_admin import NamedTopic, create_named_topics, delete_topics
from streams.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest_asyncio.fixture
async def changelog(settings: Settings) -> AsyncIterator[tuple[Settings, str]]:
    """A compacted three-partition changelog topic of this test's own."""
    mine = settings.model_copy(
        update={"topic_prefix": f"{settings.topic_prefix}bulk{uuid.uuid4().hex[:6]}."}
    )
    name = f"{mine.topic_prefix}journeys-changelog"
    await create_named_topics(mine, [NamedTopic(name, PARTITIONS, {"cleanup.policy": "compact"})])
    yield mine, name
    await delete_topics(mine)


async def write(
    settings: Settings, topic: str, entries: Sequence[tuple[int, bytes, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for partition, key, value in entries:
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def history(people: int) -> tuple[list[tuple[int, bytes, bytes | None]], dict[bytes, bytes]]:
    """Writes, rewrites and deletions of `people` keys; the table they leave."""
    entries: list[tuple[int, bytes, bytes | None]] = []
    expected: dict[bytes, bytes] = {}
    for version in range(3):
        for n in range(people):
            key = f"customer-{n}".encode()
            if version == 2 and n % 5 == 0:
                entries.append((n % PARTITIONS, key, None))
                expected.pop(key, None)
            elif version == 0 or n % 2 == 0:
                value = f"journey {n} v{version}".encode()
                entries.append((n % PARTITIONS, key, value))
                expected[key] = value
    return entries, expected


class Recovered:
    """A real Faust table (memory store) fed as the worker's recovery feeds it."""

    def __init__(self) -> None:
        app = faust.App(
            "bulk-test", store="memory://", key_serializer="raw", value_serializer="raw"
        )
        self.table = app.Table("journeys", key_type=bytes, value_type=bytes, default=None)
        self.store: Any = self.table.data  # Faust's memory store: its dict and key partitions
        self.read_through: dict[TP, int] = {}

    def apply(self, tp: TP, records: Sequence[Any]) -> None:
        self.table.apply_changelog_batch(changelog_entries(tp, records))  # type: ignore[arg-type]

    def mark(self, tp: TP, offset: int) -> None:
        self.read_through[tp] = offset

    def contents(self) -> dict[bytes, bytes]:
        return dict(self.store.data)


async def test_a_bulk_read_leaves_the_table_the_changelog_describes(
    changelog: tuple[Settings, str],
) -> None:
    settings, topic = changelog
    entries, expected = history(600)
    await write(settings, topic, entries)
    tps = [TP(topic, p) for p in range(PARTITIONS)]
    last = {tp: sum(1 for e in entries if e[0] == tp.partition) - 1 for tp in tps}
    recovered = Recovered()

    left = await ChangelogReader([settings.kafka_bootstrap], "test").read(
        {tp: (-1, last[tp]) for tp in tps}, recovered.apply, recovered.mark, time.monotonic() + 60
    )

    assert left == set()
    assert recovered.read_through == last
    assert recovered.contents() == expected
    partition_of = recovered.store._key_partition
    assert all(partition_of[key] == int(key.split(b"-")[1]) % PARTITIONS for key in expected)


async def test_a_bulk_read_from_an_offset_applies_only_what_follows_it(
    changelog: tuple[Settings, str],
) -> None:
    settings, topic = changelog
    await write(
        settings, topic, [(0, b"a", b"1"), (0, b"b", b"1"), (0, b"a", b"2"), (0, b"b", None)]
    )
    recovered = Recovered()
    tp = TP(topic, 0)

    left = await ChangelogReader([settings.kafka_bootstrap], "test").read(
        {tp: (1, 3)}, recovered.apply, recovered.mark, time.monotonic() + 60
    )

    assert left == set()
    assert recovered.contents() == {b"a": b"2"}  # offsets 2 and 3 only: "b" never written
    assert recovered.read_through == {tp: 3}


async def test_a_bulk_read_past_its_deadline_leaves_the_partitions_to_faust(
    changelog: tuple[Settings, str],
) -> None:
    settings, topic = changelog
    await write(settings, topic, [(1, b"a", b"1")])
    recovered = Recovered()
    tp = TP(topic, 1)

    left = await ChangelogReader([settings.kafka_bootstrap], "test").read(
        {tp: (-1, 0)}, recovered.apply, recovered.mark, time.monotonic() - 1
    )

    assert left == {tp}
    assert recovered.read_through == {}


def test_only_raw_tables_without_callbacks_are_read_in_bulk() -> None:
    app = faust.App("bulk-test", store="memory://")
    raw = app.Table("raw", key_type=bytes, value_type=bytes)
    decoded = app.Table("decoded", key_type=str, value_type=int)
    watched = app.Table("watched", key_type=bytes, value_type=bytes, on_changelog_event=_ignore)

    assert bulk_readable(raw)
    assert not bulk_readable(decoded)
    assert not bulk_readable(watched)


async def _ignore(event: Any) -> None:
    return None


async def test_a_bulk_read_that_fails_leaves_the_partitions_to_faust(
    changelog: tuple[Settings, str],
) -> None:
    # No broker answers on port 1: the bulk read is an optimisation, so recovery goes on.
    app = faust.App("bulk-test", broker="kafka://127.0.0.1:1", store="memory://",
                    TableManager=BulkRecoveryTableManager)  # fmt: skip
    table = app.Table("journeys", key_type=bytes, value_type=bytes, default=None)
    recovery: Any = app.tables.recovery
    tp = TP(changelog[1], 0)
    recovery.tp_to_table[tp] = table
    recovery.active_offsets[tp], recovery.active_highwaters[tp] = -1, 5

    await recovery._read_in_bulk({tp: (-1, 5)}, time.monotonic() + 30)

    assert recovery.active_offsets[tp] == -1  # nothing marked read: Faust's loop reads it all
    assert dict(cast(Any, table.data).data) == {}
