"""Small builders for journey unit tests: touchpoints by type, times relative to T0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.vocabulary import Touchpoint, parse_touchpoint
from schemas.playbook import Playbook
from streams import journey as core

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def handoff_id(email: str, cycle: int = 0) -> str:
    """The id of a person's hand-off in a cycle, as sales names it when answering."""
    return core.signal_id(core.customer_id_for(f"email:{email}"), "handoff", str(cycle))


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """T0 plus an offset."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def tp(
    type_: str,
    event_id: str,
    when: datetime,
    *,
    email: str | None = None,
    anon: str | None = None,
    contact: str | None = None,
    props: dict[str, Any] | None = None,
    source: str = "test",
    version: int | None = None,
    **context: str,
) -> Touchpoint:
    """A validated touchpoint; identity None when no identifier is given (ledger types)."""
    document: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": when.isoformat(),
        "source": source,
        "properties": props or {},
    }
    identity = {
        k: v for k, v in (("email", email), ("anonymous_id", anon), ("contact_id", contact)) if v
    }
    if identity:
        document["identity"] = identity
    if context:
        document["context"] = context
    if version is not None:
        document["schema_version"] = version
    return parse_touchpoint(document)


FIT_FORM = {
    "form_id": "demo-request",
    "job_title": "VP Marketing",
    "company": "Lovelace Analytics",
    "company_size": 250,
    "industry": "software",
    "pain_points": ["attribution"],
}
"""A form a marketing-leader persona submits: fit 85 under the default playbook."""

POOR_FORM = {"form_id": "ebook", "job_title": "Student", "company_size": 1,
             "industry": "education"}  # fmt: skip


def apply_all(
    touchpoints: list[Touchpoint],
    playbook: Playbook,
    customer_id: str = "cus_test",
    **kwargs: Any,
) -> tuple[core.JourneyRecord, list[core.Signal]]:
    """Apply touchpoints one by one to a new journey: the record and every signal emitted."""
    record = core.new_journey(customer_id)
    emitted: list[core.Signal] = []
    for touchpoint in touchpoints:
        outcome = core.apply_touchpoint(record, touchpoint, playbook, **kwargs)
        record = outcome.record
        emitted += outcome.signals
    return record, emitted


def stages(record: core.JourneyRecord, playbook: Playbook) -> list[str]:
    """The stage history as a list of stage names."""
    return [change.stage.value for change in core.view(record, playbook).stage_history]
