"""Creating and describing Tandem's topics on the broker (aiokafka's admin client)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.settings import Settings
from streams.topics import CATALOGUE, TopicSpec, full_name

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicState:
    """A catalogue topic as found on the broker."""

    spec: TopicSpec
    name: str
    exists: bool
    partitions: int
    expected_partitions: int
    config: dict[str, str]

    @property
    def drift(self) -> list[str]:
        """Differences between the broker and the catalogue."""
        if not self.exists:
            return ["missing"]
        found = []
        if self.partitions != self.expected_partitions:
            found.append(f"partitions {self.partitions} != {self.expected_partitions}")
        for key, want in self.spec.config.items():
            have = self.config.get(key)
            if have is not None and have != want:
                found.append(f"{key}={have} (want {want})")
        return found


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30_000
    )


@dataclass(frozen=True)
class NamedTopic:
    """A topic to create: a catalogue topic under its deployment name, or a table's changelog."""

    name: str
    partitions: int
    config: dict[str, str]


def catalogue_topics(settings: Settings) -> list[NamedTopic]:
    """The catalogue's topics as this deployment names them."""
    return [
        NamedTopic(
            full_name(spec.name, settings.topic_prefix),
            spec.partition_count(settings.partitions),
            dict(spec.config),
        )
        for spec in CATALOGUE
    ]


async def create_topics(settings: Settings) -> dict[str, str]:
    """Create every catalogue topic that is missing; returns name -> created|exists."""
    return await create_named_topics(settings, catalogue_topics(settings))


async def create_named_topics(settings: Settings, topics: Sequence[NamedTopic]) -> dict[str, str]:
    """Create those of these topics that are missing; returns name -> created|exists."""
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        outcome = {topic.name: "exists" for topic in topics if topic.name in existing}
        wanted = [
            NewTopic(topic.name, topic.partitions, 1, topic_configs=dict(topic.config))
            for topic in topics
            if topic.name not in existing
        ]
        if wanted:
            response = await admin.create_topics(wanted)
            for name, code, message in _topic_errors(response):
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {name}: {message or code}")
                outcome[name] = "created" if code == 0 else "exists"
        return outcome
    finally:
        await admin.close()


async def wait_until_visible(
    settings: Settings,
    partitions: Mapping[str, int],
    *,
    timeout_s: float = 30.0,
    poll_s: float = 0.1,
) -> None:
    """Wait until the broker's metadata shows each topic with this many partitions, each led.

    A topic just created can be missing from the metadata for a moment. A consumer group that
    joins in that moment keeps "0 partitions" for it until its next metadata refresh, minutes
    later; Faust then refuses every write to a table whose changelog it is.

    Raises:
        RuntimeError: a topic has another partition count, or is still not visible in time.
    """
    admin = _admin(settings)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            seen = await _partitions(admin, list(partitions))
            for name, want in partitions.items():
                total, led = seen.get(name, (0, 0))
                if total == led and total not in (0, want):
                    raise RuntimeError(
                        f"topic {name} has {total} partitions, the worker needs {want}"
                    )
            missing = sorted(
                name for name, want in partitions.items() if seen.get(name) != (want, want)
            )
            if not missing:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise RuntimeError(
                    f"topics not visible after {timeout_s:.0f} s: {', '.join(missing)}"
                )
            await asyncio.sleep(poll_s)
    finally:
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """Topic -> how many partitions the metadata shows for it, and how many have a leader."""
    found: dict[str, tuple[int, int]] = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] == 0:
            partitions = topic["partitions"]
            led = sum(1 for p in partitions if p["error_code"] == 0 and p["leader"] >= 0)
            found[topic["topic"]] = (len(partitions), led)
    return found


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    rows = []
    for item in response.topic_errors:
        name, code = item[0], item[1]
        message = item[2] if len(item) > 2 else None
        rows.append((name, code, message))
    return rows


async def describe_topics(settings: Settings) -> list[TopicState]:
    """The catalogue topics as they are on the broker."""
    admin = _admin(settings)
    await admin.start()
    try:
        names = [full_name(spec.name, settings.topic_prefix) for spec in CATALOGUE]
        existing = set(await admin.list_topics())
        present = [n for n in names if n in existing]
        partitions: dict[str, int] = {}
        if present:
            for topic in await admin.describe_topics(present):
                partitions[topic["topic"]] = len(topic["partitions"])
        configs: dict[str, dict[str, str]] = {name: {} for name in present}
        if present:
            resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
            for response in await admin.describe_configs(resources):
                for resource in response.resources:
                    name = resource[3]
                    for entry in resource[4]:
                        configs.setdefault(name, {})[entry[0]] = entry[1]
        return [
            TopicState(
                spec=spec,
                name=name,
                exists=name in existing,
                partitions=partitions.get(name, 0),
                expected_partitions=spec.partition_count(settings.partitions),
                config=configs.get(name, {}),
            )
            for spec, name in zip(CATALOGUE, names, strict=True)
        ]
    finally:
        await admin.close()


async def delete_topics(settings: Settings) -> list[str]:
    """Delete this deployment's topics (only with a non-empty prefix: used by tests)."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete unprefixed (production) topics")
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in existing if n.startswith(settings.topic_prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()
