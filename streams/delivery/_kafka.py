"""What the signal consumers share: the signal topics by kind, the consumer, idle tracking."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Literal, get_args

from aiokafka import AIOKafkaConsumer

from streams.settings import Settings
from streams.topics import ALERTS, HANDOFF, NURTURE, full_name

SignalKind = Literal["handoff", "nurture", "alerts"]
"""The three signal streams, by the short name the CLI and the webhook config use."""

SIGNAL_KINDS: tuple[SignalKind, ...] = get_args(SignalKind)

KIND_TOPICS: dict[SignalKind, str] = {"handoff": HANDOFF, "nurture": NURTURE, "alerts": ALERTS}
"""Kind -> unprefixed topic name."""

TOPIC_KINDS: dict[str, SignalKind] = {topic: kind for kind, topic in KIND_TOPICS.items()}


class TopicMissingError(RuntimeError):
    """A signal topic does not exist on the broker (`tandem topics create` makes it)."""


def group_id(settings: Settings, group: str) -> str:
    """The consumer group on the broker: the deployment's prefix, then the group name.

    Prefixed like every other name Tandem puts on the broker, so test runs and deployments
    sharing a broker never share committed offsets.
    """
    return f"{settings.topic_prefix}{group}"


def signal_consumer(
    settings: Settings,
    kinds: Iterable[SignalKind],
    group: str,
    *,
    from_beginning: bool,
    client_id: str,
    max_poll_records: int = 100,
    max_poll_interval_ms: int = 300_000,
) -> AIOKafkaConsumer:
    """A consumer-group member for the signal topics of `kinds`, committing by hand only.

    Not subscribed yet: `start_and_subscribe` checks the topics exist first.
    """
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(settings, group),
        client_id=f"{client_id}-{uuid.uuid4().hex[:6]}",
        # Only where a new group starts; a group with committed offsets resumes from them.
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        max_poll_records=max_poll_records,
        max_poll_interval_ms=max_poll_interval_ms,
        # Stops waiting for a dead former member of the group after 10 s, not 45.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
    )


async def start_and_subscribe(
    consumer: AIOKafkaConsumer, settings: Settings, kinds: Iterable[SignalKind]
) -> None:
    """Start `consumer` and subscribe it to the signal topics of `kinds`.

    Fails at once with `TopicMissingError` when a topic is missing — subscribing first would
    make the client retry metadata for a minute (or the broker auto-create the topic with the
    wrong partitions). The consumer is stopped again on any failure.
    """
    topics = [full_name(KIND_TOPICS[kind], settings.topic_prefix) for kind in kinds]
    await consumer.start()
    try:
        existing = await consumer.topics()
        missing = [topic for topic in topics if topic not in existing]
        if missing:
            raise TopicMissingError(
                f"topic(s) {', '.join(missing)} do not exist on {settings.kafka_bootstrap}; "
                "run `tandem topics create`"
            )
        consumer.subscribe(topics)
    except BaseException:
        await consumer.stop()
        raise


class IdleClock:
    """How long a consumer has had nothing to do, counted only while it owns partitions.

    Joining a group takes a few seconds (the broker waits for more members), and that wait
    must not count as idleness, or `--idle-exit 2` would stop before reading anything.
    """

    def __init__(self) -> None:
        self._since: float | None = None

    def busy(self) -> None:
        """Something was handled: idleness starts again from now."""
        self._since = time.monotonic()

    def idle_for(self, assigned: bool) -> float:
        """Seconds idle so far (0 while no partition is assigned)."""
        now = time.monotonic()
        if not assigned:
            self._since = None
            return 0.0
        if self._since is None:
            self._since = now
        return now - self._since
