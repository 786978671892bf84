"""Reading topics to their end and waiting for the read model, for integration tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from events import parse_touchpoint
from events.publisher import TouchpointPublisher
from streams.settings import Settings
from streams.topics import full_name

T = TypeVar("T")

TIMER_RULES = frozenset(
    {
        "handoff_sla_breached",
        "handoff_sla_escalated",
        "nurture.stalled",
        "nurture.upsell",
        "nurture.renewal",
    }
)


async def read_topic(settings: Settings, topic: str) -> list[tuple[str | None, Any]]:
    """Every message of a topic from the beginning to its current end: (key, JSON value)."""
    name = full_name(topic, settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",  # a background reset to "latest" can land after the seek
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(name)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[str | None, Any]] = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for message in batch.get(tp, []):
                    key = message.key.decode() if message.key else None
                    value = json.loads(message.value) if message.value else None
                    out.append((key, value))
        return out
    finally:
        await consumer.stop()


async def publish_documents(settings: Settings, documents: list[dict[str, Any]]) -> None:
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in documents:
            await publisher.publish(parse_touchpoint(document))


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float = 60.0,
    interval: float = 0.5,
) -> T:
    """Poll `probe` until `done(result)`; return the last result (asserted by the caller)."""
    deadline = time.monotonic() + timeout
    result = await probe()
    while not done(result) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        result = await probe()
    return result


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without what legitimately depends on delivery history.

    `version` counts the changes (merges included), `as_of`/`merges` record when and through
    which event journeys met, and signal versions count corrections.
    """
    kept = {k: v for k, v in snapshot.items() if k not in ("version", "merges", "signals")}
    # Timer signals (SLA, stalled, upsell, renewal) depend on the wall clock, not on events.
    kept["active_signal_ids"] = sorted(
        s["signal_id"]
        for s in snapshot["signals"]
        if s["status"] == "active" and s["rule"] not in TIMER_RULES
    )
    return kept
