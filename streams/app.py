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
first, then — once the broker has them — the agent's own tables, then Redis. A crash in between
repeats the batch; every handler ignores what it has already done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast

import faust
from faust.streams import Stream
from faust.types import EventT
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events import decode_touchpoint, touchpoint_to_json
from events.decode import ReasonCode, Rejection
from events.vocabulary import TOUCHPOINT
from schemas.deadletter import DeadLetter, Origin, dead_letter_for
from streams import journey as core
from streams.adapters.journeys import JourneyWrite, next_due, prepare, read_model_batch
from streams.adapters.kafka import KafkaSender
from streams.adapters.tables import TableIdentityStore, TableJourneyStore, in_partition_of
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
    full_name,
    spec,
)
from streams.workflow import handlers
from streams.workflow.codec import playbook_version_of
from streams.workflow.messages import (
    Reevaluate,
    Tick,
    UnmergeRequest,
    decode_journey_message,
    encode,
)
from streams.workflow.unit import Command, IdentityUnit, JourneyUnit, Outgoing

log = logging.getLogger("tandem.worker")

Event = EventT[bytes]
Domain = Literal["marketing", "sales"]

T = TypeVar("T")


def utcnow() -> datetime:
    """The wall clock, read only here at the edge (the core takes time as an argument)."""
    return datetime.now(UTC)


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


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        broker=settings.broker_url,
        store=settings.store,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # A restarted worker must not wait a minute for its dead former self.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        # A commit flushes the producer first: once per batch or second, not per 100 messages.
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
        web_enabled=False,
        autodiscover=False,
        # Tandem controls its own encodings: bytes in, bytes out, JSON produced by pydantic.
        key_serializer="raw",
        value_serializer="raw",
        producer_max_request_size=DEADLETTER_MAX_BYTES,
        # Batches of hundreds of small sends per partition.
        producer_linger_ms=5,
        producer_max_batch_size=512 * 1024,
    )


async def _retrying(what: str, action: Callable[[], Awaitable[T]]) -> T | None:
    """Wait out an outage: retry with backoff while the service is unreachable.

    Anything else is a fault in the write itself: logged, and the batch goes on (the tables
    hold the truth; the read model catches up with the journey's next write).
    """
    delay = 0.2
    while True:
        try:
            return await action()
        except asyncio.CancelledError:
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        except Exception:
            log.exception("%s failed", what)
            return None


def build_app(settings: Settings, playbook: core.Playbook) -> TandemApp:
    """Wire the Faust app for these settings and this playbook."""
    app = _faust_app(settings)
    topics = {
        name: _raw_topic(app, settings, name)
        for name in (MARKETING, SALES, DEADLETTER, ACCEPTED, RESOLVED, JOURNEYS, HANDOFF,
                     NURTURE, ALERTS)
    }  # fmt: skip
    touchpoint_sources = app.topic(
        full_name(MARKETING, settings.topic_prefix),
        full_name(SALES, settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
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
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    guards = core.IdentityGuards.from_playbook(playbook)
    marketing_name = full_name(MARKETING, settings.topic_prefix)
    identity_store = TableIdentityStore(identities)
    journey_store = TableJourneyStore(journeys)
    senders: dict[str, KafkaSender] = {}

    def sender() -> KafkaSender:
        # The producer exists once the app runs; one sender per agent keeps batches apart.
        return KafkaSender(app.producer, settings.topic_prefix)

    def batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[Event]]:
        """The stream in batches: up to `batch_size` events, or what came within the wait."""
        take: Any = cast(Stream[bytes], stream).take_events
        batched: AsyncIterator[Sequence[Event]] = take(settings.batch_size, settings.batch_within_s)
        return batched

    async def dead_letter(out: KafkaSender, rejection: Rejection, raw: bytes, event: Event) -> None:
        message = event.message
        key = message.key.decode("utf-8", "replace") if message.key else None
        letter: DeadLetter = dead_letter_for(
            rejection,
            raw,
            Origin(
                topic=message.topic.removeprefix(settings.topic_prefix),
                partition=message.partition,
                offset=message.offset,
                key=key,
            ),
            utcnow(),
        )
        await out.send(DEADLETTER, letter.dead_letter_id.encode(),
                       letter.model_dump_json().encode())  # fmt: skip
        log.warning("dead-lettered %s: %s", letter.dead_letter_id, letter.reason)

    async def send_outgoing(out: KafkaSender, outgoing: list[Outgoing]) -> None:
        for item in outgoing:
            if isinstance(item, Command):
                await out.send(RESOLVED, item.customer_id.encode(), encode(item.message))
            else:
                signal = item.signal
                await out.send(signal.topic, item.customer_id.encode(),
                               signal.model_dump_json().encode())  # fmt: skip

    @app.agent(touchpoint_sources, concurrency=1, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        """Validate every input; valid touchpoints go on to identity, the rest dead-letter."""
        out = senders.setdefault("ingest", sender())
        async for events in batches(stream):
            for event in events:
                raw = event.value if isinstance(event.value, bytes) else b""
                try:
                    domain: Domain = (
                        "marketing" if event.message.topic == marketing_name else "sales"
                    )
                    decoded = decode_touchpoint(raw, domain)
                    if isinstance(decoded, Rejection):
                        await dead_letter(out, decoded, raw, event)
                        continue
                    await out.send(ACCEPTED, decoded.event_id.encode(),
                                   touchpoint_to_json(decoded))  # fmt: skip
                except Exception as exc:  # never crash or stall on one message
                    log.exception("ingest failed")
                    reason = f"internal error while validating: {exc}"
                    await dead_letter(out, Rejection(ReasonCode.INVALID, reason), raw, event)
            await out.settle()

    @app.agent(topics[ACCEPTED], concurrency=1, name="identity")
    async def identity(stream: faust.StreamT[bytes]) -> None:
        """Resolve each touchpoint's identifiers to one customer id; emit journey moves."""
        out = senders.setdefault("identity", sender())
        async for events in batches(stream):
            unit = IdentityUnit(identity_store, guards)
            for event in events:
                raw = event.value if isinstance(event.value, bytes) else b""
                try:
                    if isinstance(event.key, bytes) and event.key.startswith(UNMERGE_KEY):
                        request = UnmergeRequest.model_validate_json(raw)
                        handlers.unmerge_requested(request, unit)
                    else:
                        handlers.touchpoint_accepted(TOUCHPOINT.validate_json(raw), unit)
                except Exception as exc:
                    log.exception("identity resolution failed")
                    reason = f"identity resolution failed: {exc}"
                    await dead_letter(out, Rejection(ReasonCode.INVALID, reason), raw, event)
            await send_outgoing(out, unit.outbox)
            await out.delivered()
            if events:
                in_partition_of(events[-1])  # one partition: the sequencer's
            identity_store.flush()

    async def flush_journeys(
        out: KafkaSender, unit: JourneyUnit, last_event: dict[str, Event]
    ) -> None:
        changes, outgoing = unit.flush()
        writes: list[JourneyWrite] = []
        for customer_id, stored in changes:
            try:
                writes.append(prepare(customer_id, stored, playbook))
            except Exception as exc:
                log.exception("journey snapshot failed for %s", customer_id)
                reason = f"journey snapshot failed: {exc}"
                event = last_event[customer_id]
                await dead_letter(out, Rejection(ReasonCode.INVALID, reason), event.value, event)
        timers = [(cid, next_due(record, playbook)) for cid, record in unit.take_timers_due()]
        await send_outgoing(out, outgoing)
        for write in writes:
            await out.send(JOURNEYS, write.customer_id.encode(), write.state_value)
        await out.delivered()
        for write in writes:
            in_partition_of(last_event[write.customer_id])
            journey_store.put(write.customer_id, write.stored)
        for customer_id, due in timers:
            in_partition_of(last_event[customer_id])
            key = customer_id.encode()
            stored_due = deadlines.get(key)
            if due is not None:
                value = due.isoformat().encode()
                if value != stored_due:  # a changelog write only when the deadline moves
                    deadlines[key] = value
            elif stored_due is not None:
                del deadlines[key]
        live, moved = read_model_batch(writes)
        await _retrying("journeys: writing Redis", lambda: projection.publish_many(live, moved))

    @app.agent(topics[RESOLVED], concurrency=1, name="journeys")
    async def journey_agent(stream: faust.StreamT[bytes]) -> None:
        """Fold touchpoints into journeys, absorb moved journeys, run timers, emit signals."""
        out = senders.setdefault("journeys", sender())
        async for events in batches(stream):
            unit = JourneyUnit(journey_store, playbook)
            last_event: dict[str, Event] = {}
            for event in events:
                raw = event.value if isinstance(event.value, bytes) else b""
                customer_id = event.key.decode() if isinstance(event.key, bytes) else ""
                in_partition_of(event)
                last_event[customer_id] = event
                unit.begin()
                try:
                    handlers.handle_journey_message(customer_id, decode_journey_message(raw), unit)
                except Exception as exc:
                    unit.rollback()
                    log.exception("journey processing failed for %s", customer_id)
                    reason = f"journey processing failed: {exc}"
                    await dead_letter(out, Rejection(ReasonCode.INVALID, reason), raw, event)
            await flush_journeys(out, unit, last_event)

    swept: list[bool] = []

    async def timers() -> None:
        """Wake journeys whose hand-off SLA or nurture timers are due."""
        if not swept and not getattr(app.tables, "recovery").in_recovery:  # noqa: B009
            # Once per start: journeys evaluated under another playbook version are re-evaluated
            # now, not only when their next message arrives.
            swept.append(True)
            for key, stored in list(journeys.items()):
                version = playbook_version_of(stored)
                if version is not None and version != playbook.version:
                    await topics[RESOLVED].send(key=key, value=encode(Reevaluate()))
        now = utcnow()
        for key, due in list(deadlines.items()):
            if due and datetime.fromisoformat(due.decode()) <= now:
                await topics[RESOLVED].send(key=key, value=encode(Tick(now=now)))

    app.timer(settings.timer_interval_s)(timers)

    return TandemApp(app=app, settings=settings, playbook=playbook, topics=topics)


UNMERGE_KEY = b"cmd:unmerge"
"""Key of `tandem unmerge` requests on `touchpoints.accepted` (touchpoints are keyed by id)."""


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
