"""What each of the worker's agents does with one batch: decode, call the workflow, flush.

`streams.app` wires these steps to Faust agents; they hold no Faust specifics beyond the
events they are given and the tables behind the ports.

Order of effects per batch, for at-least-once without lost work: messages to other topics
first, then — once the broker has them — Redis (the journeys), then the agent's own tables. A
crash in between repeats the batch; every handler ignores what it has already done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from faust.types import EventT
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events import decode_touchpoint, touchpoint_to_json
from events.decode import ReasonCode, Rejection
from events.vocabulary import TOUCHPOINT
from schemas.deadletter import DeadLetter, Origin, dead_letter_for
from schemas.playbook import Playbook
from streams.account_service import due_account_handoffs
from streams.adapters.deadlines import TicksInFlight, encode_due
from streams.adapters.journeys import (
    PreparedBatch,
    check_writable,
    erased_batch,
    prepare_batch,
    read_model_batch,
)
from streams.adapters.kafka import KafkaSender
from streams.adapters.tables import TableIdentityStore, TableJourneyStore, in_partition_of
from streams.journey.identity import IdentityGuards
from streams.metrics import WORKER, TouchpointOutcome
from streams.projection import JourneyProjection
from streams.topics import ACCEPTED, DEADLETTER, JOURNEYS, RESOLVED
from streams.workflow import handlers
from streams.workflow.messages import (
    ForgetRequest,
    JourneyMessage,
    Tick,
    TouchpointArrived,
    UnmergeRequest,
    decode_journey_message,
    encode,
)
from streams.workflow.unit import Command, IdentityUnit, JourneyUnit, Outgoing

log = logging.getLogger("tandem.worker")

Event = EventT[bytes]
Domain = Literal["marketing", "sales"]
T = TypeVar("T")

UNMERGE_KEY = b"cmd:unmerge"
"""Key of `tandem unmerge` requests on `touchpoints.accepted` (touchpoints are keyed by id)."""
FORGET_KEY = b"cmd:forget"
"""Key of forget requests (`tandem forget`, ``DELETE /v1/people/{ref}``) on the same topic."""


def utcnow() -> datetime:
    """The wall clock, read only here at the edge (the core takes time as an argument)."""
    return datetime.now(UTC)


def _raw(event: Event) -> bytes:
    return event.value if isinstance(event.value, bytes) else b""


def _touchpoint_outcome(
    unit: JourneyUnit, duplicates: int, suppressed: int, outbox: int
) -> TouchpointOutcome:
    """What became of the touchpoint delivery just handled (counters and outbox before it)."""
    if unit.counters.suppressed > suppressed:
        return "suppressed"
    if unit.counters.duplicates > duplicates:
        return "duplicate"
    sent = unit.outbox[outbox:]
    if any(isinstance(i, Command) and isinstance(i.message, TouchpointArrived) for i in sent):
        return "forwarded"
    return "applied"


@dataclass(frozen=True)
class HandledMessage:
    """One message of a journeys batch: its metric outcome (touchpoints only) and, if its
    handler failed, what failed (it is dead-lettered once the batch is settled)."""

    event: Event
    outcome: TouchpointOutcome | None
    failure: tuple[str, Exception] | None = None


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
        except (RedisConnectionError, RedisTimeoutError, RedisReadOnlyError, OSError) as exc:
            WORKER.redis_errors.labels(operation=what).inc()
            # ReadOnlyError: a replica answering during a failover; still an outage.
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        except Exception:
            WORKER.redis_errors.labels(operation=what).inc()
            log.exception("%s failed", what)
            return None


@dataclass
class Agents:
    """The batch steps of the ingest, identity and journeys agents, on their ports."""

    topic_prefix: str
    marketing_topic: str
    playbook: Playbook
    identities: TableIdentityStore
    journeys: TableJourneyStore
    deadlines: Any
    projection: JourneyProjection
    ticks: TicksInFlight = field(default_factory=TicksInFlight)

    async def dead_letter(
        self, out: KafkaSender, rejection: Rejection, raw: bytes, event: Event
    ) -> None:
        """Send one input to the dead-letter topic with its reason and original bytes."""
        message = event.message
        origin = Origin(
            topic=message.topic.removeprefix(self.topic_prefix),
            partition=message.partition,
            offset=message.offset,
            key=message.key.decode("utf-8", "replace") if message.key else None,
        )
        letter: DeadLetter = dead_letter_for(rejection, raw, origin, utcnow())
        await out.send(DEADLETTER, letter.dead_letter_id.encode(),
                       letter.model_dump_json().encode())  # fmt: skip
        WORKER.dead_letters.labels(topic=origin.topic, reason=letter.reason_code.value).inc()
        log.warning("dead-lettered %s: %s", letter.dead_letter_id, letter.reason)

    async def _failed(self, out: KafkaSender, what: str, exc: Exception, event: Event) -> None:
        log.error("%s", what, exc_info=exc)
        rejection = Rejection(ReasonCode.PROCESSING_FAILED, f"{what}: {exc}")
        await self.dead_letter(out, rejection, _raw(event), event)

    async def send_outgoing(self, out: KafkaSender, outgoing: list[Outgoing]) -> None:
        """Queue a unit's messages: commands to the journeys, signals to their topics."""
        for item in outgoing:
            if isinstance(item, Command):
                await out.send(RESOLVED, item.customer_id.encode(), encode(item.message))
            else:
                signal = item.signal
                WORKER.signals.labels(type=signal.signal_type).inc()
                await out.send(signal.topic, item.customer_id.encode(),
                               signal.model_dump_json().encode())  # fmt: skip

    async def ingest(self, events: Sequence[Event], out: KafkaSender) -> None:
        """Validate every input; valid touchpoints go on to identity, the rest dead-letter."""
        for event in events:
            raw = _raw(event)
            domain: Domain = "marketing" if event.message.topic == self.marketing_topic else "sales"
            try:
                decoded = decode_touchpoint(raw, domain, now=datetime.now(UTC))
                if isinstance(decoded, Rejection):
                    await self.dead_letter(out, decoded, raw, event)
                    WORKER.ingested.labels(domain=domain, outcome="dead_lettered").inc()
                    continue
                await out.send(ACCEPTED, decoded.event_id.encode(), touchpoint_to_json(decoded))
                WORKER.ingested.labels(domain=domain, outcome="accepted").inc()
            except Exception as exc:  # never crash or stall on one message
                await self._failed(out, "internal error while validating", exc, event)
                WORKER.ingested.labels(domain=domain, outcome="dead_lettered").inc()
        await out.delivered()  # only then is the batch processed (and its offsets committed)

    async def identity(self, events: Sequence[Event], out: KafkaSender) -> None:
        """Resolve each touchpoint's identifiers to one customer id; emit journey moves."""
        # Writes of a batch cut short (a rebalance, a stop) are not ours to make any more: its
        # events were not acknowledged, and whoever owns the sequencer now carries them out.
        self.identities.discard()
        if events:
            in_partition_of(events[0])  # one partition: the sequencer's
            if completed := self.identities.complete_interrupted():
                log.warning("identity: completed %d writes of a batch a crash cut short", completed)
        unit = IdentityUnit(self.identities, IdentityGuards.from_playbook(self.playbook),
                            playbook_version=self.playbook.version)  # fmt: skip
        for event in events:
            raw = _raw(event)
            try:
                if isinstance(event.key, bytes) and event.key.startswith(UNMERGE_KEY):
                    handlers.unmerge_requested(UnmergeRequest.model_validate_json(raw), unit)
                elif isinstance(event.key, bytes) and event.key.startswith(FORGET_KEY):
                    self._forget(ForgetRequest.model_validate_json(raw), unit)
                else:
                    handlers.touchpoint_accepted(TOUCHPOINT.validate_json(raw), unit)
            except Exception as exc:
                await self._failed(out, "identity resolution failed", exc, event)
        WORKER.merges_refused.inc(len(unit.counters.refused))
        WORKER.suppressed.labels(stage="identity").inc(unit.counters.suppressed)
        await self.send_outgoing(out, unit.outbox)
        await out.delivered()
        if events:
            in_partition_of(events[-1])  # one partition: the sequencer's
        self.identities.flush()
        if unit.counters.suppressed:
            log.info("identity: suppressed %d touchpoint(s) of forgotten people",
                     unit.counters.suppressed)  # fmt: skip

    @staticmethod
    def _forget(request: ForgetRequest, unit: IdentityUnit) -> None:
        # The audit line names the request and the reference's digest, never the reference.
        log.warning("forget %s requested by %s at %s: reference sha256 %s", request.request_id,
                    request.requested_by, request.requested_at.isoformat(),
                    request.reference_sha256)  # fmt: skip
        handlers.forget_requested(request, unit)

    async def journeys_batch(self, events: Sequence[Event], out: KafkaSender) -> None:
        """Fold touchpoints into journeys, absorb moved journeys, run timers, emit signals.

        Nothing is written until every changed journey's write (record, snapshot, KPI facts,
        next timer) is computed. If one can't be, the batch is handled again with that
        customer's messages checked one by one, so only the message that breaks it is
        dead-lettered (`processing_failed`) and the journey stays as it was before it.
        """
        suspects: set[str] = set()
        ticked: set[str] = set()
        while True:
            unit = JourneyUnit(self.journeys, self.playbook)
            handled, last_event = self._handle_journeys(events, unit, suspects, ticked)
            batch = prepare_batch(unit, self.playbook)
            if not batch.failed or suspects:
                break
            suspects = set(batch.failed)  # deterministic handlers: the second pass finds them
        for item in handled:
            if item.failure is not None:
                await self._failed(out, item.failure[0], item.failure[1], item.event)
            if item.outcome is not None:
                WORKER.count_touchpoint(item.outcome, ReasonCode.PROCESSING_FAILED.value)
        for customer_id, exc in batch.failed.items():  # not one message's fault: none written
            await self._failed(out, f"journey write failed for {customer_id}", exc,
                               last_event[customer_id])  # fmt: skip
        WORKER.merges.inc(unit.counters.moves)
        WORKER.forgotten.inc(unit.counters.forgotten)
        await self.flush_journeys(out, unit, batch, last_event)
        for customer_id in ticked:  # their next deadlines are written: the sweep may tick again
            self.ticks.settle(customer_id.encode())

    def _handle_journeys(
        self, events: Sequence[Event], unit: JourneyUnit, suspects: set[str], ticked: set[str]
    ) -> tuple[list[HandledMessage], dict[str, Event]]:
        """Run each message's handler on the unit; a failing one is rolled back."""
        handled: list[HandledMessage] = []
        last_event: dict[str, Event] = {}
        for event in events:
            customer_id = event.key.decode() if isinstance(event.key, bytes) else ""
            in_partition_of(event)
            last_event[customer_id] = event
            unit.begin()
            message: JourneyMessage | None = None
            try:
                message = decode_journey_message(_raw(event))
                if isinstance(message, Tick):
                    ticked.add(customer_id)
                before = unit.counters.duplicates, unit.counters.suppressed, len(unit.outbox)
                handlers.handle_journey_message(customer_id, message, unit)
                for touched in set(unit.touched()) & suspects:
                    check_writable(touched, unit.load(touched), self.playbook)
            except Exception as exc:
                unit.rollback()
                what = f"journey processing failed for {customer_id}"
                failed: TouchpointOutcome | None = (
                    "dead_lettered" if isinstance(message, TouchpointArrived) else None
                )
                handled.append(HandledMessage(event, failed, (what, exc)))
            else:
                if isinstance(message, TouchpointArrived):
                    handled.append(HandledMessage(event, _touchpoint_outcome(unit, *before)))
        return handled, last_event

    async def flush_journeys(
        self,
        out: KafkaSender,
        unit: JourneyUnit,
        batch: PreparedBatch,
        last_event: dict[str, Event],
    ) -> None:
        """Write each changed journey once: computed first, sent, then Redis, then tables."""
        await self.send_outgoing(out, batch.outgoing)
        for write in batch.writes:
            await out.send(JOURNEYS, write.customer_id.encode(), write.state_value)
        await out.delivered()
        # Redis before the tables: a crash while Redis is down repeats the batch in full (its
        # writes are version-checked), where a repeat over written tables would find the moves
        # done and never send their tombstones to Redis.
        live, moved = read_model_batch(batch.writes)
        erased = erased_batch(batch.writes, unit.take_unlinked())
        await _retrying(
            "journeys: writing Redis", lambda: self.projection.publish_many(live, moved, erased)
        )
        await self._account_handoffs(out, sorted({j.account for j in live if j.account}))
        if unit.counters.suppressed or unit.counters.forgotten:
            log.info("journeys: erased %d forgotten journey(s), dropped %d touchpoint(s)",
                     unit.counters.forgotten, unit.counters.suppressed)  # fmt: skip
        for write in batch.writes:
            in_partition_of(last_event[write.customer_id])
            self.journeys.put(write.customer_id, write.stored, write.entries)
        for customer_id, when in batch.due:
            in_partition_of(last_event[customer_id])
            self._set_deadline(customer_id.encode(), when)

    async def _account_handoffs(self, out: KafkaSender, accounts: list[str]) -> None:
        """Send the hand-off of each account of the batch whose rule now holds in the read
        model (docs/accounts.md): sent, then marked sent; a crash in between sends it again
        under the same id and version, which consumers deduplicate."""
        if not accounts:
            return
        projection, playbook = self.projection, self.playbook
        due = await _retrying(
            "journeys: account hand-offs",
            lambda: due_account_handoffs(projection, accounts, playbook),
        )
        if not due:
            return
        for signal in due:
            WORKER.signals.labels(type=signal.signal_type).inc()
            await out.send(signal.topic, signal.customer_id.encode(),
                           signal.model_dump_json().encode())  # fmt: skip
        await out.delivered()
        sent = {s.account_id: s.signal_id for s in due}
        await _retrying("journeys: account hand-offs sent",
                        lambda: self.projection.mark_account_handoffs_sent(sent))  # fmt: skip

    def _set_deadline(self, key: bytes, due: datetime | None) -> None:
        stored = self.deadlines.get(key)
        if due is not None:
            value = encode_due(due)
            if value != stored:  # a changelog write only when the deadline moves
                self.deadlines[key] = value
        elif stored is not None:
            del self.deadlines[key]
