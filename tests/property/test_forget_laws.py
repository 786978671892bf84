"""Forget, as a law: once a person is forgotten, no replay of the same events (in any order,
any number of times) brings them back, and every other journey stays as it was."""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.journey import JourneyRecord
from streams.journey.forget import suppression_digest
from streams.journey.identity import customer_id_for
from streams.workflow import Replayer
from streams.workflow.messages import ForgetRequest
from tests.property.strategies import law_playbook, parse, touchpoint_documents
from tests.property.test_identity_laws import Docs, people

PB = law_playbook()
LAW = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.large_base_example]
)


def events_of(record: JourneyRecord) -> frozenset[str]:
    return frozenset(t.event_id for t in record.touchpoints)


@st.composite
def histories(draw: st.DrawFn) -> Docs:
    return draw(touchpoint_documents(identities=draw(people())))


@LAW
@given(histories(), st.data(), st.randoms(use_true_random=False))
def test_forget_then_any_replay_leaves_no_journey_and_the_others_unchanged(
    docs: Docs, data: st.DataObject, rng: Random
) -> None:
    touchpoints = parse(docs)
    replayer = Replayer(PB)
    for touchpoint in touchpoints:
        replayer.touchpoint(touchpoint)
    known = sorted(replayer.store.customers)
    if not known:
        return  # only blocklisted identifiers: nobody to forget
    reference = data.draw(st.sampled_from(known))
    person = replayer.store.get(reference)
    assert person is not None
    members = replayer.store.get_members(person)
    before = {c: events_of(r) for c, r in replayer.records().items()}

    replayer.forget(ForgetRequest.for_reference(reference, "law", datetime(2030, 1, 1, tzinfo=UTC)))
    again = list(touchpoints)
    rng.shuffle(again)
    for touchpoint in again + touchpoints:
        replayer.touchpoint(touchpoint)

    erased = {customer_id_for(i) for i in members} | {person}
    after = {c: events_of(r) for c, r in replayer.records().items()}
    assert erased.isdisjoint(after)
    assert after == {c: e for c, e in before.items() if c not in erased}
    for identifier in members:
        assert replayer.store.get(identifier) is None
        assert replayer.store.is_suppressed(suppression_digest(identifier))
