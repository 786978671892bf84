"""Unmerge: separations in the resolver, `unmerge_identity`, `split` and `receive_split`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from events.vocabulary import Touchpoint
from streams import journey as core

from .builders import FIT_FORM, at, tp

PB = core.default_playbook()
GUARDS = core.IdentityGuards.from_playbook(PB)
ADA, ADA_COOKIE = "email:ada@x.example", "anon:ada-laptop"
BOB, BOB_COOKIE = "email:bob@y.example", "anon:bob-laptop"


def cid(identifier: str) -> str:
    return core.customer_id_for(identifier)


@dataclass
class World:
    """The identity and journey agents in memory, with unmerge (what the worker does)."""

    store: core.InMemoryIdentityStore = field(default_factory=core.InMemoryIdentityStore)
    records: dict[str, core.JourneyRecord] = field(default_factory=dict)
    signals: list[core.Signal] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def send(self, touchpoint: Touchpoint) -> str:
        assert touchpoint.identity is not None
        decision = core.resolve(
            self.store, touchpoint.identity.identifiers(), GUARDS, touchpoint.event_id
        )
        self.store.apply(decision)
        self.refused += decision.refused
        for move in decision.moves:
            moved = self.records.pop(move.from_customer, None)
            if moved is not None:
                target = self.records.get(move.to_customer) or core.new_journey(move.to_customer)
                outcome = core.absorb(
                    target, moved, PB, move.cause_event_id, touchpoint.occurred_at
                )
                self.keep(outcome)
        record = self.records.get(decision.customer_id) or core.new_journey(decision.customer_id)
        self.keep(core.apply_touchpoint(record, touchpoint, PB))
        return decision.customer_id

    def keep(self, outcome: core.Outcome) -> None:
        self.records[outcome.record.customer_id] = outcome.record
        self.signals += outcome.signals

    def unmerge(self, customer_id: str, identifiers: tuple[str, ...]) -> core.UnmergeDecision:
        decision = core.unmerge_identity(self.store, customer_id, identifiers)
        self.store.apply(decision.identity)
        result = core.split(
            self.records.pop(customer_id), decision.split, PB, "unmerge-1", at(30),
            remaining_customer_id=decision.remaining_customer_id,
            split_customer_id=decision.split_customer_id,
        )  # fmt: skip
        self.keep(result.kept)
        moved = result.moved
        target = self.records.get(moved.customer_id) or core.new_journey(moved.customer_id)
        self.keep(core.receive_split(target, moved, PB, at(30)))
        return decision


def ada_events() -> list[Touchpoint]:
    return [
        tp("marketing.page_viewed", "a1", at(0), anon="ada-laptop", props={"url": "/"}),
        tp("marketing.form_submitted", "a2", at(1), email="ada@x.example", anon="ada-laptop",
           props=FIT_FORM),
        tp("marketing.webinar_attended", "a3", at(2), email="ada@x.example"),
        tp("marketing.content_downloaded", "a4", at(3), email="ada@x.example",
           props={"content_id": "guide"}),
    ]  # fmt: skip


def bob_events() -> list[Touchpoint]:
    return [
        tp("marketing.page_viewed", "b1", at(0, hours=3), anon="bob-laptop", props={"url": "/"}),
        tp("marketing.email_opened", "b2", at(1, hours=3), email="bob@y.example",
           anon="bob-laptop"),
    ]  # fmt: skip


def bridge(event_id: str, days: float) -> Touchpoint:
    # Ada logs in on Bob's laptop: her email, his cookie — a wrong link.
    return tp("marketing.page_viewed", event_id, at(days), email="ada@x.example",
              anon="bob-laptop", props={"url": "/pricing"})  # fmt: skip


def expected(customer_id: str, events: list[Touchpoint]) -> core.JourneyRecord:
    return core.reevaluate(core.fold(customer_id, events, PB), PB).record


def active(record: core.JourneyRecord) -> dict[str, str]:
    return {e.signal_id: e.content_hash for e in record.signal_ledger.values()
            if e.status == "active"}  # fmt: skip


def same(a: core.JourneyRecord, b: core.JourneyRecord) -> None:
    left = core.snapshot(a, PB).model_dump(exclude={"version", "merges", "signals", "counts"})
    right = core.snapshot(b, PB).model_dump(exclude={"version", "merges", "signals", "counts"})
    assert left == right
    assert active(a) == active(b)


def merged_world() -> World:
    world = World()
    for event in [*ada_events(), *bob_events(), bridge("x1", 4)]:
        world.send(event)
    assert set(world.records) == {cid(ADA)}
    return world


def test_a_wrong_merge_is_split_into_the_journeys_of_each_side() -> None:
    world = merged_world()
    merged = world.records[cid(ADA)]
    assert cid(BOB) in [m.absorbed_customer_id for m in merged.merges]
    decision = world.unmerge(cid(ADA), (BOB, BOB_COOKIE))
    assert (decision.remaining_customer_id, decision.split_customer_id) == (cid(ADA), cid(BOB))
    assert set(world.records) == {cid(ADA), cid(BOB)}
    # The bridging event goes with its strongest identifier: Ada's email.
    same(world.records[cid(ADA)], expected(cid(ADA), [*ada_events(), bridge("x1", 4)]))
    same(world.records[cid(BOB)], expected(cid(BOB), bob_events()))
    ada, bob = world.records[cid(ADA)], world.records[cid(BOB)]
    # The undone merge is forgotten; each side keeps its own renames (cookie -> email).
    assert [m.absorbed_customer_id for m in ada.merges] == [cid(ADA_COOKIE)]
    assert [m.absorbed_customer_id for m in bob.merges] == [cid(BOB_COOKIE)]
    assert ada.unmerges[0].other_customer_id == cid(BOB)
    assert bob.unmerges[0].other_customer_id == cid(ADA)
    assert ada.version > merged.version and bob.version > merged.version


def test_the_identity_store_is_split_and_separated_both_ways() -> None:
    world = merged_world()
    world.unmerge(cid(ADA), (BOB_COOKIE, BOB))
    assert world.store.components() == {
        cid(ADA): (ADA, ADA_COOKIE),
        cid(BOB): (BOB, BOB_COOKIE),
    }
    assert world.store.get(BOB_COOKIE) == cid(BOB)
    assert world.store.get_separations(BOB) == {ADA, ADA_COOKIE}
    assert world.store.get_separations(ADA_COOKIE) == {BOB, BOB_COOKIE}


def test_after_unmerge_the_same_link_is_refused_and_the_event_goes_to_its_strongest() -> None:
    world = merged_world()
    world.unmerge(cid(ADA), (BOB, BOB_COOKIE))
    assert world.send(bridge("x2", 5)) == cid(ADA)
    assert world.refused and "separated by an unmerge" in world.refused[-1]
    # Bob's cookie with an unrelated new email: links fine on Bob's side.
    assert world.send(tp("marketing.email_opened", "b9", at(6), email="zed@y.example",
                         anon="bob-laptop")) == cid(BOB)  # fmt: skip
    # Replaying everything changes nothing: no moves, the same two journeys.
    before = dict(world.records)
    for event in [*ada_events(), *bob_events(), bridge("x1", 4), bridge("x2", 5)]:
        world.send(event)
    assert set(world.records) == set(before)
    for customer, record in before.items():
        assert world.records[customer].touchpoints == record.touchpoints


def test_signals_follow_the_split() -> None:
    world = merged_world()
    handoffs_before = [s for s in world.signals if s.signal_type == "handoff"]
    assert handoffs_before and all(s.customer_id == cid(ADA) for s in handoffs_before)
    emitted = len(world.signals)
    world.unmerge(cid(ADA), (BOB, BOB_COOKIE))
    ada, bob = world.records[cid(ADA)], world.records[cid(BOB)]
    assert active(ada) == active(expected(cid(ADA), [*ada_events(), bridge("x1", 4)]))
    assert active(bob) == active(expected(cid(BOB), bob_events()))
    # Nothing is revoked for Ada: her hand-off still holds.
    assert not [s for s in world.signals[emitted:] if s.signal_type == "handoff_revoked"]


def test_splitting_the_strongest_side_renames_the_rest() -> None:
    world = merged_world()
    decision = world.unmerge(cid(ADA), (ADA, ADA_COOKIE))
    assert (decision.remaining_customer_id, decision.split_customer_id) == (cid(BOB), cid(ADA))
    same(world.records[cid(ADA)], expected(cid(ADA), [*ada_events(), bridge("x1", 4)]))
    same(world.records[cid(BOB)], expected(cid(BOB), bob_events()))


def test_split_and_receive_split_are_idempotent() -> None:
    world = merged_world()
    world.unmerge(cid(ADA), (BOB, BOB_COOKIE))
    ada, bob = world.records[cid(ADA)], world.records[cid(BOB)]
    again = core.split(ada, (BOB, BOB_COOKIE), PB, "unmerge-1", at(30))
    assert again.kept.record.touchpoints == ada.touchpoints and again.kept.signals == []
    assert again.moved.touchpoints == []
    assert core.receive_split(bob, again.moved, PB, at(30)).signals == []
    redelivered = core.receive_split(bob, bob, PB, at(30))
    assert redelivered.duplicate and redelivered.record == bob


def test_a_hand_off_earned_only_together_is_revoked() -> None:
    world = World()
    world.send(tp("marketing.form_submitted", "a2", at(1), email="ada@x.example",
                  props=FIT_FORM))  # fmt: skip
    for n in range(6):
        world.send(tp("marketing.webinar_attended", f"b{n}", at(2 + n), email="bob@y.example",
                      anon="bob-laptop"))  # fmt: skip
    world.send(bridge("x1", 9))
    assert [s.signal_type for s in world.signals if s.customer_id == cid(ADA)].count("handoff")
    world.unmerge(cid(ADA), (BOB, BOB_COOKIE))
    ada = world.records[cid(ADA)]
    assert active(ada) == active(expected(cid(ADA), [world.records[cid(ADA)].touchpoints[0],
                                                      bridge("x1", 9)]))  # fmt: skip


@pytest.mark.parametrize(
    ("customer", "identifiers", "message"),
    [
        ("cus_nobody", (BOB,), "unknown customer"),
        (cid(ADA), ("email:carol@z.example",), "not identifier"),
        (cid(ADA), (), "nothing to split"),
        (cid(ADA), (ADA, ADA_COOKIE, BOB, BOB_COOKIE), "would leave nothing"),
    ],
)
def test_bad_unmerge_requests_are_refused(
    customer: str, identifiers: tuple[str, ...], message: str
) -> None:
    world = merged_world()
    with pytest.raises(core.UnmergeError, match=message):
        core.unmerge_identity(world.store, customer, identifiers)


def test_a_merge_in_flight_during_the_unmerge_is_split_off_again() -> None:
    world = merged_world()
    world.unmerge(cid(ADA), (BOB, BOB_COOKIE))
    ada = world.records[cid(ADA)]
    assert ada.unmerges[0].other_identifiers == [BOB, BOB_COOKIE]
    assert core.resplit(ada, PB) is None
    # A journey of Bob's moved into Ada's before the unmerge, absorbed after it.
    late = core.fold(cid("anon:bob-tablet"), [
        tp("marketing.page_viewed", "b7", at(2), anon="bob-tablet", props={"url": "/"}),
        tp("marketing.email_clicked", "b8", at(3), email="bob@y.example", anon="bob-tablet"),
    ], PB)  # fmt: skip
    absorbed = core.absorb(ada, late, PB, "b8", at(31)).record
    again = core.resplit(absorbed, PB)
    assert again is not None
    assert again.moved.customer_id == cid(BOB)
    assert [t.event_id for t in again.moved.touchpoints] == ["b8"]
    assert {t.event_id for t in again.kept.record.touchpoints} == {
        t.event_id for t in ada.touchpoints
    } | {"b7"}
    bob = core.receive_split(world.records[cid(BOB)], again.moved, PB, at(31)).record
    assert {t.event_id for t in bob.touchpoints} == {"b1", "b2", "b8"}
    assert again.kept.record.unmerges == ada.unmerges
