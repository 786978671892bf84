"""Sending from inside the agents: straight to the producer, waiting for the broker at the end.

The agents send hundreds of messages per batch. Faust's `Topic.send` wraps each one in its own
futures and callbacks; the producer's `send` only appends to aiokafka's batch accumulator.
The unit of delivery is the batch: `delivered()` waits until the broker has acknowledged every
message sent so far, before the agent writes its tables (see `streams.app`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from streams.topics import full_name


class KafkaSender:
    """Sends raw bytes to Tandem topics (by their unprefixed names) through Faust's producer."""

    def __init__(self, producer: Any, topic_prefix: str) -> None:
        self.producer = producer
        self.topic_prefix = topic_prefix
        self._names: dict[str, str] = {}
        self._pending: list[asyncio.Future[Any]] = []

    def _name(self, topic: str) -> str:
        name = self._names.get(topic)
        if name is None:
            name = self._names[topic] = full_name(topic, self.topic_prefix)
        return name

    async def send(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Queue one message (partitioned by key, like every Faust send)."""
        future = await self.producer.send(self._name(topic), key, value, None, None, None)
        self._pending.append(future)

    async def delivered(self) -> None:
        """Wait until every queued message is on the broker; raise if any send failed."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
