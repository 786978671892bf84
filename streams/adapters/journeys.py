"""What a journeys batch leaves behind: each changed journey, computed once, written once.

Everything a write needs — table bytes, snapshot, KPI facts, next timer — is computed for every
changed journey before anything is written, so a journey is never half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from streams import journey as core
from streams.journey import kpis
from streams.projection import ErasedJourney, LiveJourney, MovedPointer
from streams.workflow.codec import JourneyEntries, journey_entries
from streams.workflow.ports import ForgottenJourney, MovedJourney, StoredJourney
from streams.workflow.unit import Emitted, JourneyUnit, Outgoing


@dataclass(frozen=True)
class JourneyWrite:
    """One changed journey (or pointer), ready to write everywhere."""

    customer_id: str
    stored: StoredJourney
    snapshot_json: str | None = None
    stage: str | None = None
    identities: tuple[str, ...] = ()
    facts_json: str | None = None
    account: str | None = None
    entries: JourneyEntries | None = None
    """Its table entries (`streams.workflow.codec`), encoded with the rest of the batch."""

    @property
    def state_value(self) -> bytes | None:
        """Its `journeys.state` message: the snapshot, or a tombstone for a moved or a
        forgotten journey."""
        return None if self.snapshot_json is None else self.snapshot_json.encode()


def prepare(customer_id: str, stored: StoredJourney, playbook: Playbook) -> JourneyWrite:
    """Derive what the read model and `journeys.state` show of a changed journey."""
    if isinstance(stored, MovedJourney | ForgottenJourney):
        return JourneyWrite(customer_id, stored)
    snapshot, snapshot_json = core.snapshot_json(stored, playbook)
    facts = kpis.journey_facts_json(stored, playbook)
    return JourneyWrite(
        customer_id,
        stored,
        snapshot_json,
        snapshot.stage.value,
        tuple(snapshot.identities),
        facts,
        snapshot.account_id,
    )


def check_writable(customer_id: str, stored: StoredJourney | None, playbook: Playbook) -> None:
    """Raise if this journey's write or next timer can't be computed (checked per message for
    a customer whose batch failed, to find the message that breaks it)."""
    if stored is not None:
        prepare(customer_id, stored, playbook)
        journey_entries(stored)  # within the cap
        next_due(stored if isinstance(stored, JourneyRecord) else None, playbook)


@dataclass
class PreparedBatch:
    """A journeys batch with everything computed: nothing of it written yet."""

    writes: list[JourneyWrite]
    outgoing: list[Outgoing]
    due: list[tuple[str, datetime | None]]
    failed: dict[str, Exception]
    """Customers whose write or timer could not be computed: not written, their signals
    held back."""


def prepare_batch(unit: JourneyUnit, playbook: Playbook) -> PreparedBatch:
    """Compute every changed journey's write and every timer to recompute (the unit's flush)."""
    changes, outgoing = unit.flush()
    failed: dict[str, Exception] = {}
    writes: list[JourneyWrite] = []
    for customer_id, stored in changes:
        try:
            write = prepare(customer_id, stored, playbook)
            writes.append(replace(write, entries=journey_entries(stored)))
        except Exception as exc:
            failed[customer_id] = exc
    due: list[tuple[str, datetime | None]] = []
    for customer_id, record in unit.take_timers_due():
        try:
            due.append((customer_id, next_due(record, playbook)))
        except Exception as exc:
            failed.setdefault(customer_id, exc)
    if failed:
        writes = [w for w in writes if w.customer_id not in failed]
        due = [(c, when) for c, when in due if c not in failed]
        outgoing = [o for o in outgoing if not (isinstance(o, Emitted) and o.customer_id in failed)]
    return PreparedBatch(writes, outgoing, due, failed)


def next_due(record: JourneyRecord | None, playbook: Playbook) -> datetime | None:
    """When the journey's next timer is due (None: no journey, or no timer)."""
    return None if record is None else core.next_timer_due(record, playbook)


def read_model_batch(writes: list[JourneyWrite]) -> tuple[list[LiveJourney], list[MovedPointer]]:
    """The batch for `JourneyProjection.publish_many`: live journeys and moved ones."""
    live: list[LiveJourney] = []
    moved: list[MovedPointer] = []
    for write in writes:
        stored = write.stored
        if isinstance(stored, MovedJourney):
            if not stored.reclaimed:
                moved.append(MovedPointer(write.customer_id, stored.moved_to, stored.version))
        elif write.snapshot_json is not None and write.stage is not None:
            live.append(
                LiveJourney(
                    write.customer_id, stored.version, write.snapshot_json, write.stage,
                    write.identities, write.facts_json, write.account,
                )
            )  # fmt: skip
    return live, moved


def erased_batch(
    writes: list[JourneyWrite], unlinked: dict[str, tuple[str, ...]]
) -> list[ErasedJourney]:
    """The forgotten journeys of a batch, for `JourneyProjection.publish_many`."""
    return [
        ErasedJourney(w.customer_id, w.stored.version, w.stored.request_id,
                      unlinked.get(w.customer_id, ()))
        for w in writes
        if isinstance(w.stored, ForgottenJourney)
    ]  # fmt: skip
