"""Identity resolution: customer ids, links, renames, merges, guards, the in-memory store."""

from __future__ import annotations

import hashlib
import itertools

from streams import journey as core
from streams import workflow
from streams.journey.identity import by_strength

from .builders import at, tp

OPEN = core.IdentityGuards(max_identifiers_per_customer=50)


def cid(identifier: str) -> str:
    return core.customer_id_for(identifier)


def run(
    links: list[tuple[str, ...]], guards: core.IdentityGuards = OPEN
) -> tuple[core.InMemoryIdentityStore, list[core.IdentityDecision]]:
    store = core.InMemoryIdentityStore()
    decisions = []
    for n, identifiers in enumerate(links):
        decision = core.resolve(store, identifiers, guards, f"e{n}")
        store.apply(decision)
        decisions.append(decision)
    return store, decisions


def test_customer_id_is_a_short_hash_of_the_identifier() -> None:
    digest = hashlib.sha256(b"email:ada@x.example").hexdigest()[:16]
    assert core.customer_id_for("email:ada@x.example") == f"cus_{digest}"


def test_strength_orders_contact_email_anon_then_value() -> None:
    assert by_strength(["anon:a", "email:z@x.example", "contact:9", "email:a@x.example"]) == [
        "contact:9", "email:a@x.example", "email:z@x.example", "anon:a"]  # fmt: skip


def test_a_new_identifier_starts_a_customer() -> None:
    store, [decision] = run([("anon:c1",)])
    assert decision.customer_id == cid("anon:c1")
    assert decision.writes == {"anon:c1": cid("anon:c1")}
    assert decision.member_writes == {cid("anon:c1"): ("anon:c1",)}
    assert decision.moves == [] and decision.refused == []
    again = core.resolve(store, ("anon:c1",), OPEN, "e9")
    assert again == core.IdentityDecision(cid("anon:c1"))  # nothing to write


def test_a_stronger_identifier_renames_the_customer_with_a_move() -> None:
    store, decisions = run([("anon:c1",), ("email:ada@x.example", "anon:c1")])
    rename = decisions[1]
    assert rename.customer_id == cid("email:ada@x.example")
    assert rename.moves == [core.Move(cid("anon:c1"), cid("email:ada@x.example"), "e1")]
    assert rename.member_writes[cid("anon:c1")] is None
    assert store.components() == {cid("email:ada@x.example"): ("email:ada@x.example", "anon:c1")}


def test_a_weaker_identifier_joins_without_a_move() -> None:
    _, decisions = run([("email:ada@x.example",), ("email:ada@x.example", "anon:c2")])
    assert decisions[1].customer_id == cid("email:ada@x.example")
    assert decisions[1].moves == []
    assert decisions[1].writes == {"anon:c2": cid("email:ada@x.example")}


def test_a_link_merges_two_customers_into_the_strongest() -> None:
    store, decisions = run([("contact:crm-1",), ("email:chen@x.example", "anon:c3"),
                            ("contact:crm-1", "email:chen@x.example")])  # fmt: skip
    merge = decisions[2]
    target = cid("contact:crm-1")
    assert merge.customer_id == target
    assert merge.moves == [core.Move(cid("email:chen@x.example"), target, "e2")]
    assert store.get("anon:c3") == target
    assert store.components() == {target: ("contact:crm-1", "email:chen@x.example", "anon:c3")}


def test_the_final_customer_id_does_not_depend_on_arrival_order() -> None:
    links = [("anon:a",), ("email:b@x.example", "anon:a"), ("contact:c", "anon:z"),
             ("contact:c", "email:b@x.example"), ("anon:q", "email:b@x.example")]  # fmt: skip
    results = set()
    for order in itertools.permutations(links):
        store, _ = run(list(order))
        results.add(tuple(sorted(store.components().items())))
    assert results == {
        ((cid("contact:c"), ("contact:c", "email:b@x.example", "anon:a", "anon:q", "anon:z")),)
    }


def test_blocklisted_identifiers_never_link() -> None:
    guards = core.IdentityGuards(blocklist=("email:info@*", "anon:undefined"))
    store, decisions = run([("email:info@acme.example", "anon:c1"),
                            ("email:info@acme.example", "anon:c2")], guards)  # fmt: skip
    assert [d.customer_id for d in decisions] == [cid("anon:c1"), cid("anon:c2")]
    assert decisions[0].ignored == ["email:info@acme.example"]
    assert store.get("email:info@acme.example") is None


def test_an_event_with_only_blocked_identifiers_gets_its_own_journey() -> None:
    guards = core.IdentityGuards(blocklist=("email:*@example.com", "anon:undefined"))
    store, [decision] = run([("email:x@example.com", "anon:undefined")], guards)
    assert decision.customer_id == cid("email:x@example.com")
    assert decision.writes == {} and decision.member_writes == {} and decision.moves == []
    assert store.components() == {}


def test_exact_blocklist_entries() -> None:
    guards = core.IdentityGuards(blocklist=("anon:00000000-0000-0000-0000-000000000000",))
    assert guards.is_blocked("anon:00000000-0000-0000-0000-000000000000")
    assert not guards.is_blocked("anon:00000000-0000-0000-0000-000000000001")


def test_a_link_beyond_the_identifier_limit_is_refused() -> None:
    guards = core.IdentityGuards(max_identifiers_per_customer=3)
    store, decisions = run([("email:a@x.example", "anon:1"), ("email:a@x.example", "anon:2"),
                            ("email:b@x.example", "anon:3"),
                            ("email:a@x.example", "anon:3")], guards)  # fmt: skip
    refused = decisions[3]
    assert refused.customer_id == cid("email:a@x.example")
    assert refused.moves == [] and refused.writes == {}
    assert refused.refused == ["linking email:a@x.example, anon:3 would give 5 identifiers "
                               "(max 3); kept with email:a@x.example"]  # fmt: skip
    assert store.get("anon:3") == cid("email:b@x.example")


def test_a_refused_link_with_a_new_strongest_identifier_starts_it_alone() -> None:
    guards = core.IdentityGuards(max_identifiers_per_customer=2)
    store, decisions = run([("email:b@x.example", "anon:1"), ("contact:9", "anon:1")], guards)
    assert decisions[1].customer_id == cid("contact:9")
    assert decisions[1].moves == []
    assert store.components()[cid("contact:9")] == ("contact:9",)


def test_replay_routes_identity_less_ledger_records_to_the_ledger_journey() -> None:
    spend = tp("marketing.spend_recorded", "s1", at(), props={
        "campaign_id": "q4", "channel": "paid_search", "amount": "10", "currency": "EUR",
        "period": "2024-03"})  # fmt: skip
    visit = tp("marketing.page_viewed", "v1", at(), anon="c1", props={"url": "u"})
    result = workflow.replay([spend, visit], core.default_playbook())
    assert set(result.records) == {core.LEDGER_CUSTOMER, cid("anon:c1")}
    assert [t.event_id for t in result.records["ledger"].touchpoints] == ["s1"]


def test_replay_moves_journeys_and_remembers_the_merge() -> None:
    events = [
        tp("marketing.page_viewed", "v1", at(), anon="c1", props={"url": "u"}),
        tp("marketing.email_opened", "v2", at(minutes=1), email="ada@x.example", anon="c1"),
    ]
    result = workflow.replay(events, core.default_playbook())
    target = cid("email:ada@x.example")
    assert set(result.records) == {target} and result.moves == 1
    record = result.records[target]
    assert [t.event_id for t in record.touchpoints] == ["v1", "v2"]
    assert [(m.absorbed_customer_id, m.cause_event_id) for m in record.merges] == [
        (cid("anon:c1"), "v2")]  # fmt: skip
    assert record.identifiers == ["email:ada@x.example", "anon:c1"]
