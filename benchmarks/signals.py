"""Reading hand-off signals back from the broker, with the time the worker produced each."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

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
    topic = deployment.topic(HANDOFF)
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
        found: list[Handoff] = []
        while await _behind(consumer, ends):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.timestamp < since_ms or record.value is None:
                        continue
                    signal = json.loads(record.value)
                    if signal.get("signal_type") == "handoff":
                        found.append(
                            Handoff(signal["customer_id"], signal["trigger_event_id"],
                                    record.timestamp / 1000)
                        )  # fmt: skip
        return found
    finally:
        await consumer.stop()


async def _described(bootstrap: str, topic: str, attempts: int = 5) -> list[TopicPartition]:
    """The topic's partitions; an error if the broker keeps describing none (read as "no
    hand-offs", a moment's missing metadata would blame the worker)."""
    for attempt in range(attempts):
        if found := await partitions(bootstrap, [topic]):
            return found
        await asyncio.sleep(1.0 + attempt)
    raise RuntimeError(f"the broker described no partition of {topic}: hand-offs not read")


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
