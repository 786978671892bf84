"""Unmerge laws: splitting a merge gives back the journeys of each side, and they stay apart.

* For two people's journeys A and B, merged in any order (absorbed, or interleaved touchpoint
  by touchpoint), `split` by either side's identifiers followed by `receive_split` gives the
  journeys folding A's and B's touchpoints separately gives — same content, stage, scores and
  active signals (version, merge history and superseded ledger entries aside).
* Linked by bridging events (one identifier of each person) through the resolver, then
  unmerged: every touchpoint is with its strongest identifier's side, each side equals its
  fold, and replaying every event again moves nothing — the separation holds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.vocabulary import Touchpoint
from streams import journey as core
from streams import workflow
from streams.journey.identity import IdentityGuards, by_strength
from tests.property.strategies import T0, law_playbook, parse, touchpoint_documents, with_duplicates

PB = law_playbook()
GUARDS = IdentityGuards.from_playbook(PB)
LAW = settings(max_examples=300, deadline=None)
AT = T0 + timedelta(days=400)

A_IDENTITIES = [
    {"anonymous_id": "a-c1"},
    {"email": "pa@x.example"},
    {"email": "pa@x.example", "anonymous_id": "a-c1"},
    {"contact_id": "crm-a", "email": "pa@x.example"},
]
B_IDENTITIES = [
    {"anonymous_id": "b-c1"},
    {"email": "pb@x.example", "anonymous_id": "b-c1"},
    {"email": "pb@x.example"},
    {"contact_id": "crm-b"},
]
# Each person's identifiers are linked by their own events (all carry the email).
A_LINKED = [
    {"email": "pa@x.example"},
    {"email": "pa@x.example", "anonymous_id": "a-c1"},
    {"contact_id": "crm-a", "email": "pa@x.example"},
]
B_LINKED = [
    {"email": "pb@x.example"},
    {"email": "pb@x.example", "anonymous_id": "b-c1"},
    {"contact_id": "crm-b", "email": "pb@x.example"},
]
B_ALL = {"email:pb@x.example", "anon:b-c1", "contact:crm-b"}
BRIDGES = [
    {"email": "pa@x.example", "anonymous_id": "b-c1"},  # A's strongest: goes with A
    {"email": "pb@x.example", "anonymous_id": "a-c1"},  # B's strongest: goes with B
    {"contact_id": "crm-b", "email": "pa@x.example"},
]
Docs = list[dict[str, Any]]


def person(prefix: str, identities: list[dict[str, str]]) -> st.SearchStrategy[Docs]:
    docs = touchpoint_documents(prefix=prefix, identities=identities, max_size=15)
    return docs.map(lambda ds: [d for d in ds if "identity" in d]).filter(bool)


def strongest(tp: Touchpoint) -> str:
    assert tp.identity is not None
    return GUARDS.linkable(tp.identity.identifiers())[0]


def ids_of(touchpoints: list[Touchpoint]) -> list[str]:
    return by_strength(i for t in touchpoints if t.identity for i in t.identity.identifiers())


def whole(customer_id: str, touchpoints: list[Touchpoint]) -> core.JourneyRecord:
    return core.reevaluate(core.fold(customer_id, touchpoints, PB), PB).record


def active(record: core.JourneyRecord) -> dict[str, str]:
    return {e.signal_id: e.content_hash for e in record.signal_ledger.values()
            if e.status == "active"}  # fmt: skip


def content(record: core.JourneyRecord) -> dict[str, Any]:
    snap = core.snapshot(record, PB).model_dump(exclude={"version", "merges", "signals"})
    return {**snap, "active": active(record)}


def unmerged(record: core.JourneyRecord, chosen: list[str]) -> dict[str, core.JourneyRecord]:
    result = core.split(record, chosen, PB, "unmerge", AT)
    moved = result.moved
    arrived = core.receive_split(core.new_journey(moved.customer_id), moved, PB, AT).record
    kept = result.kept.record
    return {kept.customer_id: kept, arrived.customer_id: arrived}


@LAW
@given(
    person("a", A_IDENTITIES).flatmap(with_duplicates),
    person("b", B_IDENTITIES).flatmap(with_duplicates),
    st.booleans(),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_split_of_a_merge_gives_back_each_side(
    a_docs: Docs, b_docs: Docs, interleave: bool, split_a: bool, rnd: Any
) -> None:
    a_tps, b_tps = parse(a_docs), parse(b_docs)
    a_ids, b_ids = ids_of(a_tps), ids_of(b_tps)
    a_id, b_id = core.customer_id_for(a_ids[0]), core.customer_id_for(b_ids[0])
    target = core.customer_id_for(by_strength([a_ids[0], b_ids[0]])[0])
    if interleave:
        deliveries = [*a_tps, *b_tps]
        rnd.shuffle(deliveries)
        merged = core.new_journey(target)
        for tp in deliveries:
            merged = core.apply_touchpoint(merged, tp, PB).record
    else:
        a_rec, b_rec = whole(a_id, a_tps), whole(b_id, b_tps)
        into, other = (a_rec, b_rec) if target == a_id else (b_rec, a_rec)
        merged = core.absorb(into, other, PB, "link", AT).record
    journeys = unmerged(merged, a_ids if split_a else b_ids)
    assert set(journeys) == {a_id, b_id}
    assert content(journeys[a_id]) == content(whole(a_id, a_tps))
    assert content(journeys[b_id]) == content(whole(b_id, b_tps))
    assert all(j.version > merged.version for j in journeys.values())


def resolve_all(
    result: workflow.ReplayResult, touchpoints: list[Touchpoint]
) -> list[core.IdentityDecision]:
    decisions = []
    for tp in touchpoints:
        assert tp.identity is not None
        decision = core.resolve(result.store, tp.identity.identifiers(), GUARDS, tp.event_id)
        result.store.apply(decision)
        record = result.records.get(decision.customer_id) or core.new_journey(decision.customer_id)
        result.records[decision.customer_id] = core.apply_touchpoint(record, tp, PB).record
        decisions.append(decision)
    return decisions


@LAW
@given(
    person("a", A_LINKED),
    person("b", B_LINKED),
    st.lists(st.sampled_from(BRIDGES), min_size=1, max_size=3),
    st.randoms(use_true_random=False),
)
def test_after_unmerge_replaying_the_same_events_keeps_them_apart(
    a_docs: Docs, b_docs: Docs, bridges: list[dict[str, str]], rnd: Any
) -> None:
    bridge_docs = [
        {**a_docs[0], "event_id": f"x{n}", "identity": identity, "type": "marketing.page_viewed",
         "properties": {"url": "/login"}}
        for n, identity in enumerate(bridges)
    ]  # fmt: skip
    # One event each carrying all of a person's identifiers: each person is one component.
    anchors = [
        {**a_docs[0], "event_id": "a-all", "identity": {"contact_id": "crm-a",
         "email": "pa@x.example", "anonymous_id": "a-c1"}},
        {**b_docs[0], "event_id": "b-all", "identity": {"contact_id": "crm-b",
         "email": "pb@x.example", "anonymous_id": "b-c1"}},
    ]  # fmt: skip
    a_docs, b_docs = [*a_docs, anchors[0]], [*b_docs, anchors[1]]
    touchpoints = parse([*a_docs, *b_docs, *bridge_docs])
    rnd.shuffle(touchpoints)
    result = workflow.replay(touchpoints, PB)
    [(customer, merged)] = [(c, r) for c, r in result.records.items()]
    chosen = [i for i in result.store.get_members(customer) if i in B_ALL]
    decision = core.unmerge_identity(result.store, customer, chosen)
    result.store.apply(decision.identity)
    result.records = unmerged(merged, list(decision.split))
    # Each side is the fold of the touchpoints whose strongest identifier is on that side.
    for side_id, side_ids in ((decision.remaining_customer_id, decision.remaining),
                              (decision.split_customer_id, decision.split)):  # fmt: skip
        mine = [tp for tp in touchpoints if strongest(tp) in side_ids]
        assert content(result.records[side_id]) == content(whole(side_id, mine))
    # Replaying everything: no move, each event goes to its strongest identifier's side.
    before = {c: r.touchpoints for c, r in result.records.items()}
    rnd.shuffle(touchpoints)
    for tp, again in zip(touchpoints, resolve_all(result, touchpoints), strict=True):
        assert again.moves == []
        side = decision.split if strongest(tp) in decision.split else decision.remaining
        assert again.customer_id == core.customer_id_for(side[0])
    assert {c: r.touchpoints for c, r in result.records.items()} == before
