"""A deployment's tables filled directly: many journeys in state without a worker draining them.

The issue measures recovery "with 100,000 journeys in state". Draining 100,000 people through
a worker takes longer than the rest of the run, so their state is written where a worker
keeps it instead: the workflow (`streams.workflow.replay.Replayer`, the very handlers the
worker runs) takes one page view of each person, and what its in-memory ports then hold —
journeys, identity entries, timers — goes to the tables' changelog topics, encoded and
partitioned as the worker writes them (`streams.workflow.codec`, the customer id as the key
with the producer's default partitioner, as the journeys agent's messages are). A worker
started on the deployment recovers that state from the changelogs like its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from aiokafka import AIOKafkaProducer

from benchmarks.deployment import Deployment
from events import Touchpoint, parse_touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from streams.adapters.journeys import next_due
from streams.workflow.codec import journey_entries, segment_key
from streams.workflow.replay import Replayer

CHUNK = 5_000


def seed_touchpoint(n: int, now: datetime) -> Touchpoint:
    """Person `n`'s one page view, an hour before `now`."""
    return parse_touchpoint(
        {
            "event_id": f"seed-{n:07d}",
            "type": "marketing.page_viewed",
            "occurred_at": (now - timedelta(hours=1)).isoformat(),
            "source": "bench-seed",
            "identity": {"email": f"seed{n}@seed.example"},
            "properties": {"url": "https://example.com/pricing"},
        }
    )


def changelog_entries(
    people: int, playbook: Playbook, now: datetime, progress: Callable[[int], None]
) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]:
    """Journeys, identity entries and timers of `people` one-touchpoint journeys, as the
    worker's tables hold them (key -> value bytes)."""
    replayer = Replayer(playbook)
    for n in range(people):
        replayer.touchpoint(seed_touchpoint(n, now))
        if n % CHUNK == CHUNK - 1:
            progress(n + 1)
    journeys, deadlines = {}, {}
    for customer_id, stored in replayer.journeys.loaded().items():
        entries = journey_entries(stored)
        journeys[customer_id] = entries.head
        for segment in entries.segments:  # none for these short journeys; kept exact anyway
            journeys[segment_key(customer_id, segment.digest).decode()] = segment.entry()
        due = next_due(stored, playbook) if isinstance(stored, JourneyRecord) else None
        if due is not None:
            deadlines[customer_id] = due.isoformat().encode()
    store = replayer.store
    identity = {identifier: cid.encode() for identifier, cid in store.customers.items()}
    for customer_id, members in store.members.items():
        identity[f"members:{customer_id}"] = json.dumps(sorted(members)).encode()
    return journeys, identity, deadlines


async def write_changelogs(
    deployment: Deployment, tables: dict[str, dict[str, bytes]]
) -> dict[str, int]:
    """Write each table's entries to its changelog topic; returns entries per table."""
    settings = deployment.settings
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap, linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for table, entries in tables.items():
            topic = f"{settings.topic_prefix}{settings.app_id}-{table}-changelog"
            for chunk in _chunks(list(entries.items()), CHUNK):
                for key, value in chunk:
                    await producer.send(topic, value, key=key.encode())
                await producer.flush()
    finally:
        await producer.stop()
    return {table: len(entries) for table, entries in tables.items()}


def _chunks(items: list[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
