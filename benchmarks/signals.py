"""Reading back from the broker: hand-off signals, and when a touchpoint passed a topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from benchmarks.deployment import Deployment, partitions
from streams.topics import HANDOFF


@dataclass(frozen=True)
class Handoff:
    """A hand-off signal: whose, triggered by which touchpoint, produced when (unix s)."""

    customer_id: str
    trigger_event_id: str
    produced_at: float


async def handoffs(deployment: Deployment, *, since_ms: int = 0) -> list[Handoff]:
    """Every hand-off on the deployment's signals.handoff (Kafka timestamp >= `since_ms`)."""
    found: list[Handoff] = []
    async for record in _records(deployment, deployment.topic(HANDOFF)):
        if record.timestamp < since_ms or record.value is None:
            continue
        signal = json.loads(record.value)
        if signal.get("signal_type") == "handoff":
            found.append(
                Handoff(signal["customer_id"], signal["trigger_event_id"], record.timestamp / 1000)
            )
    return found


async def first_seen(deployment: Deployment, name: str, event_ids: set[str]) -> dict[str, float]:
    """When each touchpoint first appeared on the deployment's topic `name` (Kafka timestamp,
    unix s): the first message whose compact JSON names it as its ``"event_id"`` (a move's
    ``"cause_event_id"`` does not count: the quote before the key is part of the match)."""
    wanted = {f'"event_id":"{event_id}"'.encode(): event_id for event_id in event_ids}
    seen: dict[str, float] = {}
    async for record in _records(deployment, deployment.topic(name)):
        if record.value is None:
            continue
        for needle, event_id in wanted.items():
            if event_id not in seen and needle in record.value:
                seen[event_id] = record.timestamp / 1000
    return seen


async def _records(deployment: Deployment, topic: str) -> AsyncIterator[ConsumerRecord[Any, Any]]:
    """Every record of `topic`, partition by partition as the consumer hands them over."""
    assigned = await _described(deployment.bootstrap, topic)
    # A consumer without a group resets each assigned partition by `auto_offset_reset` in the
    # background. Left at "latest", that reset can land after `seek_to_beginning` and put
    # every position at the end: the topic then reads as empty (seen: 0 of 328 hand-offs).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=deployment.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning()
        while await _behind(consumer, ends):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()


async def _described(bootstrap: str, topic: str, attempts: int = 5) -> list[TopicPartition]:
    """The topic's partitions; an error if the broker keeps describing none (read as "no
    hand-offs", a moment's missing metadata would blame the worker)."""
    for attempt in range(attempts):
        if found := await partitions(bootstrap, [topic]):
            return found
        await asyncio.sleep(1.0 + attempt)
    raise RuntimeError(f"the broker described no partition of {topic}: nothing read")


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
