"""Merge storms are contained: a shared mailbox is quarantined, not a bridge between strangers.

Run through the identity sequencer and the journeys exactly as the worker does (the replay):
an identifier seen with more strong identities than `identity.max_links_per_identifier` links
nothing further, one alert goes to `signals.alerts`, and `tandem unmerge` undoes what it linked
before the limit was reached.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.vocabulary import parse_touchpoint
from schemas.signals import ALERTS_TOPIC, IdentityQuarantinedSignal
from streams import journey as core
from streams.journey.identity import IdentityGuards, InMemoryIdentityStore, customer_id_for
from streams.workflow import handlers
from streams.workflow.messages import UnmergeRequest
from streams.workflow.replay import Replayer

PB = core.default_playbook()
T0 = datetime(2025, 3, 1, tzinfo=UTC)
TEAM = "team@acme.example"
PEOPLE = 2_000


def visit(n: int, **identity: str) -> Any:
    return parse_touchpoint(
        {
            "event_id": f"e{n}",
            "type": "marketing.page_viewed",
            "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
            "source": "website",
            "identity": identity,
            "properties": {"url": f"https://example.com/{n}"},
        }
    )


def alerts(replayer: Replayer) -> list[IdentityQuarantinedSignal]:
    return [s for s in replayer.signals if isinstance(s, IdentityQuarantinedSignal)]


def test_the_playbook_sets_the_limit() -> None:
    assert PB.identity.max_links_per_identifier == 3
    assert IdentityGuards.from_playbook(PB).max_links_per_identifier == 3


def unmerge(replayer: Replayer, customer_id: str, identifiers: list[str], request_id: str) -> None:
    """What `tandem unmerge CUSTOMER --split IDENTIFIER…` does, in the replay."""
    request = UnmergeRequest(
        customer_id=customer_id, identifiers=identifiers, request_id=request_id,
        requested_at=T0 + timedelta(days=30),
    )  # fmt: skip
    handlers.unmerge_requested(request, replayer.identity)
    replayer._carry_out(replayer.identity.outbox)
    replayer.identity.outbox = []


def test_a_shared_mailbox_leaves_strangers_in_journeys_of_their_own() -> None:
    replayer = Replayer(PB)
    for n in range(PEOPLE):
        own = {"contact_id": f"crm-{n}", "email": f"p{n}@acme.example"}
        replayer.touchpoint(visit(n, **own))
        replayer.touchpoint(visit(PEOPLE + n, contact_id=f"crm-{n}", email=TEAM,
                                  anonymous_id=f"c-{n}"))  # fmt: skip
        replayer.touchpoint(visit(2 * PEOPLE + n, email=TEAM, anonymous_id=f"c-{n}"))
    [alert] = alerts(replayer)
    assert alert.topic == ALERTS_TOPIC
    assert alert.identifier == f"email:{TEAM}"
    assert alert.limit == 3
    assert alert.linked == [f"contact:crm-{n}" for n in range(4)]
    assert replayer.store.get_links(f"email:{TEAM}") == tuple(alert.linked)
    # Before the limit was reached the mailbox linked three people: one journey, named in the
    # alert; nobody after them was linked.
    merged = alert.customer_id
    assert merged == customer_id_for("contact:crm-0")
    records = replayer.records()
    crowded = {
        c for c, r in records.items() if sum(i.startswith("contact:") for i in r.identifiers) > 1
    }
    assert crowded == {merged}
    # The operator splits the strangers off, as the alert says; then everyone is on their own.
    strangers = [
        i
        for i in alert.identities
        if i.endswith(("crm-1", "crm-2", "p1@acme.example", "p2@acme.example", "c-1", "c-2"))
    ]
    for n, person in enumerate((1, 2)):
        mine = [i for i in strangers if i.endswith((f"crm-{person}", f"p{person}@acme.example",
                                                    f"c-{person}"))]  # fmt: skip
        unmerge(replayer, merged, mine, f"u{n}")
    records = replayer.records()
    for n in range(PEOPLE):
        record = records[customer_id_for(f"contact:crm-{n}")]
        assert [i for i in record.identifiers if i.startswith("contact:")] == [f"contact:crm-{n}"]
        assert f"email:p{n}@acme.example" in record.identifiers
        events = {t.event_id for t in record.touchpoints}
        assert {f"e{n}", f"e{PEOPLE + n}"} <= events
        if n >= 3:  # never linked: everything the person did, and nothing else
            assert events == {f"e{n}", f"e{PEOPLE + n}", f"e{2 * PEOPLE + n}"}
    assert len(alerts(replayer)) == 1


def test_a_mailbox_alone_goes_to_a_journey_of_its_own_after_the_quarantine() -> None:
    replayer = Replayer(PB)
    for n in range(4):  # crm-0..crm-2 link through it; crm-3 trips the limit
        replayer.touchpoint(visit(n, contact_id=f"crm-{n}", email=TEAM))
    replayer.touchpoint(visit(10, email=TEAM))
    replayer.touchpoint(visit(11, contact_id="crm-0", email=TEAM))
    records = replayer.records()
    shared = customer_id_for(f"email:{TEAM}")
    assert [t.event_id for t in records[shared].touchpoints] == ["e10"]
    assert {t.event_id for t in records[customer_id_for("contact:crm-0")].touchpoints} == {
        "e0", "e1", "e2", "e11",
    }  # fmt: skip
    # Its journey lists the mailbox (its touchpoint carried it) but nobody else.
    assert records[customer_id_for("contact:crm-3")].identifiers == [
        "contact:crm-3", f"email:{TEAM}",
    ]  # fmt: skip
    assert len(alerts(replayer)) == 1


def test_unmerge_undoes_what_the_mailbox_linked_before_its_quarantine() -> None:
    replayer = Replayer(PB)
    for n in range(6):
        replayer.touchpoint(visit(n, contact_id=f"crm-{n}", email=TEAM))
    [alert] = alerts(replayer)
    merged = alert.customer_id
    assert alert.identities == ["contact:crm-0", "contact:crm-1", "contact:crm-2", f"email:{TEAM}"]
    # What the alert tells the operator to do: split each stranger off.
    for k, stranger in enumerate(["contact:crm-1", "contact:crm-2"]):
        unmerge(replayer, merged, [stranger], f"u{k}")
    records = replayer.records()
    for n in range(6):
        record = records[customer_id_for(f"contact:crm-{n}")]
        assert [i for i in record.identifiers if i.startswith("contact:")] == [f"contact:crm-{n}"]
        assert [t.event_id for t in record.touchpoints] == [f"e{n}"]
    # Split apart for good: the people's next touchpoints stay apart.
    replayer.touchpoint(visit(20, contact_id="crm-1", email=TEAM))
    assert customer_id_for("contact:crm-1") in replayer.records()
    crm0 = replayer.records()[customer_id_for("contact:crm-0")]
    assert [t.event_id for t in crm0.touchpoints] == ["e0"]


def test_contact_ids_are_never_quarantined() -> None:
    store = InMemoryIdentityStore()
    guards = IdentityGuards.from_playbook(PB)
    for n in range(6):  # one CRM record with six emails: the CRM says it is one person
        decision = core.resolve(
            store, ("contact:crm-1", f"email:ada{n}@example.com"), guards, f"e{n}"
        )
        store.apply(decision)
        assert decision.quarantined == []
    assert len(store.get_members(customer_id_for("contact:crm-1"))) == 7
