"""A throwaway Tandem deployment on the real broker and Redis: its own topics, app id, keys.

Like the integration tests (tests/stack.py): a fresh topic prefix, Faust app id and Redis key
prefix per deployment, so runs never see each other's data; `delete()` removes its topics and
Redis keys. Also the broker-side helpers the measures share: publishing a backlog, end
offsets, and the consumer-group lag that defines "drained".
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from events import Touchpoint
from events.publisher import TouchpointPublisher
from streams.kafka_admin import (
    NamedTopic,
    catalogue_topics,
    create_named_topics,
    delete_topics,
    wait_until_visible,
)
from streams.settings import Settings
from streams.topics import (
    ALERTS,
    DEADLETTER,
    HANDOFF,
    JOURNEYS,
    NURTURE,
    TOUCHPOINT_TOPICS,
    WEBHOOK_DEADLETTER,
    full_name,
)

RUN_ID = uuid.uuid4().hex[:6]
"""Tells this run's topics and keys from any other's (`bench<run>-<tag>.`)."""

# What the worker writes but never reads back as a consumer: left out of "drained".
OUTPUT_TOPICS = (DEADLETTER, JOURNEYS, HANDOFF, NURTURE, ALERTS, WEBHOOK_DEADLETTER)


class Deployment:
    """Settings, topics and Redis keys of one benchmark deployment."""

    def __init__(self, tag: str, *, store: str = "memory://", partitions: int = 4) -> None:
        self.tag = tag
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"tandem-bench-{tag}-"))
        base = Settings()
        self.settings = Settings(
            kafka_bootstrap=base.kafka_bootstrap,
            redis_url=base.redis_url,
            topic_prefix=f"bench{RUN_ID}-{tag}.",
            app_id="tandem-bench",
            redis_prefix=f"tandem-bench-{RUN_ID}-{tag}:",
            partitions=partitions,
            store=store,
            data_dir=self.data_dir,
        )

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    @property
    def group_id(self) -> str:
        """The worker's consumer group (Faust: the app id, which carries the topic prefix)."""
        return f"{self.settings.topic_prefix}{self.settings.app_id}"

    def topic(self, name: str) -> str:
        return full_name(name, self.settings.topic_prefix)

    @property
    def input_topics(self) -> list[str]:
        return [self.topic(name) for name in TOUCHPOINT_TOPICS]

    def env(self) -> dict[str, str]:
        """``TANDEM_*`` variables that make a `tandem` subprocess use these settings."""
        env = {}
        for name, value in self.settings.model_dump().items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, dict | list) else str(value)
                env[f"TANDEM_{name.upper()}"] = text
        return env

    async def create(self, extra_topics: Sequence[str] = ()) -> None:
        """Tandem's topics (`streams.kafka_admin`), plus `extra_topics` (full names).

        Returns once every partition has a leader: a worker that joins its group before then
        can be assigned none of them (and sit idle until the next rebalance).
        """
        partitions = self.settings.partitions
        topics = catalogue_topics(self.settings)
        topics += [NamedTopic(name, partitions, {}) for name in extra_topics]
        await create_named_topics(self.settings, topics)
        await wait_until_visible(self.settings, {topic.name: topic.partitions for topic in topics})

    async def publish(self, touchpoints: Iterable[Touchpoint]) -> int:
        """Publish touchpoints the way tools do (`TouchpointPublisher`); all acknowledged."""
        async with TouchpointPublisher(self.bootstrap, self.settings.topic_prefix) as publisher:
            for touchpoint in touchpoints:
                await publisher.publish(touchpoint)
            return publisher.sent

    async def delete(self) -> None:
        """Delete this deployment's topics and Redis keys."""
        await delete_topics(self.settings)
        redis = Redis.from_url(self.settings.redis_url)
        try:
            keys = [k async for k in redis.scan_iter(f"{self.settings.redis_prefix}*", count=1000)]
            for i in range(0, len(keys), 1000):
                await redis.delete(*keys[i : i + 1000])
        finally:
            await redis.aclose()

    async def live_journeys(self) -> int:
        """How many live journeys the read model lists (the worker's Redis set)."""
        redis = Redis.from_url(self.settings.redis_url)
        try:
            return int(await redis.scard(f"{self.settings.redis_prefix}journeys"))
        finally:
            await redis.aclose()


async def partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, as the broker describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    )


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of `topics`."""
    wanted = await partitions(bootstrap, topics)
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(wanted))
    finally:
        await consumer.stop()


class OffsetWatcher:
    """End offsets of some topics, polled often over one connection (``async with``)."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self._partitions: list[TopicPartition] = []
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> OffsetWatcher:
        self._partitions = await partitions(self.bootstrap, self.topics)
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def ends(self) -> dict[TopicPartition, int]:
        return dict(await self._consumer.end_offsets(self._partitions))

    async def total(self) -> int:
        return sum((await self.ends()).values())


async def wait_for_messages(bootstrap: str, topic: str, expected: int, timeout: float) -> float:
    """Poll `topic`'s end offsets every 20 ms until it holds `expected` messages; the
    `time.time()` it did (TimeoutError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    async with OffsetWatcher(bootstrap, [topic]) as watcher:
        while time.monotonic() < deadline:
            if await watcher.total() >= expected:
                return time.time()
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{topic} did not hold {expected:,} messages within {timeout:.0f} s")


async def message_count(bootstrap: str, topics: Sequence[str]) -> int:
    """Messages in `topics` (sum of end offsets: no compaction or deletion in a bench run)."""
    return sum((await end_offsets(bootstrap, topics)).values())


async def consumed_topics(deployment: Deployment) -> list[str]:
    """The deployment's topics its worker consumes: inputs and internal topics.

    Everything under the prefix except what the worker only writes (snapshots, signals, dead
    letters), Faust's table changelogs (read only on recovery) and its assignor topic.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    outputs = {deployment.topic(name) for name in OUTPUT_TOPICS}
    return sorted(
        name
        for name in names
        if name.startswith(deployment.settings.topic_prefix)
        and name not in outputs
        and not name.endswith("-changelog")
        and "__assignor" not in name
        and ".bench." not in name  # the ceilings' output topics
    )


async def group_lag(deployment: Deployment, topics: Sequence[str]) -> dict[str, int]:
    """Messages the worker's consumer group has not committed yet, per topic."""
    ends = await end_offsets(deployment.bootstrap, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(deployment.group_id)
    finally:
        await admin.close()
    lag: dict[str, int] = {topic: 0 for topic in topics}
    for partition, end in ends.items():
        meta = committed.get(partition)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag[partition.topic] += max(0, end - done)
    return lag
