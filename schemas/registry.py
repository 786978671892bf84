"""The registry of JSON Schema documents Tandem publishes in ``schemas/json/``.

Each entry pairs a document name with a pydantic model or `TypeAdapter`; `schemas.generate`
turns every entry into ``schemas/json/<name>.schema.json`` and a test fails when the checked-in
files drift from the models.

To publish a new document, register it at the bottom of this module::

    register("journey_snapshot", JourneySnapshot, description="…")

then run ``python -m schemas.generate`` (or ``tandem schemas generate``) and commit the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from events.topics import topic_for
from events.upcast import supported_versions
from events.vocabulary import TOUCHPOINT, TYPE_NAMES, VERSIONED_TYPES
from schemas.deadletter import DeadLetter
from schemas.kpis import KpiReport

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:tandem:schema:"
"""Documents are identified as ``urn:tandem:schema:<name>`` (names, not fetchable URLs)."""

SchemaTarget = type[BaseModel] | TypeAdapter[Any]


@dataclass(frozen=True)
class SchemaDocument:
    """One published JSON Schema document."""

    name: str
    """e.g. ``touchpoint.marketing.page_viewed``; the file is ``<name>.schema.json``."""
    target: SchemaTarget
    title: str
    description: str

    @property
    def filename(self) -> str:
        """The file name in ``schemas/json/``."""
        return f"{self.name}.schema.json"

    @property
    def id(self) -> str:
        """The document's ``$id``."""
        return f"{ID_BASE}{self.name}"

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (Draft 2020-12) of what the model *accepts* (validation mode)."""
        if isinstance(self.target, TypeAdapter):
            schema = self.target.json_schema(mode="validation")
        else:
            schema = self.target.model_json_schema(mode="validation")
        return {
            **schema,
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": self.id,
            "title": self.title,
            "description": self.description,
        }


DOCUMENTS: list[SchemaDocument] = []
"""Every registered document, in registration order."""


def register(
    name: str,
    target: SchemaTarget,
    *,
    title: str | None = None,
    description: str | None = None,
) -> SchemaDocument:
    """Add a document to the registry (names are unique) and return it."""
    if any(document.name == name for document in DOCUMENTS):
        raise ValueError(f"a schema document named {name!r} is already registered")
    if not name or "/" in name or name.endswith(".json"):
        raise ValueError(f"bad document name {name!r}: use e.g. 'journey_snapshot'")
    if title is None:
        title = target.__name__ if isinstance(target, type) else name
    if description is None:
        doc = target.__doc__ if isinstance(target, type) else None
        description = (doc or name).strip()
    document = SchemaDocument(name, target, title, description)
    DOCUMENTS.append(document)
    return document


def get(name: str) -> SchemaDocument:
    """A registered document by name."""
    for document in DOCUMENTS:
        if document.name == name:
            return document
    known = ", ".join(d.name for d in DOCUMENTS)
    raise KeyError(f"no schema document {name!r}; registered: {known}")


TOUCHPOINT_DESCRIPTIONS: dict[str, str] = {
    "marketing.page_viewed": "A person viewed a web page.",
    "marketing.form_viewed": "A person saw a form (without submitting it yet).",
    "marketing.form_submitted": "A person submitted a form; may carry firmographics.",
    "marketing.email_opened": "A marketing email was opened.",
    "marketing.email_clicked": "A link in a marketing email was clicked.",
    "marketing.content_downloaded": "A piece of gated content was downloaded.",
    "marketing.webinar_attended": "A person attended a webinar.",
    "marketing.ad_clicked": "A person clicked an ad.",
    "marketing.social_engaged": "A person engaged with a social post (like, comment, share).",
    "marketing.event_attended": "A person attended an event (fair, conference, meetup).",
    "marketing.unsubscribed": "A person unsubscribed from marketing email.",
    "marketing.identified": "A tool identified a person (e.g. a Segment identify call): it "
    "links the identifiers it carries and may carry firmographics; no engagement points.",
    "marketing.spend_recorded": "Campaign spend for a period (a ledger record, no person).",
    "sales.prospect_added": "Sales added a prospect (outbound); may carry firmographics.",
    "sales.outreach_sent": "A sales rep reached out by email, call or social.",
    "sales.reply_received": "The prospect replied to outreach.",
    "sales.meeting_booked": "A meeting with the prospect was booked.",
    "sales.lead_qualified": "Sales qualified the lead (BANT answers, each may be unknown).",
    "sales.lead_disqualified": "Sales disqualified the lead, with a reason.",
    "sales.handoff_accepted": "Sales accepted a hand-off signal from Tandem.",
    "sales.handoff_rejected": "Sales rejected a hand-off signal, with a reason.",
    "sales.demo_held": "A product demo took place.",
    "sales.objection_raised": "The prospect raised an objection (price, timing, …).",
    "sales.proposal_sent": "A proposal with an amount was sent.",
    "sales.deal_won": "The deal was won.",
    "sales.deal_lost": "The deal was lost, with a reason.",
    "sales.feedback_recorded": "Customer feedback: NPS, pain points, motivations.",
    "sales.renewed": "The customer renewed.",
    "sales.churned": "The customer churned, with a reason.",
    "sales.cost_recorded": "Sales cost for a period (a ledger record, no person).",
}
"""One line on what each touchpoint type means (used in the schema documents and docs)."""


def _register_touchpoints() -> None:
    for type_name, model in TYPE_NAMES.items():
        versions = supported_versions(type_name)
        # A type with several versions is the union of them all (`oneOf`, told apart by
        # `schema_version`): a validator accepts exactly what the decoder accepts.
        target: SchemaTarget = VERSIONED_TYPES.get(type_name, model)
        said = " or ".join(str(v) for v in versions)
        register(
            f"touchpoint.{type_name}",
            target,
            title=type_name,
            description=f"{TOUCHPOINT_DESCRIPTIONS[type_name]} Tandem touchpoint "
            f"`{type_name}` (schema_version {said}), published to `{topic_for(type_name)}`.",
        )
    register(
        "touchpoint",
        TOUCHPOINT,
        title="Touchpoint",
        description="Any Tandem touchpoint: the envelope plus the properties of its `type` "
        "(told apart by `type` and `schema_version`; `sales.lead_qualified` has versions 1 "
        "and 2). Marketing types go to `touchpoints.marketing`, sales types "
        "to `touchpoints.sales`; each message is at most 256 KiB of UTF-8 JSON.",
    )


# --- the registry ----------------------------------------------------------------------
# Add new documents here (one `register` call each), then run `python -m schemas.generate`.

_register_touchpoints()
register(
    "dead_letter",
    DeadLetter,
    title="Dead letter",
    description="A rejected input on `touchpoints.deadletter`, keyed by `dead_letter_id`: the "
    "reason code and message, the origin (topic, partition, offset, key) and the exact "
    "original bytes.",
)
register(
    "kpi_report",
    KpiReport,
    title="KPI report",
    description="Tandem's shared KPIs for an event-time window (`tandem kpis --json`, "
    "`GET /v1/kpis`, the dashboard snapshot in Redis): funnel counts and conversion, sales "
    "cycle, win rate, revenue, cost per lead, CAC, CLV, churn, NPS, form conversion, ROI, "
    "hand-off SLA, attribution (first-touch, last-touch, linear, U-shaped) and customer "
    "feedback insight. Definitions: docs/kpis.md.",
)


def _register_journey_documents() -> None:
    # Imported here so the registry's own imports stay minimal.
    from schemas.journey import JourneySnapshot
    from schemas.playbook import Playbook
    from schemas.signals import SIGNAL, SIGNAL_MODELS

    register(
        "journey_snapshot",
        JourneySnapshot,
        title="Journey snapshot",
        description="One customer's journey as Tandem publishes it (Redis, the compacted "
        "`journeys.state` topic keyed by customer id, `tandem journey --json`): stage and stage "
        "history, engagement and fit scores with breakdowns, firmographics, objections, "
        "campaigns and messages seen, recent touchpoints, merges, the signal ledger, counts. "
        "`version` grows with every change. Definitions: docs/journey.md.",
    )
    for model in SIGNAL_MODELS:
        signal_type = model.model_fields["signal_type"].default
        summary = " ".join((model.__doc__ or "").split())
        register(
            f"signal.{signal_type}",
            model,
            title=f"Signal: {signal_type}",
            description=f"{summary} Published to `{model.TOPIC}`, keyed "
            "by customer id; consumers keep the highest `version` per `signal_id`.",
        )
    register(
        "signal",
        SIGNAL,
        title="Signal",
        description="Any Tandem signal (discriminated on `signal_type`): hand-offs and "
        "revocations on `signals.handoff`, nurture on `signals.nurture`, hand-off SLA alerts on "
        "`signals.alerts`.",
    )
    register(
        "playbook",
        Playbook,
        title="Playbook",
        description="The YAML playbook (personas, scoring, MQL rule, stage rules, hand-off "
        "SLA, nurture tracks, content catalogue, identity guards) that turns touchpoints into "
        "stages, scores and signals. The bundled default is streams/defaults/playbook.yaml.",
    )


_register_journey_documents()
