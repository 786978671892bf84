"""A journey can't be half-written (issue 10, item 2).

The journeys agent computes every changed journey's write (record, snapshot, KPI facts, next
timer) before it writes anything. When one can't be computed, the batch is handled again with
that customer's messages checked one by one: only the message that breaks it is dead-lettered,
with a reason naming the step (`processing_failed`, not `invalid`); the journey keeps every
other touchpoint, no signal of the failed attempt leaves, and other customers are untouched.

The Faust parts are replaced by plain objects here (a dict for the table, a list for the
producer, a recorder for Redis): this tests the agent's own order of effects, not the broker.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.examples import example
from events.vocabulary import parse_touchpoint
from schemas.journey import JourneyRecord
from streams import journey as core
from streams.adapters import journeys as journey_writes
from streams.adapters.agents import Agents
from streams.adapters.kafka import KafkaSender
from streams.adapters.tables import TableIdentityStore, TableJourneyStore
from streams.topics import DEADLETTER, HANDOFF, JOURNEYS, NURTURE
from streams.workflow import codec
from streams.workflow.messages import TouchpointArrived, encode

PB = core.default_playbook()
T0 = datetime(2025, 3, 1, tzinfo=UTC)
POISON = "breaks-the-snapshot"


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes


class Event:
    def __init__(self, customer_id: str, value: bytes, offset: int) -> None:
        self.key = customer_id.encode()
        self.value = value
        self.message = Message("touchpoints.resolved", 0, offset, self.key)


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic: str, key: bytes, value: bytes | None, *_: Any) -> Any:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Projection:
    def __init__(self) -> None:
        self.live: dict[str, Any] = {}

    async def publish_many(self, live: list[Any], moved: list[Any], erased: list[Any]) -> None:
        self.live.update({journey.customer_id: journey for journey in live})


def touch(n: int, email: str, event_id: str | None = None) -> bytes:
    kinds = ["marketing.form_submitted", "marketing.page_viewed", "sales.meeting_booked"]
    document = example(kinds[n % len(kinds)])
    document.update(
        event_id=event_id or f"{email}-{n}", occurred_at=(T0 + timedelta(hours=n)).isoformat()
    )
    document["identity"] = {"email": email}
    return encode(TouchpointArrived(touchpoint=parse_touchpoint(document)))


def breaking_prepare(real: Any) -> Any:
    """`prepare` failing for any journey holding the poison touchpoint (a defect's stand-in)."""

    def prepare(customer_id: str, stored: Any, playbook: Any) -> Any:
        if isinstance(stored, JourneyRecord) and any(
            t.event_id == POISON for t in stored.touchpoints
        ):
            raise OverflowError("date value out of range")
        return real(customer_id, stored, playbook)

    return prepare


def dead_letters(producer: Producer) -> list[dict[str, Any]]:
    """The dead letters the batch sent, decoded."""
    return [json.loads(v or b"") for topic, _, v in producer.sent if topic == DEADLETTER]


async def run_batch(events: list[Event]) -> tuple[Agents, Producer, Projection, dict[bytes, Any]]:
    table: dict[bytes, Any] = {}
    producer, projection = Producer(), Projection()
    agents = Agents(
        topic_prefix="",
        marketing_topic="touchpoints.marketing",
        playbook=PB,
        identities=TableIdentityStore({}),
        journeys=TableJourneyStore(table),
        deadlines={},
        projection=projection,  # type: ignore[arg-type]
    )
    await agents.journeys_batch(events, KafkaSender(producer, ""))  # type: ignore[arg-type]
    return agents, producer, projection, table


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journey_writes, "prepare", breaking_prepare(journey_writes.prepare))


async def test_only_the_breaking_message_is_dead_lettered(poisoned: None) -> None:
    ada, bob = "cus_ada", "cus_bob"
    events = [
        Event(ada, touch(0, "ada@acme.example"), 0),
        Event(bob, touch(0, "bob@acme.example"), 1),
        Event(ada, touch(1, "ada@acme.example", POISON), 2),
        Event(ada, touch(2, "ada@acme.example"), 3),
        Event(bob, touch(1, "bob@acme.example"), 4),
    ]
    agents, producer, projection, _table = await run_batch(events)

    letters = dead_letters(producer)
    assert [(letter["reason_code"], letter["origin"]["offset"]) for letter in letters] == [
        ("processing_failed", 2)
    ]
    assert "journey processing failed for cus_ada" in letters[0]["reason"]
    assert "date value out of range" in letters[0]["reason"]

    ada_journey = agents.journeys.get(ada)
    assert isinstance(ada_journey, JourneyRecord)
    assert {t.event_id for t in ada_journey.touchpoints} == {
        "ada@acme.example-0",
        "ada@acme.example-2",
    }
    bob_journey = agents.journeys.get(bob)
    assert isinstance(bob_journey, JourneyRecord) and len(bob_journey.touchpoints) == 2
    assert set(projection.live) == {ada, bob}
    states = [k.decode() for topic, k, _ in producer.sent if topic == JOURNEYS]
    assert sorted(states) == [ada, bob]  # once each, after the second pass only


async def test_the_journey_equals_one_that_never_saw_the_breaking_message(poisoned: None) -> None:
    ada = "cus_ada"
    with_poison = [
        Event(ada, touch(n, "ada@acme.example", POISON if n == 2 else None), n) for n in range(5)
    ]
    without = [e for e in with_poison if e.message.offset != 2]
    broken, broken_out, _, _ = await run_batch(with_poison)
    clean, clean_out, _, _ = await run_batch(without)
    assert broken.journeys.get(ada) == clean.journeys.get(ada)

    def signals(producer: Producer) -> list[bytes | None]:
        return [v for topic, _, v in producer.sent if topic in {HANDOFF, NURTURE}]

    assert signals(clean_out), "the journey should call for a signal, or this proves little"
    assert signals(broken_out) == signals(clean_out)


async def test_a_batch_without_failures_is_handled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = journey_writes.prepare

    def counting(customer_id: str, stored: Any, playbook: Any) -> Any:
        calls.append(customer_id)
        return real(customer_id, stored, playbook)

    monkeypatch.setattr(journey_writes, "prepare", counting)
    _, producer, _, _ = await run_batch(
        [Event("cus_ada", touch(n, "ada@acme.example"), n) for n in range(3)]
    )
    assert calls == ["cus_ada"]  # one write computed for the batch, no per-message checks
    assert not [1 for topic, _, _ in producer.sent if topic == DEADLETTER]


async def test_a_message_that_would_take_a_journey_over_the_cap_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada, bob = "cus_ada", "cus_bob"
    first = [Event(ada, touch(0, "ada@acme.example"), 0)]
    _, _, _, table = await run_batch(first)
    # A cap the journey fits under with its first touchpoint, not with a second.
    monkeypatch.setattr(codec, "MAX_JOURNEY_BYTES", len(table[ada.encode()]) + 10)
    events = [
        *first,
        Event(bob, touch(0, "bob@acme.example"), 1),
        Event(ada, touch(1, "ada@acme.example"), 2),
    ]
    agents, producer, projection, table = await run_batch(events)

    letters = dead_letters(producer)
    assert [(letter["reason_code"], letter["origin"]["offset"]) for letter in letters] == [
        ("processing_failed", 2)
    ]
    assert "over the" in letters[0]["reason"] and "cap" in letters[0]["reason"]
    ada_journey = agents.journeys.get(ada)
    assert isinstance(ada_journey, JourneyRecord)
    assert [t.event_id for t in ada_journey.touchpoints] == ["ada@acme.example-0"]
    assert max(len(value) for value in table.values()) <= codec.MAX_JOURNEY_BYTES
    assert set(projection.live) == {ada, bob}
