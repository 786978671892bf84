"""The composition root of the stream processor: Faust topics, tables, agents and timers.

The journey logic lives in `streams.journey` (pure); this module only moves bytes between
Kafka, the pure core, the tables and Redis.

Flow (all agents concurrency 1, at-least-once, idempotent state):

    touchpoints.marketing ┐                       ┌─> touchpoints.deadletter (invalid input)
    touchpoints.sales     ┴─ ingest (validate) ───┴─> touchpoints.accepted (1 partition)
    touchpoints.accepted ── identity (identifier -> customer id, moves) ──> touchpoints.resolved
    touchpoints.resolved ── journeys (fold, merge, timers) ──> journeys.state, signals.*, Redis
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT

from events import LEDGER_TYPES, decode_touchpoint, touchpoint_to_json
from events.decode import ReasonCode, Rejection
from events.vocabulary import TOUCHPOINT
from schemas.deadletter import DeadLetter, Origin, dead_letter_for
from streams import journey as core
from streams.journey import kpis
from streams.kpi_service import KpiSnapshotter
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

log = logging.getLogger("tandem.worker")


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


def build_app(settings: Settings, playbook: core.Playbook) -> TandemApp:
    """Wire the Faust app for these settings and this playbook."""
    app = faust.App(
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
        broker_commit_every=100,
        broker_commit_interval=1.0,
        web_enabled=False,
        autodiscover=False,
        # Tandem controls its own encodings: bytes in, bytes out, JSON produced by pydantic.
        key_serializer="raw",
        value_serializer="raw",
        producer_max_request_size=DEADLETTER_MAX_BYTES,
        # Batch the many small sends (signals, snapshots, re-keyed touchpoints) per partition.
        producer_linger_ms=5,
    )
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
        help="customer id -> journey record (JSON)",
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

    async def dead_letter(
        rejection: Rejection, raw: bytes, event: EventT, at: datetime | None = None
    ) -> None:
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
            at or utcnow(),
        )
        await topics[DEADLETTER].send(
            key=letter.dead_letter_id.encode(), value=letter.model_dump_json().encode()
        )
        log.warning("dead-lettered %s: %s", letter.dead_letter_id, letter.reason)

    @app.agent(touchpoint_sources, concurrency=1, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        """Validate every input; valid touchpoints go on to identity, the rest dead-letter."""
        async for event in stream.events():
            raw = event.value if isinstance(event.value, bytes) else b""
            try:
                domain = "marketing" if event.message.topic == marketing_name else "sales"
                decoded = decode_touchpoint(raw, domain)
                if isinstance(decoded, Rejection):
                    await dead_letter(decoded, raw, event)
                    continue
                await topics[ACCEPTED].send(
                    key=decoded.event_id.encode(), value=touchpoint_to_json(decoded)
                )
            except Exception as exc:  # never crash or stall on one message
                log.exception("ingest failed")
                await dead_letter(
                    Rejection(ReasonCode.INVALID, f"internal error while validating: {exc}"),
                    raw,
                    event,
                )

    store = _TableIdentityStore(identities)

    async def unmerge(raw: bytes, event: EventT) -> None:
        """`tandem unmerge`: split identifiers off their customer for good, then the journey."""
        try:
            command = json.loads(raw)
            identifiers = [str(i) for i in command["identifiers"]]
            # The customer the identifiers belong to now (it may have moved since the request).
            current = store.get(identifiers[0]) if identifiers else None
            decision = core.unmerge_identity(store, current or command["customer_id"], identifiers)
            store.apply(decision.identity)
            await topics[RESOLVED].send(
                key=decision.customer_id.encode(),
                value=_command(
                    "split",
                    identifiers=list(decision.split),
                    remaining_customer_id=decision.remaining_customer_id,
                    split_customer_id=decision.split_customer_id,
                    cause_id=command["request_id"],
                    at=command["requested_at"],
                ),
            )
            log.info("unmerged %s from %s", ", ".join(decision.split), decision.customer_id)
        except Exception as exc:
            log.exception("unmerge failed")
            await dead_letter(Rejection(ReasonCode.INVALID, f"unmerge failed: {exc}"), raw, event)

    @app.agent(topics[ACCEPTED], concurrency=1, name="identity")
    async def identity(stream: faust.StreamT[bytes]) -> None:
        """Resolve each touchpoint's identifiers to one customer id; emit journey moves."""
        async for event in stream.events():
            raw = event.value if isinstance(event.value, bytes) else b""
            if isinstance(event.key, bytes) and event.key.startswith(UNMERGE_KEY):
                await unmerge(raw, event)  # a command, ordered with the touchpoints
                continue
            try:
                touchpoint = TOUCHPOINT.validate_json(raw)
                if touchpoint.type in LEDGER_TYPES and touchpoint.identity is None:
                    customer_id = core.LEDGER_CUSTOMER
                else:
                    decision = core.resolve(
                        store, touchpoint.identity.identifiers(), guards, touchpoint.event_id
                    )
                    store.apply(decision)
                    for move in decision.moves:
                        await topics[RESOLVED].send(
                            key=move.from_customer.encode(),
                            value=_command(
                                "move",
                                to=move.to_customer,
                                cause_event_id=move.cause_event_id,
                                at=touchpoint.occurred_at.isoformat(),
                            ),
                        )
                    customer_id = decision.customer_id
                await topics[RESOLVED].send(
                    key=customer_id.encode(),
                    value=_command("touchpoint", touchpoint=json.loads(raw)),
                )
            except Exception as exc:
                log.exception("identity resolution failed")
                await dead_letter(
                    Rejection(ReasonCode.INVALID, f"identity resolution failed: {exc}"), raw, event
                )

    async def publish_outcome(customer_id: str, outcome: core.Outcome) -> None:
        record = outcome.record
        journeys[customer_id.encode()] = record.model_dump_json().encode()
        due = core.next_timer_due(record, playbook)
        key = customer_id.encode()
        if due is not None:
            deadlines[key] = due.isoformat().encode()
        elif deadlines.get(key) is not None:
            del deadlines[key]
        for signal in outcome.signals:
            await topics[signal.topic].send(key=key, value=signal.model_dump_json().encode())
        snapshot = core.snapshot(record, playbook).model_dump(mode="json")
        await topics[JOURNEYS].send(key=key, value=json.dumps(snapshot).encode())
        facts = kpis.journey_facts(record, playbook).model_dump_json(exclude_defaults=True)
        await projection.publish_journey(customer_id, record.version, snapshot, facts)

    async def publish_split(customer_id: str, result: core.Split) -> None:
        """Write the side of a split keeping this id; send the other side to its own id."""
        await publish_outcome(customer_id, result.kept)
        await topics[RESOLVED].send(
            key=result.moved.customer_id.encode(),
            value=_command(
                "split_off",
                record=json.loads(result.moved.model_dump_json()),
                at=result.moved.unmerges[-1].at.isoformat(),
            ),
        )

    @app.agent(topics[RESOLVED], concurrency=1, name="journeys")
    async def journey_agent(stream: faust.StreamT[bytes]) -> None:
        """Fold touchpoints into journeys, absorb moved journeys, run timers, emit signals."""
        async for event in stream.events():
            raw = event.value if isinstance(event.value, bytes) else b""
            key = event.key if isinstance(event.key, bytes) else b""
            customer_id = key.decode()
            try:
                command = json.loads(raw)
                stored = journeys.get(key)
                record = (
                    core.JourneyRecord.model_validate_json(stored)
                    if stored
                    else core.new_journey(customer_id)
                )
                kind = command["kind"]
                if stored and record.playbook_version != playbook.version:
                    # A changed playbook: re-evaluate before applying anything new.
                    changed = core.reevaluate(record, playbook)
                    await publish_outcome(customer_id, changed)
                    record = changed.record
                if kind == "reevaluate":
                    continue
                if kind == "touchpoint":
                    touchpoint = TOUCHPOINT.validate_python(command["touchpoint"])
                    outcome = core.apply_touchpoint(record, touchpoint, playbook)
                    await publish_outcome(customer_id, outcome)
                elif kind == "move":
                    if not stored:
                        continue  # already moved (a redelivered command) or nothing to move
                    target = command["to"]
                    await topics[RESOLVED].send(
                        key=target.encode(),
                        value=_command(
                            "absorb",
                            record=json.loads(stored),
                            cause_event_id=command["cause_event_id"],
                            at=command["at"],
                        ),
                    )
                    del journeys[key]
                    if deadlines.get(key) is not None:
                        del deadlines[key]
                    await topics[JOURNEYS].send(key=key, value=None)
                    await projection.mark_moved(customer_id, target, record.version + 1)
                    await projection.drop_facts(customer_id, record.version + 1)
                elif kind == "absorb":
                    other = core.JourneyRecord.model_validate(command["record"])
                    outcome = core.absorb(
                        record,
                        other,
                        playbook,
                        command["cause_event_id"],
                        datetime.fromisoformat(command["at"]),
                    )
                    await publish_outcome(customer_id, outcome)
                    # A merge that was in flight during an unmerge: split it off again.
                    again = core.resplit(outcome.record, playbook)
                    if again is not None:
                        await publish_split(customer_id, again)
                elif kind == "split":
                    if not stored:
                        continue
                    result = core.split(
                        record,
                        command["identifiers"],
                        playbook,
                        command["cause_id"],
                        datetime.fromisoformat(command["at"]),
                        remaining_customer_id=command["remaining_customer_id"],
                        split_customer_id=command["split_customer_id"],
                    )
                    await publish_split(customer_id, result)
                elif kind == "split_off":
                    moved = core.JourneyRecord.model_validate(command["record"])
                    outcome = core.receive_split(
                        record, moved, playbook, datetime.fromisoformat(command["at"])
                    )
                    if outcome.applied:
                        await publish_outcome(customer_id, outcome)
                elif kind == "tick":
                    if not stored:
                        continue
                    outcome = core.evaluate_timers(
                        record, datetime.fromisoformat(command["now"]), playbook
                    )
                    if outcome.signals or outcome.applied:
                        await publish_outcome(customer_id, outcome)
                    else:
                        due = core.next_timer_due(record, playbook)
                        if due is None and deadlines.get(key) is not None:
                            del deadlines[key]
                else:
                    raise ValueError(f"unknown command kind {kind!r}")
            except Exception as exc:
                log.exception("journey processing failed for %s", customer_id)
                await dead_letter(
                    Rejection(ReasonCode.INVALID, f"journey processing failed: {exc}"), raw, event
                )

    swept: list[bool] = []

    @app.timer(settings.timer_interval_s)
    async def timers() -> None:
        """Wake journeys whose hand-off SLA or nurture timers are due."""
        if not swept and not app.tables.recovery.in_recovery:
            # Once per start: journeys evaluated under another playbook version are re-evaluated
            # now, not only when their next touchpoint arrives.
            swept.append(True)
            for key, stored in list(journeys.items()):
                version = core.JourneyRecord.model_validate_json(stored).playbook_version
                if version != playbook.version:
                    await topics[RESOLVED].send(key=key, value=_command("reevaluate"))
        now = utcnow()
        for key, due in list(deadlines.items()):
            if due and datetime.fromisoformat(due.decode()) <= now:
                await topics[RESOLVED].send(key=key, value=_command("tick", now=now.isoformat()))

    kpi_snapshots = KpiSnapshotter(projection)

    @app.timer(10.0)
    async def kpi_snapshot() -> None:
        """Recompute the dashboard's KPI snapshot in Redis when journeys changed (docs/kpis.md)."""
        try:
            await kpi_snapshots.refresh(utcnow())
        except Exception:  # a failed refresh is retried on the next tick; never stop the worker
            log.exception("KPI snapshot refresh failed")

    return TandemApp(app=app, settings=settings, playbook=playbook, topics=topics)


UNMERGE_KEY = b"cmd:unmerge"
"""Key of `tandem unmerge` requests on `touchpoints.accepted` (touchpoints are keyed by id)."""


def unmerge_request(
    customer_id: str, identifiers: list[str], request_id: str, requested_at: datetime
) -> bytes:
    """The value of an unmerge request the identity agent carries out (see `tandem unmerge`)."""
    return json.dumps(
        {"kind": "unmerge", "customer_id": customer_id, "identifiers": identifiers,
         "request_id": request_id, "requested_at": requested_at.isoformat()},
        separators=(",", ":"),
    ).encode()  # fmt: skip


def _command(kind: str, **fields: Any) -> bytes:
    return json.dumps({"kind": kind, **fields}, separators=(",", ":"), default=str).encode()


class _TableIdentityStore:
    """The identity table seen through the core's identity-store interface."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, identifier: str) -> str | None:
        raw = self.table.get(identifier.encode())
        return raw.decode() if raw else None

    def get_members(self, customer_id: str) -> tuple[str, ...]:
        raw = self.table.get(f"members:{customer_id}".encode())
        return tuple(json.loads(raw)) if raw else ()

    def get_separations(self, identifier: str) -> frozenset[str]:
        raw = self.table.get(f"separations:{identifier}".encode())
        return frozenset(json.loads(raw)) if raw else frozenset()

    def apply(self, decision: Any) -> None:
        for identifier, customer_id in decision.writes.items():
            self.table[identifier.encode()] = customer_id.encode()
        for customer_id, members in decision.member_writes.items():
            key = f"members:{customer_id}".encode()
            if members is None:
                if self.table.get(key) is not None:
                    del self.table[key]
            else:
                self.table[key] = json.dumps(sorted(members)).encode()
        for identifier, separated in getattr(decision, "separation_writes", {}).items():
            self.table[f"separations:{identifier}".encode()] = json.dumps(
                sorted(separated)
            ).encode()
