"""Identity laws over several customers (≥ 500 examples each).

Several people, each with a few identifiers (a CRM contact, emails, cookies — plus a shared,
blocklisted inbox), produce touchpoints carrying one or two of their identifiers: the links.
Run through the resolver and the journeys exactly as the identity and journey agents do
(`replay`: moves absorb journeys into their new customer id), in any order, the result is
always the connected components of the links — one journey per component, named after its
strongest identifier, holding exactly that component's touchpoints — and the same active
signals as folding each component's touchpoints in one go.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import journey as core
from streams import workflow
from streams.journey.identity import IdentityGuards, by_strength
from tests.property.strategies import (
    law_playbook,
    parse,
    touchpoint_documents,
    with_duplicates,
)

PB = law_playbook()
GUARDS = IdentityGuards.from_playbook(PB)
LAW = settings(max_examples=500, deadline=None)
SHARED = "info@shared.example"  # blocklisted by the default playbook (email:info@*)
FIELD = {"contact": "contact_id", "email": "email", "anon": "anonymous_id"}

Docs = list[dict[str, Any]]


@st.composite
def people(draw: st.DrawFn) -> list[dict[str, str]]:
    """The identities touchpoints may carry: one or two identifiers of one person."""
    identities: list[dict[str, str]] = []
    for k in range(draw(st.integers(2, 4))):
        ids = [f"email:p{k}{s}@x.example" for s in "ab"[: draw(st.integers(1, 2))]]
        ids += [f"anon:{k}-c{n}" for n in range(draw(st.integers(1, 2)))]
        if draw(st.booleans()):
            ids.append(f"contact:crm-{k}")
        if draw(st.booleans()):
            ids.append(f"email:{SHARED}")
        for identifier in ids:
            identities.append(_identity((identifier,)))
        for pair in combinations(ids, 2):
            if pair[0].split(":")[0] != pair[1].split(":")[0]:
                identities.append(_identity(pair))
    return identities


def _identity(identifiers: tuple[str, ...]) -> dict[str, str]:
    return {FIELD[i.split(":", 1)[0]]: i.split(":", 1)[1] for i in identifiers}


@st.composite
def streams(draw: st.DrawFn) -> tuple[Docs, Docs]:
    """One multiset of deliveries, in two orders."""
    identities = draw(people())
    docs = draw(touchpoint_documents(identities=identities))
    deliveries = draw(with_duplicates(docs))
    return draw(st.permutations(deliveries)), draw(st.permutations(deliveries))


def expected_journeys(docs: Docs) -> dict[str, tuple[set[str], set[str]]]:
    """customer id → (identifiers, event ids): the connected components of the links."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    homes: dict[str, list[str]] = {}
    for doc in docs:
        touchpoint = parse([doc])[0]
        if touchpoint.identity is None:
            homes[doc["event_id"]] = []
            continue
        linkable = GUARDS.linkable(touchpoint.identity.identifiers())
        homes[doc["event_id"]] = linkable or [touchpoint.identity.identifiers()[0]]
        for identifier in linkable[:1]:
            find(identifier)
        for other in linkable[1:]:
            parent[find(other)] = find(linkable[0])
    members: dict[str, set[str]] = defaultdict(set)
    for identifier in list(parent):
        members[find(identifier)].add(identifier)
    journeys: dict[str, tuple[set[str], set[str]]] = {}
    for event_id, home in homes.items():
        if not home:
            customer, identifiers = core.LEDGER_CUSTOMER, set[str]()
        elif home[0] in parent:
            identifiers = members[find(home[0])]
            customer = core.customer_id_for(by_strength(identifiers)[0])
        else:  # only blocklisted identifiers: a journey of its own
            customer, identifiers = core.customer_id_for(home[0]), set()
        journeys.setdefault(customer, (identifiers, set()))[1].add(event_id)
    return journeys


def active(record: core.JourneyRecord) -> dict[str, tuple[str, str]]:
    return {
        e.signal_id: (e.signal_type, e.content_hash)
        for e in record.signal_ledger.values()
        if e.status == "active"
    }


def settled(record: core.JourneyRecord) -> dict[str, Any]:
    """The journey's content, without the order-dependent history (merges, deliveries)."""
    return record.model_dump(include={"customer_id", "identifiers", "touchpoints", "compacted"})


@LAW
@given(streams())
def test_journeys_are_the_connected_components_whatever_the_order(
    orders: tuple[Docs, Docs],
) -> None:
    first, second = orders
    expected = expected_journeys(first)
    a, b = workflow.replay(parse(first), PB), workflow.replay(parse(second), PB)
    for result in (a, b):
        assert set(result.records) == set(expected)
        for customer, (identifiers, event_ids) in expected.items():
            record = result.records[customer]
            assert {t.event_id for t in record.touchpoints} == event_ids
            assert record.identifiers == by_strength(identifiers)
        assert result.store.components() == {
            c: tuple(by_strength(ids)) for c, (ids, _) in expected.items() if ids
        }
        assert result.refused == []
    for customer in expected:
        assert settled(a.records[customer]) == settled(b.records[customer])
        assert core.view(a.records[customer], PB) == core.view(b.records[customer], PB)


@LAW
@given(streams())
def test_merged_journeys_end_with_the_signals_of_their_whole_component(
    orders: tuple[Docs, Docs],
) -> None:
    first, second = orders
    a, b = workflow.replay(parse(first), PB), workflow.replay(parse(second), PB)
    by_customer: dict[str, Docs] = defaultdict(list)
    for customer, (_, event_ids) in expected_journeys(first).items():
        by_customer[customer] = [d for d in first if d["event_id"] in event_ids]
    for customer, docs in by_customer.items():
        whole = core.reevaluate(core.fold(customer, parse(docs), PB), PB).record
        assert active(a.records[customer]) == active(b.records[customer]) == active(whole)
    # Every active signal names the journey's final customer id.
    for customer, record in a.records.items():
        signals = {s.signal_id: s for s in a.signals}
        for signal_id in active(record):
            assert signals[signal_id].customer_id == customer
