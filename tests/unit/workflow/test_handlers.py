"""The workflow's handlers on in-memory ports: moves are followed, nothing half-done stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.examples import VALID_EXAMPLES
from events.vocabulary import parse_touchpoint, touchpoint_to_json
from schemas.journey import JourneyRecord
from streams import journey as core
from streams import workflow
from streams.journey.identity import IdentityGuards, customer_id_for
from streams.workflow import handlers
from streams.workflow.codec import decode_journey, journey_entries, playbook_version_of
from streams.workflow.memory import InMemoryIdentityStore, InMemoryJourneyStore
from streams.workflow.messages import (
    MAX_HOPS,
    Absorb,
    Move,
    TouchpointArrived,
    decode_journey_message,
    encode,
)
from streams.workflow.ports import MovedJourney
from streams.workflow.unit import Command, IdentityUnit, JourneyUnit

PB = core.default_playbook()
T0 = datetime(2025, 3, 1, tzinfo=UTC)
ANON, EMAIL, CONTACT = "anon:c-1", "email:ada@example.com", "contact:crm-1"


def visit(n: int, **identity: str) -> Any:
    return parse_touchpoint(
        {
            "event_id": f"e{n}",
            "type": "marketing.page_viewed",
            "occurred_at": (T0 + timedelta(hours=n)).isoformat(),
            "source": "website",
            "identity": identity,
            "properties": {"url": f"https://example.com/{n}"},
        }
    )


class Partitions:
    """Queues of journeys-hop commands, consumed in an order the test chooses."""

    def __init__(self) -> None:
        self.store = InMemoryJourneyStore()
        self.identity = IdentityUnit(InMemoryIdentityStore(), IdentityGuards.from_playbook(PB))
        self.queued: list[Command] = []

    def resolve(self, touchpoint: Any) -> None:
        handlers.touchpoint_accepted(touchpoint, self.identity)
        self.queued += [c for c in self.identity.outbox if isinstance(c, Command)]
        self.identity.outbox = []

    def deliver(self, kind: str, customer_id: str) -> None:
        """Carry out the first queued command of that kind for that customer."""
        command = next(
            c for c in self.queued if c.message.kind == kind and c.customer_id == customer_id
        )
        self.queued.remove(command)
        unit = JourneyUnit(self.store, PB)
        handlers.handle_journey_message(command.customer_id, command.message, unit)
        changes, outgoing = unit.flush()
        for cid, journey in changes:
            self.store.put(cid, journey)
        self.queued += [c for c in outgoing if isinstance(c, Command)]

    def drain(self) -> None:
        while self.queued:
            self.deliver(self.queued[0].message.kind, self.queued[0].customer_id)

    def live(self) -> dict[str, JourneyRecord]:
        return {c: j for c, j in self.store.journeys.items() if isinstance(j, JourneyRecord)}


def test_an_absorb_reaching_a_customer_that_moved_on_follows_it() -> None:
    anon, email, contact = (customer_id_for(i) for i in (ANON, EMAIL, CONTACT))
    touchpoints = [
        visit(1, anonymous_id="c-1"),
        visit(2, anonymous_id="c-1", email="ada@example.com"),
        visit(3, email="ada@example.com", contact_id="crm-1"),
    ]
    p = Partitions()
    for touchpoint in touchpoints:
        p.resolve(touchpoint)
    # The email's journey moves on to the contact before the anonymous journey reaches it.
    p.deliver("touchpoint", anon)
    p.deliver("touchpoint", email)
    p.deliver("move", email)
    p.deliver("move", anon)
    p.drain()
    assert set(p.live()) == {contact}
    assert {t.event_id for t in p.live()[contact].touchpoints} == {"e1", "e2", "e3"}
    replayed = workflow.replay(touchpoints, PB).records
    assert core.view(p.live()[contact], PB) == core.view(replayed[contact], PB)


def test_a_move_that_arrives_first_leaves_a_pointer_for_what_comes_later() -> None:
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    handlers.journey_moved("cus_a", Move(to="cus_b", cause_event_id="e9", at=T0), unit)
    assert unit.load("cus_a") == MovedJourney(moved_to="cus_b", version=1)
    handlers.touchpoint_arrived(
        "cus_a", TouchpointArrived(touchpoint=visit(1, email="a@x.io")), unit
    )
    assert [c.customer_id for c in unit.outbox if isinstance(c, Command)] == ["cus_b"]
    assert unit.outbox[0].message.hops == 1  # type: ignore[union-attr]


def test_a_pointer_cycle_ends_in_an_error_not_a_loop() -> None:
    store = InMemoryJourneyStore()
    store.put("cus_a", MovedJourney(moved_to="cus_a", version=3))
    unit = JourneyUnit(store, PB)
    message = TouchpointArrived(touchpoint=visit(1, email="a@x.io"), hops=MAX_HOPS)
    with pytest.raises(handlers.Undeliverable):
        handlers.touchpoint_arrived("cus_a", message, unit)


def test_a_redelivered_absorb_changes_nothing() -> None:
    other = core.apply_touchpoint(core.new_journey("cus_x"), visit(1, anonymous_id="z"), PB)
    absorb = Absorb(record=other.record, cause_event_id="e2", at=T0)
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    handlers.journey_absorbed("cus_y", absorb, unit)
    once = unit.load("cus_y")
    handlers.journey_absorbed("cus_y", absorb, unit)
    assert unit.load("cus_y") == once


def test_rollback_forgets_a_failed_message() -> None:
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    unit.begin()
    handlers.touchpoint_arrived(
        "cus_a", TouchpointArrived(touchpoint=visit(1, email="a@x.io")), unit
    )
    assert unit.changed and unit.counters.applied == 1
    unit.rollback()
    assert unit.flush() == ([], [])
    assert unit.counters.applied == 0


def test_a_touchpoint_travels_to_its_journey_in_its_canonical_form() -> None:
    for document in VALID_EXAMPLES.values():
        touchpoint = parse_touchpoint(document)
        message = TouchpointArrived(touchpoint=touchpoint, hops=3)
        wire = encode(message)
        assert decode_journey_message(wire) == message
        assert json.loads(wire) == {
            "kind": "touchpoint", "touchpoint": json.loads(touchpoint_to_json(touchpoint)),
            "hops": 3,
        }  # fmt: skip


def test_messages_and_journeys_survive_their_wire_forms() -> None:
    record = core.apply_touchpoint(core.new_journey("cus_a"), visit(1, email="a@x.io"), PB).record
    message = Absorb(record=record, cause_event_id="e1", at=T0)
    assert decode_journey_message(encode(message)) == message
    pointer = MovedJourney(moved_to="cus_b", version=4)
    assert decode_journey(journey_entries(pointer).head) == pointer
    assert decode_journey(journey_entries(record).head) == record
    assert decode_journey(record.model_dump_json().encode()) == record  # written before v2
    assert playbook_version_of(journey_entries(record).head) == PB.version
    assert playbook_version_of(record.model_dump_json().encode()) == PB.version
    assert playbook_version_of(journey_entries(pointer).head) is None
    with pytest.raises(ValueError, match="not a stored journey"):
        decode_journey(b"garbage")


def test_a_long_journey_survives_its_wire_form_with_its_compacted_prefix() -> None:
    record = core.fold("cus_a", [visit(n, email="a@x.io") for n in range(40)], PB, max_retained=8)
    assert record.compacted is not None
    encoded = journey_entries(record).head
    assert decode_journey(encoded) == record
    assert journey_entries(record).head == encoded  # the cached prefix gives the same bytes
    assert playbook_version_of(encoded) == PB.version


def test_a_batch_runs_each_customers_consecutive_touchpoints_together() -> None:
    a, b = "cus_a", "cus_b"

    def arrived(n: int) -> TouchpointArrived:
        return TouchpointArrived(touchpoint=visit(n, anonymous_id="c-1"))

    batch = [
        (a, arrived(1)),
        (b, arrived(2)),
        (a, arrived(3)),
        (a, Move(to=b, cause_event_id="e9", at=T0)),
        (a, arrived(4)),
        (b, arrived(5)),
    ]
    runs = handlers.journey_runs(batch, lambda item: item)
    # Customers in order of first appearance, each one's messages in the order given; a move
    # ends a run of touchpoints.
    assert [[batch.index(item) for item in run] for run in runs] == [[0, 2], [3], [4], [1, 5]]


def test_touchpoints_together_say_what_became_of_each() -> None:
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    arrivals = [TouchpointArrived(touchpoint=visit(n, email="ada@example.com")) for n in (2, 1)]
    repeat = TouchpointArrived(touchpoint=visit(2, email="ada@example.com"))
    assert handlers.touchpoints_arrived("cus_a", [*arrivals, repeat], unit) == [
        "applied", "applied", "duplicate",
    ]  # fmt: skip
    journey = unit.load("cus_a")
    assert isinstance(journey, JourneyRecord)
    assert [t.event_id for t in journey.touchpoints] == ["e1", "e2"]
    assert journey.version == 2  # one per touchpoint that changed it, as one at a time
    assert (unit.counters.applied, unit.counters.duplicates) == (2, 1)
    unit.save("cus_b", MovedJourney(moved_to="cus_a", version=1))
    assert handlers.touchpoints_arrived("cus_b", arrivals, unit) == ["forwarded"] * 2
    forwarded = [c.message for c in unit.outbox if isinstance(c, Command)]
    assert [m.hops for m in forwarded] == [1, 1]


def test_a_replay_in_batches_folds_a_customers_touchpoints_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    arrived = handlers.touchpoints_arrived

    def counting(customer_id: str, messages: Any, unit: JourneyUnit) -> Any:
        calls.append(len(messages))
        return arrived(customer_id, messages, unit)

    monkeypatch.setattr(handlers, "touchpoints_arrived", counting)
    views = [visit(n, email="ada@example.com") for n in (3, 1, 2)]
    only = customer_id_for("email:ada@example.com")
    one = workflow.replay(views, PB)
    together = workflow.replay(views, PB, batch=10)
    assert calls == [1, 1, 1, 3]  # one at a time, then the batch's three in one call
    assert [t.event_id for t in together.records[only].touchpoints] == ["e1", "e2", "e3"]
    assert together.records[only].version == one.records[only].version == 3
