"""Offline replay: identity resolution and journeys in memory, the way the worker does it.

Used by `tandem replay` and by the integration tests to compute the expected outcome of a
stream of touchpoints. Touchpoints are processed in the order given, exactly like the two
serial agents would: resolve the identifiers (applying the store writes), carry out the moves
(absorb the moved journey into its new customer id, drop the old one), then apply the
touchpoint to its journey.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from events.vocabulary import Touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from schemas.signals import Signal
from streams.journey.identity import (
    LEDGER_CUSTOMER,
    IdentityGuards,
    InMemoryIdentityStore,
    resolve,
)
from streams.journey.record import (
    MAX_RETAINED_TOUCHPOINTS,
    absorb,
    apply_touchpoint,
    evaluate_timers,
    new_journey,
)


@dataclass
class ReplayResult:
    """Journeys by customer id, every signal emitted (in order), and what happened."""

    records: dict[str, JourneyRecord] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    moves: int = 0
    refused: list[str] = field(default_factory=list)
    store: InMemoryIdentityStore = field(default_factory=InMemoryIdentityStore)


def replay(
    touchpoints: Iterable[Touchpoint],
    playbook: Playbook,
    *,
    now: datetime | None = None,
    max_retained: int = MAX_RETAINED_TOUCHPOINTS,
) -> ReplayResult:
    """Run touchpoints through identity resolution and the journeys, in the order given.

    With `now`, timers are evaluated once for every journey at the end (SLA alerts, stalled
    and customer nurture due by then).
    """
    result = ReplayResult()
    guards = IdentityGuards.from_playbook(playbook)
    records = result.records
    for tp in touchpoints:
        if tp.identity is None:
            customer_id = LEDGER_CUSTOMER
        else:
            decision = resolve(result.store, tp.identity.identifiers(), guards, tp.event_id)
            result.store.apply(decision)
            result.refused += decision.refused
            for move in decision.moves:
                moved = records.pop(move.from_customer, None)
                if moved is None:
                    continue
                result.moves += 1
                target = records.get(move.to_customer) or new_journey(move.to_customer)
                outcome = absorb(
                    target, moved, playbook, move.cause_event_id, tp.occurred_at,
                    max_retained=max_retained,
                )  # fmt: skip
                records[move.to_customer] = outcome.record
                result.signals += outcome.signals
            customer_id = decision.customer_id
        record = records.get(customer_id) or new_journey(customer_id)
        outcome = apply_touchpoint(record, tp, playbook, max_retained=max_retained)
        records[customer_id] = outcome.record
        result.signals += outcome.signals
        result.applied += outcome.applied
        result.duplicates += outcome.duplicate
    if now is not None:
        for customer_id in sorted(records):
            outcome = evaluate_timers(records[customer_id], now, playbook)
            records[customer_id] = outcome.record
            result.signals += outcome.signals
    return result
