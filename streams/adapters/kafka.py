"""Sending from inside the agents: straight to the producer, checked per batch.

The agents send hundreds of messages per batch. Faust's `Topic.send` wraps each one in its own
futures and callbacks; the producer's `send` only appends to aiokafka's batch accumulator.
The unit of delivery is the batch: `delivered()` waits until the broker has acknowledged every
message sent so far — sending again whatever failed, for as long as it takes — before an agent
writes its tables or counts its batch as processed (see `streams.app`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.metrics import WORKER
from streams.topics import full_name

log = logging.getLogger("tandem.worker")

Sent = tuple[str, bytes, bytes | None, "asyncio.Future[Any]"]


class KafkaSender:
    """Sends raw bytes to Tandem topics (by their unprefixed names) through Faust's producer."""

    def __init__(self, producer: Any, topic_prefix: str) -> None:
        self.producer = producer
        self.topic_prefix = topic_prefix
        self._names: dict[str, str] = {}
        self._pending: list[Sent] = []

    def _name(self, topic: str) -> str:
        name = self._names.get(topic)
        if name is None:
            name = self._names[topic] = full_name(topic, self.topic_prefix)
        return name

    async def send(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Queue one message (partitioned by key, like every Faust send)."""
        name = self._name(topic)
        future = await self.producer.send(name, key, value, None, None, None)
        self._pending.append((name, key, value, future))

    async def _resend(self, failed: list[Sent]) -> None:
        for name, key, value, _ in failed:
            WORKER.kafka_errors.labels(topic=name.removeprefix(self.topic_prefix)).inc()
            future = await self.producer.send(name, key, value, None, None, None)
            self._pending.append((name, key, value, future))

    async def delivered(self) -> None:
        """Wait until every queued message is on the broker, re-sending failures with backoff
        (an outage is waited out, never turned into lost messages)."""
        delay = 0.2
        while self._pending:
            pending, self._pending = self._pending, []
            await asyncio.wait([sent[3] for sent in pending])
            failed = [sent for sent in pending if sent[3].exception() is not None]
            if failed:
                log.warning(
                    "%d message(s) not delivered (%s); sending again in %.1f s",
                    len(failed), failed[0][3].exception(), delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                await self._resend(failed)
