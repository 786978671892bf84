"""One valid and at least one invalid example document for every touchpoint type.

The examples are plain JSON-compatible dicts, exactly what a publishing tool would send. They
are the contract's living documentation: the tests check every valid example against the
pydantic model *and* the checked-in JSON Schema, and every invalid one against
`decode_touchpoint` with its expected `ReasonCode`; the demo and the docs reuse them.

    >>> from events.examples import VALID_EXAMPLES, example_json
    >>> VALID_EXAMPLES["sales.deal_won"]["properties"]["currency"]
    'EUR'
    >>> example_json("marketing.page_viewed")[:14]
    b'{"event_id": "'
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.decode import ReasonCode
from events.envelope import Domain

Document = dict[str, Any]

OCCURRED_AT = "2025-03-04T09:15:00+01:00"
RECEIVED_AT = datetime(2025, 3, 4, 9, 20, tzinfo=UTC)
"""When the examples count as received (the decoder's `now`)."""

_ANON = {"anonymous_id": "anon-7f3a9c"}
_LEAD = {"anonymous_id": "anon-7f3a9c", "email": "Ada@Lovelace-Analytics.example"}
_CONTACT = {
    "contact_id": "crm-0042",
    "email": "ada@lovelace-analytics.example",
    "account_id": "acct-lovelace",
}
_PAID = {
    "campaign_id": "q2-analytics-webinar",
    "channel": "paid_search",
    "message_id": "cut-reporting-time-in-half",
}
_NURTURE = {"campaign_id": "nurture-analytics", "channel": "email", "content_id": "roi-guide"}
_OUTBOUND = {"campaign_id": "outbound-fintech-q2", "channel": "outbound"}


def _doc(
    type_name: str,
    properties: Document | None,
    *,
    identity: Document | None,
    source: str,
    context: Document | None = None,
) -> Document:
    document: Document = {
        "event_id": f"example-{type_name.replace('.', '-').replace('_', '-')}-1",
        "type": type_name,
        "occurred_at": OCCURRED_AT,
        "source": source,
    }
    if identity is not None:
        document["identity"] = dict(identity)
    if context is not None:
        document["context"] = dict(context)
    if properties is not None:
        document["properties"] = properties
    return document


VALID_EXAMPLES: dict[str, Document] = {
    # --- inbound marketing ---------------------------------------------------------------
    "marketing.page_viewed": _doc(
        "marketing.page_viewed",
        {
            "url": "https://tandem.example/pricing",
            "title": "Pricing",
            "referrer": "https://www.google.com/",
        },
        identity=_ANON,
        source="website",
        context=_PAID,
    ),
    "marketing.form_viewed": _doc(
        "marketing.form_viewed",
        {"form_id": "webinar-signup"},
        identity=_ANON,
        source="website",
        context=_PAID,
    ),
    "marketing.form_submitted": _doc(
        "marketing.form_submitted",
        {
            "form_id": "webinar-signup",
            "job_title": "VP Marketing",
            "company": "Lovelace Analytics",
            "company_size": 250,
            "industry": "software",
            "pain_points": ["attribution", "reporting"],
        },
        identity=_LEAD,
        source="website",
        context=_PAID,
    ),
    "marketing.email_opened": _doc(
        "marketing.email_opened",
        {"email_id": "nurture-3"},
        identity={"email": "ada@lovelace-analytics.example"},
        source="hubspot",
        context=_NURTURE,
    ),
    "marketing.email_clicked": _doc(
        "marketing.email_clicked",
        {"email_id": "nurture-3", "url": "https://tandem.example/roi-guide"},
        identity={"email": "ada@lovelace-analytics.example"},
        source="hubspot",
        context=_NURTURE,
    ),
    "marketing.content_downloaded": _doc(
        "marketing.content_downloaded",
        {"content_id": "roi-guide"},
        identity=_LEAD,
        source="website",
        context=_NURTURE,
    ),
    "marketing.webinar_attended": _doc(
        "marketing.webinar_attended",
        {"webinar_id": "q2-analytics-webinar", "minutes": 42},
        identity={"email": "ada@lovelace-analytics.example"},
        source="zoom",
        context={"campaign_id": "q2-analytics-webinar", "channel": "event"},
    ),
    "marketing.ad_clicked": _doc(
        "marketing.ad_clicked",
        {"ad_id": "ad-17"},
        identity=_ANON,
        source="ads",
        context=_PAID,
    ),
    "marketing.social_engaged": _doc(
        "marketing.social_engaged",
        {"network": "linkedin", "action": "comment"},
        identity={"anonymous_id": "li-9911"},
        source="linkedin",
        context={"campaign_id": "thought-leadership", "channel": "social"},
    ),
    "marketing.event_attended": _doc(
        "marketing.event_attended",
        {"event_name": "Analytics Summit Berlin"},
        identity={"email": "ada@lovelace-analytics.example"},
        source="eventbrite",
        context={"campaign_id": "summit-berlin", "channel": "event"},
    ),
    "marketing.unsubscribed": _doc(
        "marketing.unsubscribed",
        {"list_id": "newsletter", "reason": "too many emails"},
        identity={"email": "grace@hopper-systems.example"},
        source="hubspot",
        context={"campaign_id": "newsletter", "channel": "email"},
    ),
    "marketing.identified": _doc(
        "marketing.identified",
        {"job_title": "VP Marketing", "company": "Lovelace Analytics", "company_size": 250},
        identity={
            "anonymous_id": "anon-7f3a9c",
            "contact_id": "user-0042",
            "email": "ada@lovelace-analytics.example",
        },
        source="website",
    ),
    "marketing.spend_recorded": _doc(
        "marketing.spend_recorded",
        {
            "campaign_id": "q2-analytics-webinar",
            "channel": "paid_search",
            "amount": "1250.00",
            "currency": "EUR",
            "period": "2025-03",
        },
        identity=None,
        source="google-ads",
    ),
    # --- outbound sales ------------------------------------------------------------------
    "sales.prospect_added": _doc(
        "sales.prospect_added",
        {
            "owner_id": "rep-17",
            "job_title": "CFO",
            "company": "Hopper Systems",
            "company_size": 1200,
            "industry": "fintech",
        },
        identity={"contact_id": "crm-0077", "account_id": "acct-hopper"},
        source="salesforce",
        context=_OUTBOUND,
    ),
    "sales.outreach_sent": _doc(
        "sales.outreach_sent",
        {"channel": "email", "owner_id": "rep-17"},
        identity={"contact_id": "crm-0077", "email": "grace@hopper-systems.example"},
        source="outreach",
        context={**_OUTBOUND, "message_id": "cut-close-time"},
    ),
    "sales.reply_received": _doc(
        "sales.reply_received",
        {"sentiment": "positive"},
        identity={"contact_id": "crm-0077"},
        source="outreach",
        context=_OUTBOUND,
    ),
    "sales.meeting_booked": _doc(
        "sales.meeting_booked",
        {"scheduled_for": "2025-03-10T14:00:00+01:00"},
        identity={"contact_id": "crm-0077"},
        source="calendly",
    ),
    "sales.lead_qualified": {
        **_doc(
            "sales.lead_qualified",
            {
                "bant": {"budget": "yes", "authority": "yes", "need": "yes", "timeline": "unknown"},
                "note": "budget approved for Q3",
            },
            identity=_CONTACT,
            source="salesforce",
        ),
        "schema_version": 2,
    },
    "sales.lead_disqualified": _doc(
        "sales.lead_disqualified",
        {"reason": "student project, no budget"},
        identity={"contact_id": "crm-0101"},
        source="salesforce",
    ),
    "sales.handoff_accepted": _doc(
        "sales.handoff_accepted",
        # The id of the hand-off Tandem sent for this person (cycle 0; see docs/journey.md).
        {"signal_id": "sig_997da22e965aaf3be3bd", "reason": "good fit, calling tomorrow"},
        identity=_CONTACT,
        source="salesforce",
    ),
    "sales.handoff_rejected": _doc(
        "sales.handoff_rejected",
        {"signal_id": "sig_440667ef667b62ea016d", "reason": "agency, not an end customer"},
        identity={"contact_id": "crm-0099"},
        source="salesforce",
    ),
    "sales.demo_held": _doc(
        "sales.demo_held",
        {"note": "loved the attribution view"},
        identity=_CONTACT,
        source="salesforce",
    ),
    "sales.objection_raised": _doc(
        "sales.objection_raised",
        {"category": "price", "note": "compares us with a cheaper point tool"},
        identity=_CONTACT,
        source="gong",
    ),
    "sales.proposal_sent": _doc(
        "sales.proposal_sent",
        {"amount": "48000", "currency": "EUR"},
        identity=_CONTACT,
        source="salesforce",
    ),
    "sales.deal_won": _doc(
        "sales.deal_won",
        {
            "amount": "45000.00",
            "currency": "EUR",
            "recurring": True,
            "gross_margin": 0.72,
            "owner_id": "rep-17",
        },
        identity=_CONTACT,
        source="salesforce",
    ),
    "sales.deal_lost": _doc(
        "sales.deal_lost",
        {"reason": "chose a competitor"},
        identity={"contact_id": "crm-0077"},
        source="salesforce",
    ),
    "sales.feedback_recorded": _doc(
        "sales.feedback_recorded",
        {
            "nps": 9,
            "pain_points": ["attribution"],
            "motivations": ["one journey for both teams"],
            "note": "wants a Slack integration",
        },
        identity=_CONTACT,
        source="delighted",
    ),
    "sales.renewed": _doc(
        "sales.renewed",
        {"amount": "47250.00", "currency": "EUR"},
        identity=_CONTACT,
        source="chargebee",
    ),
    "sales.churned": _doc(
        "sales.churned",
        {"reason": "company acquired, tooling consolidated"},
        identity={"contact_id": "crm-0055"},
        source="chargebee",
    ),
    "sales.cost_recorded": _doc(
        "sales.cost_recorded",
        {
            "amount": "8200.00",
            "currency": "EUR",
            "period": "2025-03",
            "campaign_id": "outbound-fintech-q2",
        },
        identity=None,
        source="finance",
    ),
}
"""A valid document for every type in the vocabulary, keyed by type name."""


@dataclass(frozen=True)
class InvalidExample:
    """A document that must be rejected, and how."""

    type: str
    """The type the example is a broken instance of (its ``type`` field may be broken too)."""
    description: str
    document: Document
    code: ReasonCode
    """The reason code `decode_touchpoint` must answer."""
    error: str
    """A fragment the rejection's errors (or message, when there are no errors) contain."""
    domain: Domain | None = None
    """The domain of the topic it arrives on (None: not checked)."""
    json_schema_rejects: bool = True
    """False when only Tandem can tell: the topic it arrived on (the schemas check the rest)."""

    def raw(self) -> bytes:
        """The document as UTF-8 JSON bytes, as it would travel."""
        return json.dumps(self.document).encode()


def _set(document: Document, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _drop(document: Document, path: str) -> None:
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target[part]
    del target[last]


EARLIER_VERSION_EXAMPLES: dict[tuple[str, int], Document] = {
    ("sales.lead_qualified", 1): _doc(
        "sales.lead_qualified",
        # Version 1: four booleans, each optional (here timeline was not asked: unknown).
        {"budget": True, "authority": True, "need": True, "note": "budget approved for Q3"},
        identity=_CONTACT,
        source="salesforce",
    ),
}
"""A valid example of every earlier schema version still accepted (and upcast on decoding);
the one above is the same event as the current-version example of its type."""


def _broken(
    type_name: str,
    description: str,
    code: ReasonCode,
    error: str,
    *,
    change: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    domain: Domain | None = None,
    json_schema_rejects: bool = True,
) -> InvalidExample:
    document = copy.deepcopy(VALID_EXAMPLES[type_name])
    document["event_id"] = document["event_id"].removesuffix("-1") + "-invalid"
    for path, value in (change or {}).items():
        _set(document, path, value)
    for path in drop:
        _drop(document, path)
    return InvalidExample(
        type_name, description, document, code, error, domain, json_schema_rejects
    )


_I = ReasonCode.INVALID

INVALID_EXAMPLES: tuple[InvalidExample, ...] = (
    # --- inbound marketing ---------------------------------------------------------------
    _broken("marketing.page_viewed", "the url is required", _I, "properties.url: Field required",
            drop=("properties.url",)),
    _broken("marketing.form_viewed", "form ids are not empty", _I, "properties.form_id",
            change={"properties.form_id": ""}),
    _broken("marketing.form_submitted", "a company has at least one employee", _I,
            "properties.company_size", change={"properties.company_size": 0}),
    _broken("marketing.email_opened", "the email must be an address", _I,
            "identity.email: not an email address", change={"identity.email": "ada at lovelace"}),
    _broken("marketing.email_clicked", "event time needs an offset", _I, "occurred_at",
            change={"occurred_at": "2025-03-04T09:15:00"}),
    _broken("marketing.content_downloaded", "unknown properties are rejected", _I,
            "properties.format: Extra inputs are not permitted",
            change={"properties.format": "pdf"}),
    _broken("marketing.webinar_attended", "minutes are not negative", _I, "properties.minutes",
            change={"properties.minutes": -5}),
    _broken("marketing.ad_clicked", "channels are lower_snake_case", _I, "context.channel",
            change={"context.channel": "Paid Search"}),
    _broken("marketing.social_engaged", "unknown top-level fields are rejected", _I,
            "campaign: Extra inputs are not permitted", change={"campaign": "thought-leadership"}),
    _broken("marketing.event_attended", "a person touchpoint needs an identity", _I,
            "identity: Field required", drop=("identity",)),
    _broken("marketing.unsubscribed", "an identity needs a person identifier", _I,
            "identity needs at least one of", change={"identity": {"account_id": "acct-hopper"}}),
    _broken("marketing.identified", "identify traits are firmographics only", _I,
            "properties.plan: Extra inputs are not permitted", change={"properties.plan": "pro"}),
    _broken("marketing.spend_recorded", "currencies are ISO 4217 codes", _I,
            "properties.currency", change={"properties.currency": "eur"}),
    _broken("marketing.spend_recorded", "periods are real months", _I, "properties.period",
            change={"properties.period": "2025-13"}),
    _broken("marketing.spend_recorded", "sales topics carry sales types only",
            ReasonCode.WRONG_TOPIC, "marketing event but arrived on the sales topic",
            domain="sales", json_schema_rejects=False),
    # --- outbound sales ------------------------------------------------------------------
    _broken("sales.prospect_added", "only schema_version 1 exists",
            ReasonCode.UNSUPPORTED_VERSION, "schema_version 2 is not supported",
            change={"schema_version": 2}),
    _broken("sales.outreach_sent", "outreach goes by email, call or social", _I,
            "properties.channel", change={"properties.channel": "carrier_pigeon"}),
    _broken("sales.reply_received", "sentiment is positive, neutral or negative", _I,
            "properties.sentiment", change={"properties.sentiment": "ecstatic"}),
    _broken("sales.meeting_booked", "scheduled_for is a date-time with an offset", _I,
            "properties.scheduled_for", change={"properties.scheduled_for": "next tuesday"}),
    _broken("sales.lead_qualified", "a BANT answer is yes, no or unknown", _I,
            "properties.bant.budget", change={"properties.bant.budget": True}),
    _broken("sales.lead_qualified", "version 2 has no top-level BANT booleans", _I,
            "properties.need: Extra inputs are not permitted", change={"properties.need": True}),
    _broken("sales.lead_qualified", "version 2 says so: schema_version is required", _I,
            "properties.bant: Extra inputs are not permitted", drop=("schema_version",)),
    _broken("sales.lead_qualified", "versions 1 and 2 exist", ReasonCode.UNSUPPORTED_VERSION,
            "(supported: 1, 2)", change={"schema_version": 3}),
    _broken("sales.lead_disqualified", "a disqualification says why", _I, "properties.reason",
            change={"properties.reason": ""}),
    _broken("sales.handoff_accepted", "an acceptance names the hand-off signal", _I,
            "properties.signal_id: Field required", drop=("properties.signal_id",)),
    _broken("sales.handoff_rejected", "a rejection says why", _I,
            "properties.reason: Field required", drop=("properties.reason",)),
    _broken("sales.demo_held", "type names come from the vocabulary", ReasonCode.UNKNOWN_TYPE,
            "unknown type 'sales.demo_hold'", change={"type": "sales.demo_hold"}),
    _broken("sales.objection_raised", "objection categories are a closed list", _I,
            "properties.category", change={"properties.category": "budget"}),
    _broken("sales.proposal_sent", "amounts are not negative", _I, "properties.amount",
            change={"properties.amount": "-100"}),
    _broken("sales.deal_won", "gross margin is a fraction", _I, "properties.gross_margin",
            change={"properties.gross_margin": 1.5}),
    _broken("sales.deal_won", "a won deal has an amount", _I, "properties.amount: Field required",
            drop=("properties.amount",)),
    _broken("sales.deal_lost", "event ids are not empty", _I, "event_id",
            change={"event_id": ""}),
    _broken("sales.deal_lost", "marketing topics carry marketing types only",
            ReasonCode.WRONG_TOPIC, "sales event but arrived on the marketing topic",
            domain="marketing", json_schema_rejects=False),
    _broken("sales.feedback_recorded", "NPS is 0 to 10", _I, "properties.nps",
            change={"properties.nps": 11}),
    _broken("sales.renewed", "currencies are three capital letters", _I, "properties.currency",
            change={"properties.currency": "euro"}),
    _broken("sales.churned", "the publishing system is required", _I,
            "source: Field required", drop=("source",)),
    _broken("sales.cost_recorded", "amounts have at most 4 decimal places", _I,
            "properties.amount", change={"properties.amount": "12.34567"}),
)  # fmt: skip
"""Broken documents, at least one per type, each with the rejection it must get."""


def invalid_examples_for(type_name: str) -> list[InvalidExample]:
    """The invalid examples of one type."""
    return [example for example in INVALID_EXAMPLES if example.type == type_name]


def example(type_name: str) -> Document:
    """A fresh (deep) copy of the valid example of a type, safe to modify."""
    return copy.deepcopy(VALID_EXAMPLES[type_name])


def example_json(type_name: str) -> bytes:
    """The valid example of a type as UTF-8 JSON bytes."""
    return json.dumps(VALID_EXAMPLES[type_name]).encode()
