"""Every touchpoint type Tandem understands: inbound marketing and outbound sales.

Each type is a model with a literal ``type`` and strictly validated ``properties``;
`Touchpoint` is the discriminated union of them all.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from events.envelope import (
    END,
    JSON_INTEGER,
    MODEL_CONFIG,
    Channel,
    DateTime,
    Envelope,
    Identity,
    Slug,
    _not_a_boolean,
)
from events.upcast import current_version, upcast

MAX_AMOUNT = 10**14 - 1
"""The largest whole amount (14 digits before the point, 4 after: 18 in all)."""
MONEY_PATTERN = rf"^[0-9]{{1,14}}(\.[0-9]{{1,4}})?{END}"
"""An amount as a string: not negative, at most 14 digits before the point and 4 after."""
_MONEY_RE = re.compile(MONEY_PATTERN)


def _money(value: object) -> Decimal:
    """A decimal string (exact), or a whole JSON number; fractions as numbers are refused
    because a binary float cannot say how many decimal places were meant."""
    if isinstance(value, Decimal):  # from Python, not JSON: the same rule on its digits
        value = format(value, "f")
    if isinstance(value, str):
        if _MONEY_RE.search(value) is None:
            raise PydanticCustomError(
                "decimal_parsing",
                'should be a decimal string such as "1250.00": not negative, at most 14 '
                "digits before the point and 4 after",
            )
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("decimal_type", "should be a decimal string or a number")
    if isinstance(value, float) and not value.is_integer():
        raise PydanticCustomError(
            "decimal_type", 'a fractional amount is sent as a string, e.g. "12.50"'
        )
    if not 0 <= value <= MAX_AMOUNT:
        raise PydanticCustomError(
            "out_of_range", "should be between 0 and {maximum}", {"maximum": MAX_AMOUNT}
        )
    return Decimal(int(value))


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT},
                {"type": "string", "pattern": MONEY_PATTERN},
            ]
        }
    ),
]
Currency = Annotated[str, Field(pattern=rf"^[A-Z]{{3}}{END}", description="ISO 4217, e.g. EUR")]
Period = Annotated[
    str,
    Field(
        pattern=rf"^\d{{4}}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?{END}",
        description="The month (YYYY-MM) or day (YYYY-MM-DD) the amount covers.",
    ),
]
Text = Annotated[str, Field(max_length=2000)]
Tags = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=50)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1)]


class Properties(BaseModel):
    """Base of every type's properties: unknown fields are rejected."""

    model_config = MODEL_CONFIG


class NoProperties(Properties):
    """A touchpoint whose meaning is all in its type and context."""


class Firmographics(Properties):
    """What a person tells about themselves and their company (feeds the fit score)."""

    job_title: Annotated[str, Field(max_length=200)] | None = None
    company: Annotated[str, Field(max_length=200)] | None = None
    company_size: (
        Annotated[int, Field(ge=1, le=10_000_000, description="employees"), JSON_INTEGER] | None
    ) = None
    industry: Annotated[str, Field(max_length=100)] | None = None
    pain_points: Tags = Field(default_factory=list)


# --- inbound marketing -----------------------------------------------------------------


class PageViewedProperties(Properties):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    title: Annotated[str, Field(max_length=500)] | None = None
    referrer: Annotated[str, Field(max_length=2048)] | None = None


class FormViewedProperties(Properties):
    form_id: Slug


class FormSubmittedProperties(Firmographics):
    form_id: Slug


class EmailProperties(Properties):
    email_id: Slug | None = None


class EmailClickedProperties(EmailProperties):
    url: Annotated[str, Field(max_length=2048)] | None = None


class ContentDownloadedProperties(Properties):
    content_id: Slug


class WebinarAttendedProperties(Properties):
    webinar_id: Slug | None = None
    minutes: Annotated[int, Field(ge=0, le=10_000), JSON_INTEGER] | None = None


class AdClickedProperties(Properties):
    ad_id: Slug | None = None


class SocialEngagedProperties(Properties):
    network: Slug | None = None
    action: Slug | None = None


class EventAttendedProperties(Properties):
    event_name: Annotated[str, Field(max_length=200)] | None = None


class UnsubscribedProperties(Properties):
    list_id: Slug | None = None
    reason: Text | None = None


class IdentifiedProperties(Firmographics):
    """What an identify call tells about a person (Segment ``traits``): firmographics only."""


class SpendRecordedProperties(Properties):
    campaign_id: Slug
    channel: Channel
    amount: Money
    currency: Currency
    period: Period


# --- outbound sales --------------------------------------------------------------------


class ProspectAddedProperties(Firmographics):
    owner_id: Slug | None = None


class OutreachSentProperties(Properties):
    channel: Literal["email", "call", "social"]
    owner_id: Slug | None = None


class ReplyReceivedProperties(Properties):
    sentiment: Literal["positive", "neutral", "negative"] | None = None


class MeetingBookedProperties(Properties):
    scheduled_for: DateTime | None = None


BantAnswer = Literal["yes", "no", "unknown"]
"""A BANT answer; ``unknown`` when sales did not (or could not) find out."""


class Bant(Properties):
    """BANT: budget, authority, need, timeline; an answer not given is ``unknown``."""

    budget: BantAnswer = "unknown"
    authority: BantAnswer = "unknown"
    need: BantAnswer = "unknown"
    timeline: BantAnswer = "unknown"


class LeadQualifiedProperties(Properties):
    """Schema version 2: the BANT answers, each ``yes``, ``no`` or ``unknown``."""

    bant: Bant = Field(default_factory=Bant)
    note: Text | None = None


class LeadQualifiedV1Properties(Properties):
    """Schema version 1: BANT as four booleans, each optional (absent or null: unknown)."""

    budget: StrictBool | None = None
    authority: StrictBool | None = None
    need: StrictBool | None = None
    timeline: StrictBool | None = None
    note: Text | None = None


class ReasonProperties(Properties):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class HandoffAcceptedProperties(Properties):
    signal_id: Slug
    reason: Text | None = None


class HandoffRejectedProperties(Properties):
    signal_id: Slug
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class DemoHeldProperties(Properties):
    note: Text | None = None


ObjectionCategory = Literal["price", "timing", "competitor", "authority", "need", "other"]


class ObjectionRaisedProperties(Properties):
    category: ObjectionCategory
    note: Text | None = None


class ProposalSentProperties(Properties):
    amount: Money
    currency: Currency


class DealWonProperties(Properties):
    amount: Money
    currency: Currency
    recurring: StrictBool | None = None
    gross_margin: Fraction | None = None
    owner_id: Slug | None = None


class FeedbackRecordedProperties(Properties):
    nps: Annotated[int, Field(ge=0, le=10), JSON_INTEGER] | None = None
    pain_points: Tags = Field(default_factory=list)
    motivations: Tags = Field(default_factory=list)
    note: Text | None = None


class RenewedProperties(Properties):
    amount: Money
    currency: Currency | None = None


class CostRecordedProperties(Properties):
    amount: Money
    currency: Currency
    period: Period
    campaign_id: Slug | None = None


class LedgerEnvelope(Envelope):
    """Spend and cost records are about campaigns and teams, not a person: identity optional."""

    identity: Identity | None = None  # type: ignore[assignment]


# --- the types -------------------------------------------------------------------------


class PageViewed(Envelope):
    type: Literal["marketing.page_viewed"]
    properties: PageViewedProperties


class FormViewed(Envelope):
    type: Literal["marketing.form_viewed"]
    properties: FormViewedProperties


class FormSubmitted(Envelope):
    type: Literal["marketing.form_submitted"]
    properties: FormSubmittedProperties


class EmailOpened(Envelope):
    type: Literal["marketing.email_opened"]
    properties: EmailProperties = Field(default_factory=EmailProperties)


class EmailClicked(Envelope):
    type: Literal["marketing.email_clicked"]
    properties: EmailClickedProperties = Field(default_factory=EmailClickedProperties)


class ContentDownloaded(Envelope):
    type: Literal["marketing.content_downloaded"]
    properties: ContentDownloadedProperties


class WebinarAttended(Envelope):
    type: Literal["marketing.webinar_attended"]
    properties: WebinarAttendedProperties = Field(default_factory=WebinarAttendedProperties)


class AdClicked(Envelope):
    type: Literal["marketing.ad_clicked"]
    properties: AdClickedProperties = Field(default_factory=AdClickedProperties)


class SocialEngaged(Envelope):
    type: Literal["marketing.social_engaged"]
    properties: SocialEngagedProperties = Field(default_factory=SocialEngagedProperties)


class EventAttended(Envelope):
    type: Literal["marketing.event_attended"]
    properties: EventAttendedProperties = Field(default_factory=EventAttendedProperties)


class Unsubscribed(Envelope):
    type: Literal["marketing.unsubscribed"]
    properties: UnsubscribedProperties = Field(default_factory=UnsubscribedProperties)


class Identified(Envelope):
    """A tool identified a person: links the identifiers it carries; no engagement points."""

    type: Literal["marketing.identified"]
    properties: IdentifiedProperties = Field(default_factory=IdentifiedProperties)


class SpendRecorded(LedgerEnvelope):
    type: Literal["marketing.spend_recorded"]
    properties: SpendRecordedProperties


class ProspectAdded(Envelope):
    type: Literal["sales.prospect_added"]
    properties: ProspectAddedProperties = Field(default_factory=ProspectAddedProperties)


class OutreachSent(Envelope):
    type: Literal["sales.outreach_sent"]
    properties: OutreachSentProperties


class ReplyReceived(Envelope):
    type: Literal["sales.reply_received"]
    properties: ReplyReceivedProperties = Field(default_factory=ReplyReceivedProperties)


class MeetingBooked(Envelope):
    type: Literal["sales.meeting_booked"]
    properties: MeetingBookedProperties = Field(default_factory=MeetingBookedProperties)


class LeadQualified(Envelope):
    """``sales.lead_qualified`` schema version 2 (current): BANT in ``properties.bant``."""

    type: Literal["sales.lead_qualified"]
    schema_version: Annotated[Literal[2], BeforeValidator(_not_a_boolean)]  # type: ignore[assignment]
    properties: LeadQualifiedProperties = Field(default_factory=LeadQualifiedProperties)


class LeadQualifiedV1(Envelope):
    """``sales.lead_qualified`` schema version 1 (still accepted, upcast to version 2)."""

    type: Literal["sales.lead_qualified"]
    properties: LeadQualifiedV1Properties = Field(default_factory=LeadQualifiedV1Properties)


class LeadDisqualified(Envelope):
    type: Literal["sales.lead_disqualified"]
    properties: ReasonProperties


class HandoffAccepted(Envelope):
    type: Literal["sales.handoff_accepted"]
    properties: HandoffAcceptedProperties


class HandoffRejected(Envelope):
    type: Literal["sales.handoff_rejected"]
    properties: HandoffRejectedProperties


class DemoHeld(Envelope):
    type: Literal["sales.demo_held"]
    properties: DemoHeldProperties = Field(default_factory=DemoHeldProperties)


class ObjectionRaised(Envelope):
    type: Literal["sales.objection_raised"]
    properties: ObjectionRaisedProperties


class ProposalSent(Envelope):
    type: Literal["sales.proposal_sent"]
    properties: ProposalSentProperties


class DealWon(Envelope):
    type: Literal["sales.deal_won"]
    properties: DealWonProperties


class DealLost(Envelope):
    type: Literal["sales.deal_lost"]
    properties: ReasonProperties


class FeedbackRecorded(Envelope):
    type: Literal["sales.feedback_recorded"]
    properties: FeedbackRecordedProperties


class Renewed(Envelope):
    type: Literal["sales.renewed"]
    properties: RenewedProperties


class Churned(Envelope):
    type: Literal["sales.churned"]
    properties: ReasonProperties


class CostRecorded(LedgerEnvelope):
    type: Literal["sales.cost_recorded"]
    properties: CostRecordedProperties


MARKETING_TYPES: tuple[type[Envelope], ...] = (
    PageViewed, FormViewed, FormSubmitted, EmailOpened, EmailClicked, ContentDownloaded,
    WebinarAttended, AdClicked, SocialEngaged, EventAttended, Unsubscribed, Identified,
    SpendRecorded,
)  # fmt: skip
SALES_TYPES: tuple[type[Envelope], ...] = (
    ProspectAdded, OutreachSent, ReplyReceived, MeetingBooked, LeadQualified, LeadDisqualified,
    HandoffAccepted, HandoffRejected, DemoHeld, ObjectionRaised, ProposalSent, DealWon, DealLost,
    FeedbackRecorded, Renewed, Churned, CostRecorded,
)  # fmt: skip
ALL_TYPES = MARKETING_TYPES + SALES_TYPES
LEDGER_TYPES = frozenset({"marketing.spend_recorded", "sales.cost_recorded"})

TYPE_NAMES: dict[str, type[Envelope]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in ALL_TYPES
}
"""Type name → the model of its current schema version."""

EARLIER_VERSIONS: dict[tuple[str, int], type[Envelope]] = {
    ("sales.lead_qualified", 1): LeadQualifiedV1,
}
"""(type, version) → the model of a version still accepted and upcast to the current one."""


def versions_of(type_name: str) -> dict[int, type[Envelope]]:
    """Every accepted version of a type and its model, oldest first."""
    current = current_version(type_name)
    found = {v: m for (name, v), m in EARLIER_VERSIONS.items() if name == type_name}
    return {**dict(sorted(found.items())), current: TYPE_NAMES[type_name]}


Touchpoint = Annotated[
    PageViewed
    | FormViewed
    | FormSubmitted
    | EmailOpened
    | EmailClicked
    | ContentDownloaded
    | WebinarAttended
    | AdClicked
    | SocialEngaged
    | EventAttended
    | Unsubscribed
    | Identified
    | SpendRecorded
    | ProspectAdded
    | OutreachSent
    | ReplyReceived
    | MeetingBooked
    | LeadQualified
    | LeadDisqualified
    | HandoffAccepted
    | HandoffRejected
    | DemoHeld
    | ObjectionRaised
    | ProposalSent
    | DealWon
    | DealLost
    | FeedbackRecorded
    | Renewed
    | Churned
    | CostRecorded,
    Field(discriminator="type"),
]
"""Any touchpoint in its current schema version (what the engine works with)."""


def _wire_tag(value: Any) -> str | None:
    """The union member for a document: its type, or ``type@version`` for an earlier one."""
    if isinstance(value, dict):
        type_name, version = value.get("type"), value.get("schema_version", 1)
    else:
        type_name = getattr(value, "type", None)
        version = getattr(value, "schema_version", 1)
    if not isinstance(type_name, str):
        return None
    numeric = isinstance(version, int | float) and not isinstance(version, bool)
    if numeric and (type_name, version) in EARLIER_VERSIONS:
        return f"{type_name}@{int(version)}"
    return type_name


def _upcast_model(old: Envelope) -> Envelope:
    """A validated event of an earlier version, as its type's current model."""
    document = upcast(old.model_dump(), old.schema_version)
    return TYPE_NAMES[old.type].model_validate(document)


def _wire_members() -> list[Any]:
    members: list[Any] = [Annotated[model, Tag(name)] for name, model in TYPE_NAMES.items()]
    for (name, version), model in EARLIER_VERSIONS.items():
        members.append(Annotated[model, AfterValidator(_upcast_model), Tag(f"{name}@{version}")])
    return members


def _tagged_union(members: list[Any]) -> Any:
    """The union of `members`, told apart by `_wire_tag` (built at run time from the tables)."""
    return Annotated[Union[tuple(members)], Discriminator(_wire_tag)]  # noqa: UP007


def _version_adapter(type_name: str) -> TypeAdapter[Any]:
    """Validates a type in any accepted version (an earlier one is upcast)."""
    members = [m for m in _wire_members() if _member_type(m) == type_name]
    return TypeAdapter(_tagged_union(members))


def _member_type(member: Any) -> str:
    model: type[Envelope] = member.__origin__
    return str(model.model_fields["type"].annotation.__args__[0])  # type: ignore[union-attr]


WIRE_TOUCHPOINT: Any = _tagged_union(_wire_members())
"""Any touchpoint as sent, in any accepted schema version; validating it upcasts."""

TOUCHPOINT: TypeAdapter[Touchpoint] = TypeAdapter(WIRE_TOUCHPOINT)
"""Validates any touchpoint in any accepted version and returns it in its current version;
its JSON Schema is the union of every type in every accepted version."""

VERSIONED_TYPES: dict[str, TypeAdapter[Any]] = {
    name: _version_adapter(name) for name in sorted({n for n, _ in EARLIER_VERSIONS})
}
"""Types with more than one accepted version → an adapter for all their versions."""


def parse_touchpoint(data: object) -> Touchpoint:
    """Validate a Python object (a decoded JSON document) as a touchpoint."""
    return TOUCHPOINT.validate_python(data)


def touchpoint_from_json(raw: bytes | str) -> Touchpoint:
    """Validate a JSON document as a touchpoint."""
    return TOUCHPOINT.validate_json(raw)


def touchpoint_to_json(touchpoint: Envelope) -> bytes:
    """The canonical JSON of a touchpoint (no nulls, compact)."""
    return touchpoint.model_dump_json(exclude_none=True).encode()


def occurred(touchpoint: Envelope) -> datetime:
    """Event time."""
    return touchpoint.occurred_at
