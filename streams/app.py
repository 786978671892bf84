"""The composition root of the stream processor: Faust topics, tables, agents and timers.

The journey logic lives in `streams.journey` (pure) and the workflow in `streams.workflow`
(typed messages, handlers, units of work); this module wires them to Faust, Kafka and Redis.
Each agent takes its input in batches, decodes, calls the workflow's handlers, and flushes.

Flow (all agents concurrency 1, at-least-once, idempotent state):

    touchpoints.marketing ┐                       ┌─> touchpoints.deadletter (invalid input)
    touchpoints.sales     ┴─ ingest (validate) ───┴─> touchpoints.accepted (1 partition)
    touchpoints.accepted ── identity (identifier -> customer id, moves) ──> touchpoints.resolved
    touchpoints.resolved ── journeys (fold, merge, timers) ──> journeys.state, signals.*, Redis

Order of effects per batch, for at-least-once without lost work: messages to other topics
first, then — once the broker has them — Redis, then the agent's own tables. A crash in between
repeats the batch; every handler ignores what it has already done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import faust
from faust.exceptions import NotReady
from faust.streams import Stream
from mode.utils.times import want_seconds

from streams import journey as core
from streams.adapters.agents import FORGET_KEY as FORGET_KEY  # `tandem forget` sends it
from streams.adapters.agents import UNMERGE_KEY as UNMERGE_KEY  # `tandem unmerge` sends it
from streams.adapters.agents import Agents, Event, utcnow
from streams.adapters.consumer import InOrder, ProcessedMessages, commit_only_processed
from streams.adapters.deadlines import TicksInFlight, encode_due, is_due
from streams.adapters.kafka import KafkaSender
from streams.adapters.recovery import BulkRecoveryTableManager
from streams.adapters.supervision import AgentSupervisor
from streams.adapters.tables import TableIdentityStore, TableJourneyStore
from streams.kafka_admin import NamedTopic
from streams.metrics import WORKER
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.topics import (
    ACCEPTED,
    ALERTS,
    DEADLETTER,
    DEADLETTER_MAX_BYTES,
    HANDOFF,
    JOURNEYS,
    MARKETING,
    NURTURE,
    RESOLVED,
    SALES,
    SUPPRESSIONS,
    full_name,
    spec,
)
from streams.workflow.codec import playbook_version_of
from streams.workflow.messages import (
    ForgetRequest,
    Reevaluate,
    Tick,
    UnmergeRequest,
    encode,
)

log = logging.getLogger("tandem.worker")

SUPERVISED: dict[str, Any] = {"concurrency": 1, "supervisor_strategy": AgentSupervisor}
"""Every agent: one actor (in order per partition), stopping the worker if it keeps crashing."""


@dataclass
class TandemApp:
    """The wired Faust app and the handles tests and the CLI need."""

    app: faust.App
    settings: Settings
    playbook: core.Playbook
    topics: dict[str, faust.TopicT] = field(default_factory=dict)


def _raw_topic(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
    return app.topic(
        full_name(name, settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec(name).partition_count(settings.partitions),
        internal=False,
    )


class _FaustApp(faust.App):
    """Faust's app, with a consumer that commits only what the agents processed."""

    source_topics: frozenset[str] = frozenset()
    """The agents' input topics (full names); see `streams.adapters.consumer`."""

    processed: ProcessedMessages
    """What the agents have processed: only that is committed."""

    in_order: InOrder
    """What the agents may process now: each input partition's messages in offset order."""

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        self.in_order = InOrder(consumer, self, self.source_topics)
        commit_only_processed(
            consumer, self, self.source_topics, self.processed, self.in_order.rewind
        )
        return consumer


def _faust_app(settings: Settings) -> _FaustApp:
    app = _FaustApp(
        f"{settings.topic_prefix}{settings.app_id}",
        broker=settings.broker_url,
        store=settings.store,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # A restarted worker must not wait a minute for its dead former self.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        # A commit flushes the producer first: once per batch or second, not per 100 messages.
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
        web_enabled=False,
        autodiscover=False,
        # No timer runs on the leader only: the leader topic would be one more topic to create
        # and to see in the metadata before joining.
        topic_disable_leader=True,
        # Tandem controls its own encodings: bytes in, bytes out, JSON produced by pydantic.
        key_serializer="raw",
        value_serializer="raw",
        producer_max_request_size=DEADLETTER_MAX_BYTES,
        # Batches of hundreds of small sends per partition.
        producer_linger_ms=1,
        producer_max_batch_size=512 * 1024,
        # Tables recover by reading their changelogs in batches (streams/adapters/recovery.py).
        TableManager=BulkRecoveryTableManager,
    )
    app.processed = ProcessedMessages()
    app.source_topics = frozenset(
        full_name(name, settings.topic_prefix) for name in (MARKETING, SALES, ACCEPTED, RESOLVED)
    )
    return app


def _suppressions(app: faust.App, settings: Settings) -> Any:
    """Suppression digest -> forget request id. Its changelog is named by the deployment, not
    the app id, so that a worker rebuilding from the topics under a fresh app id restores it."""
    changelog = app.topic(
        full_name(SUPPRESSIONS, settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=1,
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
        allow_empty=True,
    )
    return app.Table(
        "suppressions",
        default=None,
        partitions=1,
        key_type=bytes,
        value_type=bytes,
        changelog_topic=changelog,
        help="suppression digest of a forgotten person's identifier -> forget request id",
    )


def _tables(app: faust.App, settings: Settings) -> tuple[Any, Any, Any]:
    """The worker's changelog-backed tables: identity, journeys, deadlines."""
    identities = app.Table(
        "identity",
        default=None,
        partitions=1,
        key_type=bytes,
        value_type=bytes,
        help="identifier -> customer id, and members:<customer id> -> identifiers",
    )
    journeys = app.Table(
        "journeys",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        help="customer id -> journey record, or the pointer a moved journey left",
    )
    deadlines = app.Table(
        "deadlines",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        help="customer id -> next timer due (ISO time)",
    )
    return identities, journeys, deadlines


def changelog_topics(app: faust.App) -> list[NamedTopic]:
    """The tables' changelog topics, configured as Faust would create them when it starts.

    The worker creates them first and waits until the metadata shows them: Faust creates them
    moments before the group joins, and a join that misses one leaves that table unwritable.
    """
    found = []
    for table in app.tables.values():
        topic = table.changelog_topic
        policies = sorted(
            policy
            for policy, on in (("compact", topic.compacting), ("delete", topic.deleting))
            if on
        )
        config = {"cleanup.policy": ",".join(policies)} if policies else {}
        if topic.retention:
            config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        config.update({key: str(value) for key, value in (topic.config or {}).items()})
        found.append(NamedTopic(topic.get_topic_name(), topic.partitions or 1, config))
    return found


def _wake_journeys(
    app: faust.App,
    settings: Settings,
    playbook: core.Playbook,
    journeys: Any,
    deadlines: Any,
    resolved: faust.TopicT,
    ticks: TicksInFlight,
) -> None:
    """The timer that wakes journeys: due SLA and nurture timers, and, once per start, those
    evaluated under another playbook version (re-evaluated now, not at their next message)."""
    swept: list[bool] = []

    async def wake() -> None:
        if not swept and not getattr(app.tables, "recovery").in_recovery:  # noqa: B009
            swept.append(True)
            for key, stored in list(journeys.items()):
                version = playbook_version_of(stored)
                if version is not None and version != playbook.version:
                    await resolved.send(key=key, value=encode(Reevaluate()))
        now = utcnow()
        cut = encode_due(now)
        due = [(key, stored) for key, stored in list(deadlines.items())
               if stored and is_due(stored, cut, now)]  # fmt: skip
        keys = ticks.to_tick(due, time.monotonic())
        WORKER.timer_ticks.labels(outcome="sent").inc(len(keys))
        WORKER.timer_ticks.labels(outcome="held").inc(len(due) - len(keys))
        for key in keys:
            await resolved.send(key=key, value=encode(Tick(now=now)))

    async def wake_unless_stopping() -> None:
        try:
            await wake()
        except NotReady:  # the worker is stopping: the next start wakes what is due
            log.info("timers skipped: the producer is stopping")

    app.timer(settings.timer_interval_s)(wake_unless_stopping)


def _topics(app: faust.App, settings: Settings) -> dict[str, faust.TopicT]:
    """The worker's topics by catalogue name, as raw bytes (Tandem encodes its own values)."""
    return {
        name: _raw_topic(app, settings, name)
        for name in (MARKETING, SALES, DEADLETTER, ACCEPTED, RESOLVED, JOURNEYS, HANDOFF,
                     NURTURE, ALERTS)
    }  # fmt: skip


def _touchpoint_sources(app: faust.App, settings: Settings) -> faust.TopicT:
    """Both input topics as one: the ingest agent reads marketing and sales together."""
    return app.topic(
        full_name(MARKETING, settings.topic_prefix),
        full_name(SALES, settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def _agents(
    app: faust.App,
    settings: Settings,
    playbook: core.Playbook,
    identities: Any,
    journeys: Any,
    deadlines: Any,
) -> Agents:
    """The agents' logic over the worker's tables and the Redis projection."""
    return Agents(
        topic_prefix=settings.topic_prefix,
        marketing_topic=full_name(MARKETING, settings.topic_prefix),
        playbook=playbook,
        identities=TableIdentityStore(identities, _suppressions(app, settings)),
        journeys=TableJourneyStore(journeys, cache_size=settings.journeys_in_memory),
        deadlines=deadlines,
        ticks=TicksInFlight(resend_after_s=12 * settings.timer_interval_s),
        projection=JourneyProjection.from_url(
            settings.redis_url, settings.redis_prefix, timeout_s=settings.redis_timeout_s
        ),
    )


def build_app(settings: Settings, playbook: core.Playbook) -> TandemApp:
    """Wire the Faust app for these settings and this playbook."""
    app = _faust_app(settings)
    topics = _topics(app, settings)
    touchpoint_sources = _touchpoint_sources(app, settings)
    identities, journeys, deadlines = _tables(app, settings)
    # Table writes wait in Faust's producer buffer, and Faust holds every stream back while it
    # holds more than `max_messages` (100): a batch writes hundreds at once, by design.
    app.producer.buffer.max_messages = 8 * settings.batch_size
    agents = _agents(app, settings, playbook, identities, journeys, deadlines)
    # As many fold states as decoded journeys: a cached journey whose state was dropped would
    # refold in full, and walk every touchpoint again for its KPI facts, on its next change.
    core.keep_fold_states(settings.journeys_in_memory)

    def batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[Event]]:
        """The stream in batches: up to `batch_size` events, or what came within the wait."""
        take: Any = cast(Stream[bytes], stream).take_events
        batched: AsyncIterator[Sequence[Event]] = take(settings.batch_size, settings.batch_within_s)
        return batched

    def sender() -> KafkaSender:
        # The producer exists once the app runs; each agent has its own sender.
        return KafkaSender(app.producer, settings.topic_prefix)

    @app.agent(touchpoint_sources, name="ingest", **SUPERVISED)
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        """Validate every input; valid touchpoints go on to identity, the rest dead-letter."""
        out = sender()
        async for batch in batches(stream):
            events = await app.in_order.admit(batch)
            with WORKER.batch("ingest", len(events)):
                await agents.ingest(events, out)
            app.processed.mark(events)

    @app.agent(topics[ACCEPTED], name="identity", **SUPERVISED)
    async def identity(stream: faust.StreamT[bytes]) -> None:
        """Resolve each touchpoint's identifiers to one customer id; emit journey moves."""
        out = sender()
        async for batch in batches(stream):
            events = await app.in_order.admit(batch)
            with WORKER.batch("identity", len(events)):
                await agents.identity(events, out)
            app.processed.mark(events)

    @app.agent(topics[RESOLVED], name="journeys", **SUPERVISED)
    async def journey_agent(stream: faust.StreamT[bytes]) -> None:
        """Fold touchpoints into journeys, absorb moved journeys, run timers, emit signals."""
        out = sender()
        async for batch in batches(stream):
            events = await app.in_order.admit(batch)
            with WORKER.batch("journeys", len(events)):
                await agents.journeys_batch(events, out)
            app.processed.mark(events)

    _wake_journeys(app, settings, playbook, journeys, deadlines, topics[RESOLVED], agents.ticks)
    return TandemApp(app=app, settings=settings, playbook=playbook, topics=topics)


def unmerge_request(
    customer_id: str, identifiers: list[str], request_id: str, requested_at: datetime
) -> bytes:
    """The value of an unmerge request the identity agent carries out (see `tandem unmerge`)."""
    request = UnmergeRequest(
        customer_id=customer_id,
        identifiers=identifiers,
        request_id=request_id,
        requested_at=requested_at,
    )
    return encode(request)


def forget_request(request: ForgetRequest) -> bytes:
    """The value of a forget request the identity agent carries out (key `FORGET_KEY`)."""
    return encode(request)
