"""Live = replay, as a law: the worker's interleavings end where `tandem replay` ends.

The worker runs the workflow's handlers on partitions: the identity sequencer sends moves and
touchpoints to the journeys' partitions (keyed by customer id), a move sends the journey on to
another partition as an absorb, and partitions are consumed at their own pace — so an absorb
can reach a customer that has itself moved on since, and with at-least-once delivery any
message may be carried out twice. Simulated here with in-memory ports and hypothesis choosing
every interleaving and redelivery, the journeys always end as the replay's: the same customer
ids (no phantom journey), touchpoints, identifiers and active signals.
"""

from __future__ import annotations

import copy
import zlib
from collections import deque
from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.journey import JourneyRecord
from streams import workflow
from streams.journey.identity import IdentityGuards
from streams.workflow.handlers import handle_journey_message, touchpoint_accepted
from streams.workflow.memory import InMemoryIdentityStore, InMemoryJourneyStore
from streams.workflow.ports import MovedJourney, StoredJourney
from streams.workflow.unit import Command, IdentityUnit, JourneyUnit
from tests.property.strategies import (
    PROPERTIES,
    context_for,
    document,
    law_playbook,
    parse,
    touchpoint_documents,
    with_duplicates,
)
from tests.property.test_identity_laws import Docs, active, people, settled

PB = law_playbook()
LAW = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.large_base_example]
)
PARTITIONS = 3


def partition_of(customer_id: str) -> int:
    return zlib.crc32(customer_id.encode()) % PARTITIONS


class Worker:
    """The workflow over in-memory partitions, one message at a time."""

    def __init__(self) -> None:
        self.store = InMemoryJourneyStore()
        self.identity = IdentityUnit(InMemoryIdentityStore(), IdentityGuards.from_playbook(PB))
        self.partitions: list[deque[Command]] = [deque() for _ in range(PARTITIONS)]

    def route(self, outgoing: list[Any]) -> None:
        for item in outgoing:
            if isinstance(item, Command):
                self.partitions[partition_of(item.customer_id)].append(item)

    def resolve(self, document: dict[str, Any]) -> None:
        touchpoint_accepted(parse([document])[0], self.identity)
        self.route(self.identity.outbox)
        self.identity.outbox = []

    def consume(self, partition: int, redeliver: bool) -> None:
        command = self.partitions[partition][0]
        unit = JourneyUnit(self.store, PB)
        handle_journey_message(command.customer_id, command.message, unit)
        changes, outgoing = unit.flush()
        for customer_id, journey in changes:
            self.store.put(customer_id, journey)
        self.route(outgoing)
        if not redeliver:  # at-least-once: carried out again, as after a crash
            self.partitions[partition].popleft()

    def records(self) -> dict[str, JourneyRecord]:
        return {c: j for c, j in self.store.journeys.items() if isinstance(j, JourneyRecord)}


@st.composite
def deliveries(draw: st.DrawFn) -> Docs:
    docs = draw(touchpoint_documents(identities=draw(people())))
    return draw(st.permutations(draw(with_duplicates(docs))))


@LAW
@given(deliveries(), st.randoms(use_true_random=False))
def test_any_interleaving_of_partitions_ends_at_the_replay(docs: Docs, rng: Random) -> None:
    worker = Worker()
    pending = deque(docs)
    # Partitions at their own pace: a slow one lets the others' moves overtake its messages.
    speed = [rng.uniform(0.02, 1.0) for _ in range(PARTITIONS)]
    while pending or any(worker.partitions):
        ready = [p for p in range(PARTITIONS) if worker.partitions[p]]
        options = ready + ([-1] if pending else [])
        weights = [speed[p] for p in ready] + ([1.0] if pending else [])
        choice = rng.choices(options, weights)[0]
        if choice == -1:
            worker.resolve(pending.popleft())
        else:
            worker.consume(choice, redeliver=rng.random() < 0.1)
    expected, live = ends_at_the_replay(docs, worker)
    for customer, record in expected.items():
        assert live[customer].identifiers == record.identifiers


def ends_at_the_replay(
    docs: Docs, worker: Worker
) -> tuple[dict[str, JourneyRecord], dict[str, JourneyRecord]]:
    """Assert the worker's journeys are the replay's (ids, touchpoints, active signals);
    return both."""
    expected = workflow.replay(parse(docs), PB).records
    live = worker.records()
    assert set(live) == set(expected)
    for customer, record in expected.items():
        got = live[customer]
        assert {t.event_id for t in got.touchpoints} == {t.event_id for t in record.touchpoints}
        assert active(got) == active(record)
    return expected, live


MAILBOX = "team@acme.example"  # not blocklisted: the quarantine has to contain it


@st.composite
def mailbox_deliveries(draw: st.DrawFn) -> Docs:
    """People who also write from one shared mailbox: enough to quarantine it, in any order."""
    docs = draw(touchpoint_documents(identities=draw(people())))
    form = "marketing.form_submitted"  # carries an identity (a spend record may not)
    for k in range(draw(st.integers(4, 7))):
        pair = ({"contact_id": f"team-{k}", "email": MAILBOX},
                {"email": MAILBOX, "anonymous_id": f"kiosk-{k}"})  # fmt: skip
        for n, identity in enumerate(pair):
            slot, v = draw(st.integers(0, 240)), draw(st.integers(0, 7**9))
            props = PROPERTIES[form](v)
            docs.append(document(f"m{k}-{n}", form, slot, identity, props, context_for(v)))
    return draw(st.permutations(draw(with_duplicates(docs))))


# The interleaving law above runs its 300 examples; this one adds the quarantine to it, on
# inputs three times as long: 100 examples keep it at the cost of the law it extends.
@settings(LAW, max_examples=100)
@given(mailbox_deliveries(), st.randoms(use_true_random=False))
def test_a_quarantined_mailbox_ends_at_the_replay_too(docs: Docs, rng: Random) -> None:
    test_any_interleaving_of_partitions_ends_at_the_replay.hypothesis.inner_test(docs, rng)  # type: ignore[attr-defined]
    signals = workflow.replay(parse(docs), PB).signals
    assert [s.signal_type for s in signals].count("identity_quarantined") == 1


class CrashingWorker(Worker):
    """The workflow as the worker runs it across crashes (`streams.adapters.agents`).

    Partitions are logs read from a position; a handled message's outgoing commands are
    appended first, then its journeys go to the read model (Redis: it keeps the highest
    version it is sent), then to the table. Only a commit makes the table's writes durable
    (Faust flushes the changelog before committing offsets); a crash (`kill -9`) loses the
    table's writes since and rewinds every partition to its committed position, while the
    logs and the read model keep all they got. The identity sequencer crashes with it: its
    table goes back to its last commit and it resolves again from its committed position. A
    partition may also be fetched again from an earlier position (a rebalance's seek, a
    refetch over a hole): those messages are handled again on a table that already holds them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.logs: list[list[Command]] = [[] for _ in range(PARTITIONS)]
        self.position = [0] * PARTITIONS
        self.committed = [0] * PARTITIONS
        self.durable: dict[str, StoredJourney] = {}
        self.read_model: dict[str, StoredJourney] = {}
        # The sequencer: its input log, read and committed positions, and its durable table.
        self.accepted: list[dict[str, Any]] = []
        self.resolved = 0
        self.resolved_committed = 0
        self.identity_durable = copy.deepcopy(self.identity.identities)

    def resolve_next(self) -> None:
        self.resolve(self.accepted[self.resolved])
        self.resolved += 1

    def route(self, outgoing: list[Any]) -> None:
        for item in outgoing:
            if isinstance(item, Command):
                self.logs[partition_of(item.customer_id)].append(item)

    def behind(self) -> list[int]:
        return [p for p in range(PARTITIONS) if self.position[p] < len(self.logs[p])]

    def consume(self, partition: int, redeliver: bool = False) -> None:
        command = self.logs[partition][self.position[partition]]
        unit = JourneyUnit(self.store, PB)
        handle_journey_message(command.customer_id, command.message, unit)
        changes, outgoing = unit.flush()
        self.route(outgoing)
        for customer_id, journey in changes:
            self.publish(customer_id, journey)
        for customer_id, journey in changes:
            self.store.put(customer_id, journey)
        self.position[partition] += 1

    def publish(self, customer_id: str, journey: StoredJourney) -> None:
        if isinstance(journey, MovedJourney) and journey.reclaimed:
            return  # not published (`adapters.journeys.read_model_batch`)
        held = self.read_model.get(customer_id)
        if held is None or journey.version > held.version:
            self.read_model[customer_id] = journey
        else:
            # The read model refuses a version it holds: had this version other content, the
            # journey would be stuck at the old one (the crash loop's lost touchpoints).
            assert journey.version < held.version or journey == held, (
                f"{customer_id}: version {journey.version} written with two contents"
            )

    def commit(self) -> None:
        self.durable = dict(self.store.journeys)
        self.committed = [max(c, p) for c, p in zip(self.committed, self.position, strict=True)]
        self.identity_durable = copy.deepcopy(self.identity.identities)
        self.resolved_committed = max(self.resolved_committed, self.resolved)

    def refetch(self, partition: int, rng: Random) -> None:
        """Fetch a journeys partition (or, as partition -1, the sequencer's) again from an
        earlier position."""
        if partition == -1:
            self.resolved = rng.randint(0, self.resolved)
        else:
            self.position[partition] = rng.randint(0, self.position[partition])

    def crash(self) -> None:
        self.store.journeys = dict(self.durable)
        self.position = list(self.committed)
        self.identity.identities = copy.deepcopy(self.identity_durable)
        self.resolved = self.resolved_committed


@LAW
@given(deliveries(), st.randoms(use_true_random=False))
def test_crashes_never_write_one_version_with_two_contents(docs: Docs, rng: Random) -> None:
    """Handled again after a crash, a message gives what it gave before, and one already in
    the journey leaves no trace; so the read model, which keeps the highest version, ends
    holding each journey exactly as the table does, and both equal the replay."""
    worker = CrashingWorker()
    pending = deque(docs)
    crashes = 0
    while pending or worker.behind() or worker.resolved < len(worker.accepted):
        behind = worker.behind()
        unresolved = worker.resolved < len(worker.accepted)
        options = behind + ([-1] if unresolved else []) + ([-2] if pending else [])
        choice = rng.choice(options)
        if choice == -2:
            worker.accepted.append(pending.popleft())  # ingest: on to the sequencer
        elif choice == -1:
            worker.resolve_next()
        else:
            worker.consume(choice)
        if rng.random() < 0.2:
            worker.commit()
        elif crashes < 6 and rng.random() < 0.04:
            worker.crash()
            crashes += 1
        elif crashes < 6 and rng.random() < 0.04:
            worker.refetch(rng.randrange(-1, PARTITIONS), rng)
            crashes += 1
    _, live = ends_at_the_replay(docs, worker)
    for customer, got in live.items():
        assert worker.read_model[customer] == got, f"the read model is stuck at {customer}"
    for customer, held in worker.read_model.items():  # no stale journey or pointer either
        stored = worker.store.get(customer)
        if not (isinstance(stored, MovedJourney) and stored.reclaimed):
            assert held == stored, f"the read model is stuck at {customer}"


@LAW
@given(deliveries(), st.integers(2, 40))
def test_a_replay_in_batches_ends_at_the_replay_one_at_a_time(docs: Docs, batch: int) -> None:
    """`replay(batch=N)` resolves N touchpoints, then carries out what they set off in rounds,
    a customer's touchpoints folded together: the same journeys (ids, touchpoints, identifiers,
    compacted prefixes) and the same active signals as one at a time."""
    expected = workflow.replay(parse(docs), PB)
    got = workflow.replay(parse(docs), PB, batch=batch)
    assert set(got.records) == set(expected.records)
    for customer, record in expected.records.items():
        together = got.records[customer]
        assert settled(together) == settled(record)
        assert active(together) == active(record)
