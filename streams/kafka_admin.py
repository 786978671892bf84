"""Creating and describing Tandem's topics on the broker (aiokafka's admin client)."""

from __future__ import annotations

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


async def create_topics(settings: Settings) -> dict[str, str]:
    """Create every catalogue topic that is missing; returns name -> created|exists."""
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                full_name(spec.name, settings.topic_prefix),
                spec.partition_count(settings.partitions),
                1,
                topic_configs=dict(spec.config),
            )
            for spec in CATALOGUE
            if full_name(spec.name, settings.topic_prefix) not in existing
        ]
        outcome = {
            full_name(spec.name, settings.topic_prefix): "exists"
            for spec in CATALOGUE
            if full_name(spec.name, settings.topic_prefix) in existing
        }
        if wanted:
            response = await admin.create_topics(wanted)
            for name, code, message in _topic_errors(response):
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {name}: {message or code}")
                outcome[name] = "created" if code == 0 else "exists"
        return outcome
    finally:
        await admin.close()


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
