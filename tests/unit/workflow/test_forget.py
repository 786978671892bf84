"""Forgetting a person on in-memory ports: erased everywhere, suppressed for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.vocabulary import parse_touchpoint
from schemas.journey import JourneyRecord
from schemas.signals import PersonForgottenSignal
from streams import journey as core
from streams.journey.forget import (
    forget_identity,
    normalise_identifier,
    reference_identifiers,
    suppression_digest,
)
from streams.journey.identity import customer_id_for, unmerge_identity
from streams.workflow import Replayer, handlers
from streams.workflow.codec import decode_journey, journey_entries, playbook_version_of
from streams.workflow.memory import InMemoryIdentityPort, InMemoryJourneyStore
from streams.workflow.messages import (
    Absorb,
    Forget,
    ForgetRequest,
    TouchpointArrived,
    decode_journey_message,
    encode,
)
from streams.workflow.ports import ForgottenJourney, MovedJourney
from streams.workflow.unit import Command, Emitted, JourneyUnit

PB = core.default_playbook()
T0 = datetime(2025, 3, 1, tzinfo=UTC)
ADA, BOB = "ada@example.com", "bob@example.com"


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


def ada_and_bob() -> list[Any]:
    return [
        visit(1, anonymous_id="ada-phone"),
        visit(2, anonymous_id="ada-phone", email=ADA),
        visit(3, email=ADA, contact_id="crm-ada"),
        visit(4, email=BOB),
        visit(5, email=BOB, anonymous_id="bob-laptop"),
    ]


def events_of(record: JourneyRecord) -> set[str]:
    return {t.event_id for t in record.touchpoints}


def forget(reference: str) -> ForgetRequest:
    return ForgetRequest.for_reference(reference, "tester", T0 + timedelta(days=1))


def test_references_name_normalised_identifiers() -> None:
    assert reference_identifiers(" Ada@Example.com ") == (f"email:{ADA}",)
    assert reference_identifiers("email: ADA@example.com") == (f"email:{ADA}",)
    assert reference_identifiers("crm-ada") == ("contact:crm-ada", "anon:crm-ada")
    assert normalise_identifier("anon: x ") == "anon:x"
    request = forget("cus_0123")
    assert request.customer_id == "cus_0123" and request.identifiers == []
    assert "ada" not in forget(ADA).reference_sha256  # a digest, not the reference


def test_forget_erases_the_person_and_leaves_the_others() -> None:
    replayer = Replayer(PB)
    for touchpoint in ada_and_bob():
        replayer.touchpoint(touchpoint)
    ada, bob = customer_id_for("contact:crm-ada"), customer_id_for(f"email:{BOB}")
    assert set(replayer.records()) == {ada, bob}
    bob_before = replayer.records()[bob]

    replayer.forget(forget(ADA.upper()))

    assert replayer.records() == {bob: bob_before}
    store = replayer.store
    for identifier in ("contact:crm-ada", f"email:{ADA}", "anon:ada-phone"):
        assert store.get(identifier) is None
        assert store.is_suppressed(suppression_digest(identifier))
    assert ada not in store.members
    assert replayer.counters.forgotten == 1
    # Every id a journey of Ada's lived at keeps only the marker (the anon and email ids moved).
    for identifier in ("contact:crm-ada", f"email:{ADA}", "anon:ada-phone"):
        assert isinstance(replayer.journeys.load(customer_id_for(identifier)), ForgottenJourney)
    audit = [s for s in replayer.signals if isinstance(s, PersonForgottenSignal)]
    assert len(audit) == 1 and audit[0].identities == [] and audit[0].known
    assert audit[0].requested_by == "tester" and audit[0].identifiers_erased == 3
    assert ADA not in audit[0].model_dump_json().lower()


def test_later_touchpoints_of_a_forgotten_person_are_suppressed() -> None:
    replayer = Replayer(PB)
    events = ada_and_bob()
    for touchpoint in events:
        replayer.touchpoint(touchpoint)
    replayer.forget(forget("anon:ada-phone"))
    after = dict(replayer.records())
    applied = replayer.counters.applied

    for touchpoint in events:  # the topics replayed, old files republished
        replayer.touchpoint(touchpoint)
    replayer.touchpoint(visit(9, contact_id="crm-ada", email="ada.new@example.com"))

    assert set(replayer.records()) == set(after)  # Bob's only
    assert {cid: events_of(r) for cid, r in replayer.records().items()} == {
        cid: events_of(r) for cid, r in after.items()
    }
    assert replayer.counters.suppressed == 4  # Ada's three, and her new one
    assert replayer.counters.applied == applied  # Bob's were duplicates
    assert replayer.store.get("email:ada.new@example.com") is None


def test_forgetting_someone_never_seen_suppresses_them_from_the_start() -> None:
    replayer = Replayer(PB)
    replayer.forget(forget("carol@example.com"))
    replayer.touchpoint(visit(1, email="carol@example.com", anonymous_id="c"))
    assert replayer.records() == {}
    assert replayer.counters.suppressed == 1
    audit = [s for s in replayer.signals if isinstance(s, PersonForgottenSignal)]
    assert not audit[0].known


def test_a_message_in_flight_to_a_forgotten_journey_is_dropped() -> None:
    store = InMemoryJourneyStore()
    unit = JourneyUnit(store, PB)
    record = core.apply_touchpoint(core.new_journey("cus_a"), visit(1, email=ADA), PB).record
    unit.save("cus_a", record)
    handlers.journey_forgotten(
        "cus_a", Forget(identifiers=[f"email:{ADA}"], request_id="f1", at=T0), unit
    )
    assert unit.load("cus_a") == ForgottenJourney(version=record.version + 1, request_id="f1")
    assert unit.take_unlinked() == {"cus_a": (f"email:{ADA}",)}
    unit.counters.applied = 0
    handlers.handle_journey_message(
        "cus_a", TouchpointArrived(touchpoint=visit(2, email=ADA)), unit
    )
    handlers.handle_journey_message(
        "cus_a", Absorb(record=record, cause_event_id="e9", at=T0), unit
    )
    assert isinstance(unit.load("cus_a"), ForgottenJourney)
    assert unit.counters.suppressed == 1 and unit.counters.applied == 0
    assert not [c for c in unit.outbox if isinstance(c, Command)]
    # A redelivered forget changes nothing.
    unit.flush()
    handlers.journey_forgotten("cus_a", Forget(identifiers=[], request_id="f1", at=T0), unit)
    assert unit.flush() == ([], [])


def test_forgetting_a_moved_journeys_pointer_erases_it() -> None:
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    unit.save("cus_old", MovedJourney(moved_to="cus_new", version=3))
    handlers.journey_forgotten("cus_old", Forget(identifiers=[], request_id="f", at=T0), unit)
    assert unit.load("cus_old") == ForgottenJourney(version=4, request_id="f")
    assert unit.counters.forgotten == 0  # a pointer is not a journey


def test_rollback_undoes_a_forget() -> None:
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    unit.begin()
    handlers.journey_forgotten("cus_a", Forget(identifiers=["email:a@x.io"], request_id="f",
                                               at=T0), unit)  # fmt: skip
    unit.rollback()
    assert unit.flush() == ([], []) and unit.take_unlinked() == {}


def test_forget_removes_the_persons_separations_from_other_people() -> None:
    store = InMemoryIdentityPort()
    replayer_store = Replayer(PB)
    for touchpoint in (visit(1, email=ADA, anonymous_id="shared"),):
        replayer_store.touchpoint(touchpoint)
    store = replayer_store.store
    decision = unmerge_identity(store, customer_id_for(f"email:{ADA}"), ["anon:shared"])
    store.apply(decision.identity)
    assert store.get_separations("anon:shared") == {f"email:{ADA}"}
    erasure = forget_identity(store, [f"email:{ADA}"])
    store.erase(erasure, "f")
    assert store.get_separations("anon:shared") == frozenset()
    assert store.get_separations(f"email:{ADA}") == frozenset()
    assert store.get("anon:shared") == customer_id_for("anon:shared")  # not Ada any more


def test_the_identity_hop_sends_forget_to_every_id_and_an_audit_alert() -> None:
    replayer = Replayer(PB)
    for touchpoint in ada_and_bob()[:3]:
        replayer.touchpoint(touchpoint)
    unit = replayer.identity
    handlers.forget_requested(forget("crm-ada"), unit)
    sent = [c.customer_id for c in unit.outbox if isinstance(c, Command)]
    ids = {customer_id_for(i) for i in ("contact:crm-ada", f"email:{ADA}", "anon:ada-phone")}
    assert set(sent) == ids and sent[0] == customer_id_for("contact:crm-ada")
    assert [type(e.signal) for e in unit.outbox if isinstance(e, Emitted)] == [
        PersonForgottenSignal
    ]


def test_forget_messages_and_markers_survive_their_wire_forms() -> None:
    message = Forget(identifiers=[f"email:{ADA}"], request_id="f", at=T0)
    assert decode_journey_message(encode(message)) == message
    marker = ForgottenJourney(version=7, request_id="f")
    assert decode_journey(journey_entries(marker).head) == marker
    assert playbook_version_of(journey_entries(marker).head) is None
    request = forget(ADA)
    assert ForgetRequest.model_validate_json(encode(request)) == request


def test_a_forgotten_journey_is_not_a_live_record() -> None:
    replayer = Replayer(PB)
    replayer.touchpoint(visit(1, email=ADA))
    replayer.forget(forget(ADA))
    assert not any(isinstance(j, JourneyRecord) for j in replayer.journeys.loaded().values())
    result = replayer.result()
    assert result.records == {} and result.forgotten == 1
