"""Offline replay: the worker's workflow in one process, over touchpoints in a given order.

Used by `tandem replay` and by the tests as the expected outcome of a stream of touchpoints.
It runs the very handlers the worker runs (`streams.workflow.handlers`) on in-memory ports.

One at a time (`batch=1`, the default of `replay`): each touchpoint goes through the identity
sequencer, and every message that sends on is carried out at once, depth first — one of the
interleavings the worker's partitions allow, and the one closest to "in the order given".

In batches (`batch=N`), for a large backlog: the sequencer resolves N touchpoints, then the
journeys hop carries out what it sent in rounds — a round's messages grouped into
runs (`handlers.journey_runs`: a customer's touchpoints folded together), what a round sends
on forms the next. The journeys and their final signals are the same either way (the workflow
laws); only signals that a state in between called for are not sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from events.vocabulary import Touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from schemas.signals import Signal
from streams.journey.identity import IdentityGuards
from streams.workflow.handlers import (
    forget_requested,
    handle_journey_batch,
    handle_journey_message,
    touchpoint_accepted,
)
from streams.workflow.memory import InMemoryIdentityPort, InMemoryJourneyStore
from streams.workflow.messages import ForgetRequest, Tick
from streams.workflow.unit import Command, Counters, Emitted, IdentityUnit, JourneyUnit, Outgoing


@dataclass
class ReplayResult:
    """Journeys by customer id, every signal emitted (in order), and what happened."""

    records: dict[str, JourneyRecord] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    moves: int = 0
    refused: list[str] = field(default_factory=list)
    suppressed: int = 0
    forgotten: int = 0
    store: InMemoryIdentityPort = field(default_factory=InMemoryIdentityPort)


class Replayer:
    """The workflow in memory: feed touchpoints (and ticks), read the journeys."""

    def __init__(self, playbook: Playbook, batch: int = 1) -> None:
        if batch < 1:
            raise ValueError("a batch holds at least one touchpoint")
        self.counters = Counters()
        self.store = InMemoryIdentityPort()
        self.identity = IdentityUnit(
            self.store, IdentityGuards.from_playbook(playbook), self.counters,
            playbook_version=playbook.version,
        )  # fmt: skip
        self.journeys = JourneyUnit(InMemoryJourneyStore(), playbook, self.counters)
        self.signals: list[Signal] = []
        self.batch = batch
        self._resolved = 0

    def touchpoint(self, touchpoint: Touchpoint) -> None:
        """One touchpoint through identity resolution and everything it sets off (in batches:
        once its batch is full, or on `settle`)."""
        touchpoint_accepted(touchpoint, self.identity)
        self._resolved += 1
        if self._resolved >= self.batch:
            self.settle()

    def settle(self) -> None:
        """Carry out everything the touchpoints fed so far set off."""
        outgoing, self.identity.outbox = self.identity.outbox, []
        self._resolved = 0
        if self.batch == 1:
            self._carry_out(outgoing)
        else:
            self._in_rounds(outgoing)

    def forget(self, request: ForgetRequest) -> None:
        """A forget request, as the identity sequencer carries it out, with its erasures."""
        forget_requested(request, self.identity)
        self.settle()
        self.journeys.take_unlinked()  # no read model here

    def tick(self, now: datetime) -> None:
        """Timers of every journey, as of `now` (in customer id order)."""
        for customer_id in sorted(self.records()):
            self._carry_out([Command(customer_id, Tick(now=now))])

    def _carry_out(self, outgoing: list[Outgoing]) -> None:
        pending = list(reversed(outgoing))
        unit = self.journeys
        while pending:
            item = pending.pop()
            if isinstance(item, Emitted):
                self.signals.append(item.signal)
                continue
            mark = len(unit.outbox)
            handle_journey_message(item.customer_id, item.message, unit)
            pending.extend(reversed(unit.outbox[mark:]))
            del unit.outbox[mark:]
            self._handled()

    def _in_rounds(self, outgoing: list[Outgoing]) -> None:
        unit = self.journeys
        while outgoing:
            commands: list[Command] = []
            for item in outgoing:
                if isinstance(item, Emitted):
                    self.signals.append(item.signal)
                else:
                    commands.append(item)
            handle_journey_batch(commands, unit)
            outgoing, unit.outbox = unit.outbox, []

    def _handled(self) -> None:
        """Called after each journey message handled one at a time (a probe's hook; nothing
        here)."""

    def records(self) -> dict[str, JourneyRecord]:
        """The live journeys (not the pointers moved ones left behind)."""
        self.settle()
        loaded = self.journeys.loaded()
        return {cid: j for cid, j in loaded.items() if isinstance(j, JourneyRecord)}

    def result(self) -> ReplayResult:
        """Everything replayed so far."""
        self.settle()
        counters = self.counters
        return ReplayResult(
            records=self.records(),
            signals=list(self.signals),
            applied=counters.applied,
            duplicates=counters.duplicates,
            moves=counters.moves,
            refused=list(counters.refused),
            suppressed=counters.suppressed,
            forgotten=counters.forgotten,
            store=self.store,
        )


def replay(
    touchpoints: Iterable[Touchpoint],
    playbook: Playbook,
    *,
    now: datetime | None = None,
    batch: int = 1,
) -> ReplayResult:
    """Run touchpoints through identity resolution and the journeys, in the order given,
    one at a time or `batch` at a time (see the module doc).

    With `now`, timers are evaluated once for every journey at the end (SLA alerts, stalled
    and customer nurture due by then).
    """
    replayer = Replayer(playbook, batch)
    for touchpoint in touchpoints:
        replayer.touchpoint(touchpoint)
    if now is not None:
        replayer.tick(now)
    return replayer.result()
