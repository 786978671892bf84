"""Live = replay: an isolated deployment, waiting for a worker to drain, and the comparison.

Used by the tests that publish a large generated backlog (`streams.workload`) and require the
journeys a worker leaves in Redis to equal what `streams.journey.replay` computes from the
same events.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from events import parse_touchpoint
from events.publisher import TouchpointPublisher
from streams import journey as core
from streams import workflow
from streams.kafka_admin import create_topics, delete_topics
from streams.playbooks import load_configured_playbook
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.topics import ACCEPTED, MARKETING, RESOLVED, SALES, full_name
from tests.integration.helpers import TIMER_RULES, comparable

Journey = dict[str, Any]


@asynccontextmanager
async def isolated_deployment(
    settings: Settings, name: str, data_dir: Path
) -> AsyncIterator[tuple[Settings, JourneyProjection]]:
    """Own topics, consumer group and Redis keys: no other test's data, no other worker."""
    run = uuid.uuid4().hex[:6]
    own = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}{name}{run}.",
            "redis_prefix": f"{settings.redis_prefix}{name}{run}:",
            "app_id": f"tandem-{name}{run}",
            "data_dir": data_dir,
        }
    )
    await create_topics(own)
    projection = JourneyProjection.from_url(own.redis_url, own.redis_prefix)
    try:
        yield own, projection
    finally:
        keys = [k async for k in projection.redis.scan_iter(f"{own.redis_prefix}*")]
        if keys:
            await projection.redis.delete(*keys)
        await projection.close()
        await delete_topics(own)


async def publish(settings: Settings, documents: list[dict[str, Any]]) -> None:
    """Publish documents in the order given (the publisher keys and routes each one)."""
    touchpoints = [parse_touchpoint(d) for d in documents]
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for start in range(0, len(touchpoints), 500):
            await publisher.publish_batch(touchpoints[start : start + 500])


@asynccontextmanager
async def lag_probe(settings: Settings) -> AsyncIterator[Callable[[], Awaitable[int | None]]]:
    """A function returning the messages this deployment's consumer groups have not committed.

    Every partition of the worker's input topics counts, committed or not. None while no group
    has committed anything yet.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await admin.start()
    await consumer.start()

    sources = [
        full_name(name, settings.topic_prefix) for name in (MARKETING, SALES, ACCEPTED, RESOLVED)
    ]

    async def lag() -> int | None:
        # Faust's group is the app id behind the topic prefix; a plain consumer may use either.
        mine = (settings.topic_prefix, settings.app_id)
        groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(mine)]
        committed: dict[TopicPartition, int] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed.update({tp: meta.offset for tp, meta in offsets.items()})
        if not committed:
            return None
        # A partition the worker has never committed lags by all it holds, not by nothing.
        never = [tp for tp in await _partitions_of(admin, sources) if tp not in committed]
        committed.update(await consumer.beginning_offsets(never) if never else {})
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(committed))
        return sum(max(0, ends[tp] - max(offset, 0)) for tp, offset in committed.items())

    try:
        yield lag
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions_of(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """Every partition of those of these topics that exist."""
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in await admin.describe_topics(topics)
        if topic["error_code"] == 0
        for partition in topic["partitions"]
    ]


async def consumer_lag(settings: Settings) -> int | None:
    """The deployment's consumer lag, once (see `lag_probe`)."""
    async with lag_probe(settings) as lag:
        return await lag()


async def _fingerprint(projection: JourneyProjection) -> tuple[int, int]:
    """How many live journeys, and the sum of their versions (changes with every write)."""
    ids = sorted(await projection.customer_ids())
    pipe = projection.redis.pipeline(transaction=False)
    for customer_id in ids:
        pipe.hget(projection._journey_key(customer_id), "version")
    versions = await pipe.execute()
    return len(ids), sum(int(v) for v in versions if v is not None)


async def wait_until_drained(
    settings: Settings,
    projection: JourneyProjection,
    *,
    expected_journeys: int,
    timeout: float = 180.0,
    quiet: float = 4.0,
) -> float:
    """Wait until the group has committed everything and Redis has stopped changing.

    Returns the seconds waited; raises `TimeoutError` (with the last lag and journey count)
    when the worker has not drained the backlog within `timeout`.
    """
    started = time.monotonic()
    last: tuple[int, int] | None = None
    stable_since = started
    lag: int | None = None
    async with lag_probe(settings) as probe:
        while time.monotonic() - started < timeout:
            lag = await probe()
            state = await _fingerprint(projection)
            if state != last or lag != 0 or state[0] < expected_journeys // 2:
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return time.monotonic() - started
            last = state
            await asyncio.sleep(1.0)
    raise TimeoutError(f"not drained in {timeout:.0f} s: lag {lag}, journeys and versions {last}")


def key_fields(snapshot: Journey) -> Journey:
    """What must be equal: identities, touchpoints, stage, active event-driven signals.

    Redis keeps the last 20 touchpoints' summaries, the total and the count per type; timer
    signals are left out (they depend on the wall clock).
    """
    return {
        "identities": sorted(snapshot["identities"]),
        "touchpoints": [t["event_id"] for t in snapshot["recent_touchpoints"]],
        "touchpoint_count": snapshot["counts"]["touchpoints"],
        "by_type": snapshot["counts"]["by_type"],
        "stage": snapshot["stage"],
        "active_signals": sorted(
            (s["signal_id"], s["rule"], s["occurred_at"])
            for s in snapshot["signals"]
            if s["status"] == "active" and s["rule"] not in TIMER_RULES
        ),
    }


def signal_versions(snapshot: Journey) -> list[tuple[str, int]]:
    """Active event-driven signals with their versions.

    Not part of the equality: a version counts re-emissions with changed content, and which
    intermediate states a journey passes through depends on the arrival order (the pure core
    replaying the same 1,000-person backlog in two orders gives different versions for about
    two thirds of the journeys). Reported, not asserted.
    """
    return sorted(
        (s["signal_id"], s["version"])
        for s in snapshot["signals"]
        if s["status"] == "active" and s["rule"] not in TIMER_RULES
    )


def expected_journeys(documents: list[dict[str, Any]], settings: Settings) -> dict[str, Journey]:
    """The replay's snapshots, by customer id, of the documents in the order given."""
    playbook = load_configured_playbook(settings)
    result = workflow.replay([parse_touchpoint(d) for d in documents], playbook)
    return {
        cid: core.snapshot(record, playbook).model_dump(mode="json")
        for cid, record in result.records.items()
    }


@dataclass
class Comparison:
    """How the live journeys differ from the replay's."""

    expected: int
    live: int
    extra: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: dict[str, list[str]] = field(default_factory=dict)
    """customer id -> the key fields that differ"""
    other_differences: list[str] = field(default_factory=list)
    """customer ids equal on the key fields that differ elsewhere in the snapshot"""
    examples: list[str] = field(default_factory=list)
    version_differences: int = 0
    """journeys equal on the key fields whose active signals differ in version only"""

    @property
    def equal(self) -> bool:
        return not (self.extra or self.missing or self.mismatched or self.other_differences)

    def summary(self) -> str:
        fields = Counter(name for names in self.mismatched.values() for name in names)
        lines = [
            f"live {self.live} journeys, replay {self.expected}: {len(self.extra)} extra, "
            f"{len(self.missing)} missing, {len(self.mismatched)} differ on key fields "
            f"({dict(fields)}), {len(self.other_differences)} differ elsewhere "
            f"({self.version_differences} more differ in signal versions only: not asserted)",
            *self.examples[:8],
        ]
        return "\n".join(lines)


def compare(expected: dict[str, Journey], live: dict[str, Journey]) -> Comparison:
    """Every live journey against the replay's, and no journey on one side only."""
    out = Comparison(expected=len(expected), live=len(live))
    out.extra = sorted(set(live) - set(expected))
    out.missing = sorted(set(expected) - set(live))
    for cid in out.extra[:3]:
        snap = live[cid]
        out.examples.append(
            f"extra {cid}: stage {snap['stage']}, identities {snap['identities']}, "
            f"{snap['counts']['touchpoints']} touchpoints"
        )
    for cid in sorted(set(live) & set(expected)):
        mine, theirs = key_fields(live[cid]), key_fields(expected[cid])
        differing = [name for name in theirs if mine[name] != theirs[name]]
        if differing:
            out.mismatched[cid] = differing
            if len(out.mismatched) <= 3:
                name = differing[0]
                out.examples.append(f"{cid} {name}: live {mine[name]!r} != {theirs[name]!r}")
            continue
        out.version_differences += signal_versions(live[cid]) != signal_versions(expected[cid])
        if comparable(live[cid]) != comparable(expected[cid]):
            out.other_differences.append(cid)
            if len(out.other_differences) <= 2:
                a, b = comparable(live[cid]), comparable(expected[cid])
                names = [k for k in b if a.get(k) != b[k]]
                out.examples.append(f"{cid} differs in {names}")
    return out
