"""Units of work: what one batch of messages reads, changes and sends.

A unit caches what its handlers load, remembers what they change, and queues what they send,
in order. The adapter that owns the unit writes each changed journey once per batch — table,
`journeys.state`, Redis — and sends the queue, so a customer touched by many messages in a
batch costs one write, and signals still leave in the order they were decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from schemas.signals import Signal
from streams.journey import record as records
from streams.journey.identity import IdentityGuards
from streams.workflow.messages import JourneyMessage
from streams.workflow.ports import (
    ForgottenJourney,
    IdentityPort,
    JourneyStore,
    MovedJourney,
    StoredJourney,
)


@dataclass(frozen=True)
class Command:
    """A message for the journeys hop, keyed by the customer id it is for."""

    customer_id: str
    message: JourneyMessage


@dataclass(frozen=True)
class Emitted:
    """A signal for its topic, keyed by the customer id it is about."""

    customer_id: str
    signal: Signal


Outgoing = Command | Emitted


@dataclass
class Counters:
    """What a workflow did: the numbers `tandem replay` and the worker's logs report."""

    applied: int = 0
    duplicates: int = 0
    moves: int = 0
    refused: list[str] = field(default_factory=list)
    suppressed: int = 0
    """Touchpoints of forgotten people, dropped (neither applied nor dead-lettered)."""
    forgotten: int = 0
    """Journeys erased by forget requests."""


@dataclass
class IdentityUnit:
    """The identity sequencer's batch: its store and the commands it sends on."""

    identities: IdentityPort
    guards: IdentityGuards
    counters: Counters = field(default_factory=Counters)
    outbox: list[Outgoing] = field(default_factory=list)
    playbook_version: str = ""
    """The playbook in force, named by the signals this unit emits (forget audits)."""

    def send(self, customer_id: str, message: JourneyMessage) -> None:
        """Queue a message for a customer's journey."""
        self.outbox.append(Command(customer_id, message))

    def emit(self, customer_id: str, signals: list[Signal]) -> None:
        """Queue signals about a customer, in order (the sequencer's alerts: a quarantine, a
        forget request's audit record)."""
        self.outbox.extend(Emitted(customer_id, signal) for signal in signals)


_ABSENT = object()


@dataclass
class JourneyUnit:
    """The journeys hop's batch: journeys loaded once, changed in place, written once."""

    journeys: JourneyStore
    playbook: Playbook
    counters: Counters = field(default_factory=Counters)
    outbox: list[Outgoing] = field(default_factory=list)
    _loaded: dict[str, StoredJourney | None] = field(default_factory=dict)
    changed: dict[str, None] = field(default_factory=dict)
    timers_due: dict[str, None] = field(default_factory=dict)
    unlinked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Erased customer id → the identifiers whose read-model pointers go with it."""
    _undo: dict[str, tuple[object, bool, bool]] = field(default_factory=dict)
    _mark: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)

    def begin(self) -> None:
        """Start one message: `rollback` undoes whatever it does from here."""
        self._undo = {}
        c = self.counters
        self._mark = (len(self.outbox), c.applied, c.duplicates, c.moves, len(c.refused),
                      c.suppressed, c.forgotten)  # fmt: skip

    def rollback(self) -> None:
        """Undo the current message's changes and sends (it failed; it is dead-lettered)."""
        for customer_id, (journey, changed, timers) in self._undo.items():
            if journey is _ABSENT:
                self._loaded.pop(customer_id, None)
            else:
                self._loaded[customer_id] = journey  # type: ignore[assignment]
            if not changed:
                self.changed.pop(customer_id, None)
                self.unlinked.pop(customer_id, None)
            if not timers:
                self.timers_due.pop(customer_id, None)
        self._undo = {}
        outbox, applied, duplicates, moves, refused, suppressed, forgotten = self._mark
        del self.outbox[outbox:]
        c = self.counters
        c.applied, c.duplicates, c.moves = applied, duplicates, moves
        c.suppressed, c.forgotten = suppressed, forgotten
        del c.refused[refused:]

    def touched(self) -> list[str]:
        """The customers whose journey or timer the current message changed (since `begin`)."""
        return list(self._undo)

    def load(self, customer_id: str) -> StoredJourney | None:
        """The journey (or pointer) at a customer id, as this batch left it."""
        stored = self._loaded.get(customer_id, _ABSENT)
        if stored is _ABSENT:
            stored = self._loaded[customer_id] = self.journeys.get(customer_id)
        return stored  # type: ignore[return-value]

    def loaded(self) -> dict[str, StoredJourney]:
        """Everything this unit has loaded or changed (replay keeps one unit throughout)."""
        return {cid: j for cid, j in self._loaded.items() if j is not None}

    def save(self, customer_id: str, journey: StoredJourney) -> None:
        """Change a customer's journey (written once, when the batch is flushed)."""
        if customer_id not in self._undo:
            self._undo[customer_id] = (
                self._loaded.get(customer_id, _ABSENT),
                customer_id in self.changed,
                customer_id in self.timers_due,
            )
        self._loaded[customer_id] = journey
        self.changed[customer_id] = None
        self.timers_due[customer_id] = None

    def recheck_timers(self, customer_id: str) -> None:
        """Recompute when this journey's next timer is due, though it did not change."""
        if customer_id not in self._undo:
            self._undo[customer_id] = (
                self._loaded.get(customer_id, _ABSENT),
                customer_id in self.changed,
                customer_id in self.timers_due,
            )
        self.timers_due[customer_id] = None

    def send(self, customer_id: str, message: JourneyMessage) -> None:
        """Queue a message for a customer's journey (its own or another's)."""
        self.outbox.append(Command(customer_id, message))

    def emit(self, customer_id: str, signals: list[Signal]) -> None:
        """Queue signals about a customer, in order."""
        self.outbox.extend(Emitted(customer_id, signal) for signal in signals)

    def forget(self, customer_id: str, marker: ForgottenJourney, identifiers: list[str]) -> None:
        """Erase a customer's journey: the marker replaces it; the read model unlinks
        `identifiers` from it when the batch is flushed."""
        self.save(customer_id, marker)
        self.unlinked[customer_id] = tuple(identifiers)

    def take_unlinked(self) -> dict[str, tuple[str, ...]]:
        """The erased customer ids of this batch, with the identifiers to unlink."""
        unlinked, self.unlinked = self.unlinked, {}
        return unlinked

    def current(self, customer_id: str) -> StoredJourney | None:
        """The journey at a customer id (re-evaluated first if the playbook changed), the
        pointer it left when it moved or the marker left when its person was forgotten, or
        None (a reclaimed pointer counts as None)."""
        stored = self.load(customer_id)
        if isinstance(stored, MovedJourney):
            return None if stored.reclaimed else stored
        if isinstance(stored, JourneyRecord) and stored.playbook_version != self.playbook.version:
            outcome = records.reevaluate(stored, self.playbook)
            self.save(customer_id, outcome.record)
            self.emit(customer_id, outcome.signals)
            return outcome.record
        return stored

    def new_journey(self, customer_id: str) -> JourneyRecord:
        """An empty journey, versioned after any pointer this id held before."""
        journey = records.new_journey(customer_id)
        stored = self.load(customer_id)
        if isinstance(stored, MovedJourney):
            # Its snapshots must supersede the moved-journey marker the read model holds.
            journey = journey.model_copy(update={"version": stored.version})
        return journey

    def flush(self) -> tuple[list[tuple[str, StoredJourney]], list[Outgoing]]:
        """The changed journeys (once each) and the queued messages; the unit starts over."""
        changes: list[tuple[str, StoredJourney]] = []
        for customer_id in self.changed:
            journey = self._loaded[customer_id]
            if journey is not None:
                changes.append((customer_id, journey))
        outbox = self.outbox
        self.outbox, self.changed = [], {}
        return changes, outbox

    def take_timers_due(self) -> list[tuple[str, JourneyRecord | None]]:
        """The journeys whose next timer must be recomputed (None: moved or gone)."""
        due = []
        for customer_id in self.timers_due:
            stored = self._loaded.get(customer_id)
            due.append((customer_id, stored if isinstance(stored, JourneyRecord) else None))
        self.timers_due = {}
        return due
