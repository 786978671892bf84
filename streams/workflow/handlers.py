"""The workflow: one plain function per message, dispatched through a table.

The worker's agents and `tandem replay` call these same handlers; only the ports differ
(`streams.workflow.ports`). Handlers read and change state through their unit of work and
queue what they send; they never do I/O themselves.

Moves are followed: a journey that moved leaves a `MovedJourney` pointer behind, and a
touchpoint, absorb or split reaching that customer id is forwarded to where the journey went
(chains of any length, in any order), so a message that was on its way while the journey
moved on still lands in the one journey the replay of the same input has.

Forgotten people stay forgotten: a touchpoint carrying an identifier whose suppression digest
the identity store keeps is dropped before resolution, and anything reaching a customer id a
forgotten journey left its marker at is dropped there (both counted as `suppressed`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

from events.vocabulary import Touchpoint
from schemas.journey import JourneyRecord
from schemas.signals import PersonForgottenSignal
from streams.journey import record as records
from streams.journey.forget import forget_identity, suppression_digest
from streams.journey.identity import (
    LEDGER_CUSTOMER,
    quarantine_alert,
    resolve,
    unmerge_identity,
)
from streams.workflow.messages import (
    MAX_HOPS,
    Absorb,
    Forget,
    ForgetRequest,
    Forwardable,
    JourneyMessage,
    Move,
    Reclaim,
    Reevaluate,
    Split,
    SplitOff,
    Tick,
    TouchpointArrived,
    UnmergeRequest,
)
from streams.workflow.ports import ForgottenJourney, MovedJourney
from streams.workflow.unit import Command, IdentityUnit, JourneyUnit

T = TypeVar("T")


class Undeliverable(ValueError):
    """A message that followed moved-journey pointers `MAX_HOPS` times without arriving."""


# --- the identity sequencer --------------------------------------------------------------


def touchpoint_accepted(touchpoint: Touchpoint, unit: IdentityUnit) -> None:
    """Resolve a touchpoint's identifiers to one customer id; move journeys that merge.

    A touchpoint of a forgotten person (any identifier suppressed) is dropped and counted."""
    if touchpoint.identity is None:
        # Spend and cost about no person: the ledger journey carries their aggregates.
        unit.send(LEDGER_CUSTOMER, TouchpointArrived(touchpoint=touchpoint))
        return
    identifiers = touchpoint.identity.identifiers()
    if any(unit.identities.is_suppressed(suppression_digest(i)) for i in identifiers):
        unit.counters.suppressed += 1
        return
    decision = resolve(unit.identities, identifiers, unit.guards, touchpoint.event_id)
    unit.identities.apply(decision)
    unit.counters.refused += decision.refused
    for identifier in decision.quarantined:
        alert = quarantine_alert(
            unit.identities, identifier, decision, unit.guards, touchpoint.event_id,
            touchpoint.occurred_at,
        )  # fmt: skip
        unit.emit(alert.customer_id, [alert])
    for move in decision.moves:
        unit.send(
            move.from_customer,
            Move(to=move.to_customer, cause_event_id=move.cause_event_id,
                 at=touchpoint.occurred_at),
        )  # fmt: skip
    unit.send(decision.customer_id, TouchpointArrived(touchpoint=touchpoint))


def unmerge_requested(request: UnmergeRequest, unit: IdentityUnit) -> None:
    """Split identifiers off their customer for good, then split the journey."""
    # The customer the identifiers belong to now (it may have moved since the request).
    current = unit.identities.get(request.identifiers[0]) if request.identifiers else None
    decision = unmerge_identity(
        unit.identities, current or request.customer_id, request.identifiers
    )
    unit.identities.apply(decision.identity)
    for side in sorted({decision.remaining_customer_id, decision.split_customer_id}):
        if side != decision.customer_id:
            # Ahead of any later touchpoint of that side: the pointer it left when the wrong
            # merge moved it must not forward them back into the journey being split.
            unit.send(side, Reclaim())
    unit.send(
        decision.customer_id,
        Split(
            identifiers=list(decision.split),
            remaining_customer_id=decision.remaining_customer_id,
            split_customer_id=decision.split_customer_id,
            cause_id=request.request_id,
            at=request.requested_at,
        ),
    )


def forget_requested(request: ForgetRequest, unit: IdentityUnit) -> None:
    """Forget a person for good: unlink every identifier, keep their suppression digests,
    erase every journey and pointer of theirs, and emit the audit alert."""
    erasure = forget_identity(unit.identities, request.identifiers, request.customer_id)
    unit.identities.erase(erasure, request.request_id)
    for customer_id in erasure.customer_ids:
        unit.send(
            customer_id,
            Forget(identifiers=list(erasure.identifiers), request_id=request.request_id,
                   at=request.requested_at),
        )  # fmt: skip
    about = erasure.customer_ids[0] if erasure.customer_ids else ""
    key = f"{about}|person_forgotten|{request.request_id}"
    audit = PersonForgottenSignal(
        signal_id="sig_" + hashlib.sha256(key.encode()).hexdigest()[:20],
        customer_id=about,
        identities=[],
        occurred_at=request.requested_at,
        playbook_version=unit.playbook_version,
        request_id=request.request_id,
        requested_by=request.requested_by,
        reference_sha256=request.reference_sha256,
        erased_customer_ids=list(erasure.customer_ids),
        identifiers_erased=len(erasure.identifiers),
        known=erasure.customer_id is not None,
    )
    unit.emit(about, [audit])


# --- the journeys ------------------------------------------------------------------------


class _Forwarded:
    """The message went on to where the journey moved, or was dropped (a forgotten one)."""


FORWARDED = _Forwarded()


def _arrived(
    customer_id: str, message: Forwardable, unit: JourneyUnit
) -> JourneyRecord | _Forwarded | None:
    """The journey a message is for (None: none yet), or FORWARDED to where it moved (or
    dropped: its person was forgotten)."""
    stored = unit.current(customer_id)
    if isinstance(stored, ForgottenJourney):
        unit.counters.suppressed += isinstance(message, TouchpointArrived)
        return FORWARDED
    if isinstance(stored, MovedJourney):
        if message.hops >= MAX_HOPS:
            raise Undeliverable(
                f"{message.kind} for {customer_id} followed {MAX_HOPS} moved-journey pointers"
            )
        unit.send(stored.moved_to, message.model_copy(update={"hops": message.hops + 1}))
        return FORWARDED
    return stored


Arrival = Literal["applied", "duplicate", "forwarded", "suppressed"]
"""What became of a touchpoint that reached the journeys hop."""


def touchpoint_arrived(customer_id: str, message: TouchpointArrived, unit: JourneyUnit) -> None:
    """Add a touchpoint to its customer's journey."""
    touchpoints_arrived(customer_id, [message], unit)


def touchpoints_arrived(
    customer_id: str, messages: Sequence[TouchpointArrived], unit: JourneyUnit
) -> list[Arrival]:
    """Add touchpoints to their customer's journey together (consecutive messages of one
    batch for one customer): folded once and reconciled once, as of the last
    (`records.apply_touchpoints`). What became of each, in order."""
    found = _arrived(customer_id, messages[0], unit)
    if isinstance(found, _Forwarded):
        for message in messages[1:]:
            _arrived(customer_id, message, unit)
        gone = isinstance(unit.load(customer_id), ForgottenJourney)
        return ["suppressed" if gone else "forwarded"] * len(messages)
    journey = found or unit.new_journey(customer_id)
    done = records.apply_touchpoints(journey, [m.touchpoint for m in messages], unit.playbook)
    # A repeat (redelivery after a crash) leaves no trace: no write, no new version. Any
    # change bumps the version, so an unchanged version means nothing changed.
    if found is None or done.record.version != journey.version:
        unit.save(customer_id, done.record)
    unit.emit(customer_id, done.signals)
    unit.counters.applied += sum(done.applied)
    unit.counters.duplicates += sum(done.duplicate)
    return ["duplicate" if repeat else "applied" for repeat in done.duplicate]


def journey_moved(customer_id: str, message: Move, unit: JourneyUnit) -> None:
    """Send this journey to the customer it merged into, and leave a pointer behind."""
    stored = unit.current(customer_id)
    if isinstance(stored, ForgottenJourney):
        return  # nothing of the person is left to move
    if isinstance(stored, MovedJourney):
        if stored.moved_to != message.to:
            unit.save(customer_id, stored.model_copy(update={"moved_to": message.to}))
        return  # a redelivered move: the journey left already
    version = unit.new_journey(customer_id).version + 1
    if stored is not None:
        unit.send(
            message.to,
            Absorb(record=stored, cause_event_id=message.cause_event_id, at=message.at),
        )
        records.moved_away(stored)
        unit.counters.moves += 1
        version = stored.version + 1
    # Even with nothing here yet: an absorb still on its way to this id must follow.
    unit.save(customer_id, MovedJourney(moved_to=message.to, version=version))


def journey_absorbed(customer_id: str, message: Absorb, unit: JourneyUnit) -> None:
    """Merge a moved journey into this one; split off again what an unmerge separated."""
    found = _arrived(customer_id, message, unit)
    if isinstance(found, _Forwarded):
        return
    journey = found or unit.new_journey(customer_id)
    outcome = records.absorb(
        journey, message.record, unit.playbook, message.cause_event_id, message.at
    )
    if outcome.duplicate:
        return
    unit.save(customer_id, outcome.record)
    unit.emit(customer_id, outcome.signals)
    # A merge that was in flight during an unmerge: split it off again.
    again = records.resplit(outcome.record, unit.playbook)
    if again is not None:
        _carry_out_split(customer_id, again, unit)


def journey_split(customer_id: str, message: Split, unit: JourneyUnit) -> None:
    """Undo a wrong merge: keep this id's side, send the other side to its own id."""
    found = _arrived(customer_id, message, unit)
    if found is None or isinstance(found, _Forwarded):
        return  # nothing here to split, or forwarded
    result = records.split(
        found, message.identifiers, unit.playbook, message.cause_id, message.at,
        remaining_customer_id=message.remaining_customer_id,
        split_customer_id=message.split_customer_id,
    )  # fmt: skip
    _carry_out_split(customer_id, result, unit)


def _carry_out_split(customer_id: str, result: records.Split, unit: JourneyUnit) -> None:
    unit.save(customer_id, result.kept.record)
    unit.emit(customer_id, result.kept.signals)
    moved = result.moved
    unit.send(moved.customer_id, SplitOff(record=moved, at=moved.unmerges[-1].at))


def split_off_arrived(customer_id: str, message: SplitOff, unit: JourneyUnit) -> None:
    """Take in the side an unmerge split off to this id (it may bring a moved id back)."""
    stored = unit.current(customer_id)
    if isinstance(stored, ForgottenJourney):
        return
    # The identity sequencer names this id again: a pointer left here gives way.
    journey = stored if isinstance(stored, JourneyRecord) else unit.new_journey(customer_id)
    outcome = records.receive_split(journey, message.record, unit.playbook, message.at)
    if outcome.applied:
        unit.save(customer_id, outcome.record)
        unit.emit(customer_id, outcome.signals)


def timers_ticked(customer_id: str, message: Tick, unit: JourneyUnit) -> None:
    """Emit the SLA and nurture timer signals due by `now`."""
    stored = unit.current(customer_id)
    if not isinstance(stored, JourneyRecord):
        return
    outcome = records.evaluate_timers(stored, message.now, unit.playbook)
    if outcome.signals or outcome.applied:
        unit.save(customer_id, outcome.record)
        unit.emit(customer_id, outcome.signals)
    else:
        unit.recheck_timers(customer_id)


def id_reclaimed(customer_id: str, message: Reclaim, unit: JourneyUnit) -> None:
    """An unmerge gives this customer id back: its moved-journey pointer stops forwarding."""
    stored = unit.current(customer_id)
    if isinstance(stored, MovedJourney):
        unit.save(customer_id, stored.model_copy(update={"reclaimed": True}))


def journey_forgotten(customer_id: str, message: Forget, unit: JourneyUnit) -> None:
    """Erase whatever this customer id holds — journey, pointer or nothing yet — and leave the
    marker that drops anything still on its way here."""
    stored = unit.load(customer_id)
    if isinstance(stored, ForgottenJourney):
        return  # a redelivered forget
    identifiers = list(message.identifiers)
    if isinstance(stored, JourneyRecord):
        identifiers += [i for i in stored.identifiers if i not in identifiers]
        unit.counters.forgotten += 1
    version = 0 if stored is None else stored.version + 1
    marker = ForgottenJourney(version=version, request_id=message.request_id)
    unit.forget(customer_id, marker, identifiers)


def reevaluated(customer_id: str, message: Reevaluate, unit: JourneyUnit) -> None:
    """A changed playbook: `JourneyUnit.current` re-derives the journey on load."""
    unit.current(customer_id)


JourneyHandler = Callable[[str, Any, JourneyUnit], None]

JOURNEY_HANDLERS: dict[type[Any], JourneyHandler] = {
    TouchpointArrived: touchpoint_arrived,
    Move: journey_moved,
    Absorb: journey_absorbed,
    Split: journey_split,
    SplitOff: split_off_arrived,
    Tick: timers_ticked,
    Reevaluate: reevaluated,
    Reclaim: id_reclaimed,
    Forget: journey_forgotten,
}
"""Which handler carries out which journeys-hop message."""


def handle_journey_message(customer_id: str, message: JourneyMessage, unit: JourneyUnit) -> None:
    """Dispatch one journeys-hop message to its handler."""
    JOURNEY_HANDLERS[type(message)](customer_id, message, unit)


def handle_journey_batch(commands: Sequence[Command], unit: JourneyUnit) -> None:
    """Carry out a batch of journeys-hop messages, a customer's consecutive touchpoints
    together (`journey_runs`): `tandem replay --batch`. The worker carries out its batches one
    message at a time, so that the signals it sends are exactly those of the replay of the same
    order, however its batches fall (docs/operations.md, "Batches")."""
    for run in journey_runs(commands, lambda c: (c.customer_id, c.message)):
        customer_id = run[0].customer_id
        if len(run) > 1:
            arrivals = [c.message for c in run if isinstance(c.message, TouchpointArrived)]
            touchpoints_arrived(customer_id, arrivals, unit)
        else:
            handle_journey_message(customer_id, run[0].message, unit)


def journey_runs(
    items: Iterable[T], addressed: Callable[[T], tuple[str, JourneyMessage]]
) -> list[list[T]]:
    """A batch of journeys-hop messages as runs to carry out, one after the other: grouped by
    customer (customers in order of first appearance, each one's messages in the order given),
    a customer's consecutive touchpoints together in one run (`touchpoints_arrived`), any
    other message alone. `addressed` gives an item's customer id and message.

    Customers are independent within a batch (a handler reads and writes only its own
    customer's journey; what it sends to others arrives in a later batch), so only each
    customer's order matters — the partition's order, kept."""
    by_customer: dict[str, list[list[T]]] = {}
    for item in items:
        customer_id, message = addressed(item)
        runs = by_customer.setdefault(customer_id, [])
        if (
            isinstance(message, TouchpointArrived)
            and runs
            and isinstance(addressed(runs[-1][-1])[1], TouchpointArrived)
        ):
            runs[-1].append(item)
        else:
            runs.append([item])
    return [run for runs in by_customer.values() for run in runs]
