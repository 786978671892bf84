"""The signals Tandem emits: hand-offs to sales, nurture to marketing, SLA alerts.

Every signal has a deterministic `signal_id` (the same rule firing for the same customer in the
same cycle always has the same id) and a `version` that starts at 1 and grows when a late
touchpoint corrects it. Consumers keep the highest version per id. Each model names the topic
it is published on (`signal.topic`), as a plain string: this package knows nothing of Kafka.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.account import BuyingGroupMember
from schemas.journey import (
    EngagementScore,
    Firmographics,
    FitScore,
    Objection,
    Stage,
    TouchpointSummary,
)
from schemas.playbook import ContentItem

HANDOFF_TOPIC = "signals.handoff"
NURTURE_TOPIC = "signals.nurture"
ALERTS_TOPIC = "signals.alerts"


class SignalBase(BaseModel):
    """Fields every signal carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TOPIC: ClassVar[str]

    signal_id: str = Field(description="deterministic: sig_ + sha256(customer|rule|key)[:20]")
    version: int = Field(1, ge=1, description="1, then +1 per correction or revocation")
    customer_id: str
    identities: list[str] = Field(description="the person's identifiers, strongest first")
    occurred_at: AwareDatetime = Field(
        description="event time of the triggering touchpoint, or the timer's deadline"
    )
    playbook_version: str

    @property
    def topic(self) -> str:
        """The (unprefixed) topic this signal is published on."""
        return self.TOPIC


class HandoffSignal(SignalBase):
    """A marketing-qualified lead handed to sales, with everything to continue the conversation.

    Its content is the journey as of the triggering touchpoint, so later touchpoints do not
    change it.
    """

    TOPIC: ClassVar[str] = HANDOFF_TOPIC

    signal_type: Literal["handoff"] = "handoff"
    cycle: int
    trigger_event_id: str
    stage: Stage
    reason: str
    engagement: EngagementScore
    fit: FitScore
    persona: str | None
    firmographics: Firmographics
    last_marketing: list[TouchpointSummary] = Field(description="up to 5, oldest first")
    last_sales: list[TouchpointSummary] = Field(description="up to 5, oldest first")
    campaigns: list[str] = Field(description="campaigns seen, first seen first")
    messages: list[str] = Field(description="messages/offers shown: repeat the promise")
    open_objections: list[Objection]
    recommended_content: list[ContentItem] = Field(description="for the next stage (sal)")
    supersedes: list[str] = Field(
        default_factory=list, description="ids of hand-offs issued under a former customer id"
    )


class HandoffRevokedSignal(SignalBase):
    """A hand-off taken back: a late touchpoint shows the lead was not qualified after all.

    Same `signal_id` as the hand-off it revokes, with the next version.
    """

    TOPIC: ClassVar[str] = HANDOFF_TOPIC

    signal_type: Literal["handoff_revoked"] = "handoff_revoked"
    cycle: int
    reason: str


class NurtureSignal(SignalBase):
    """Marketing automation should nurture this person on a track."""

    TOPIC: ClassVar[str] = NURTURE_TOPIC

    signal_type: Literal["nurture"] = "nurture"
    rule: Literal[
        "nurture.engaged",
        "nurture.recycled",
        "nurture.onboarding",
        "nurture.churn_risk",
        "nurture.stalled",
        "nurture.upsell",
        "nurture.renewal",
    ]
    track: str
    channel: Literal["email", "ads", "sales"]
    reason: str
    stage: Stage
    cycle: int
    trigger_event_id: str | None = Field(description="None when a timer fired it")
    open_objections: list[Objection]
    recommended_content: list[ContentItem]
    supersedes: list[str] = Field(default_factory=list)


class NurtureWithdrawnSignal(SignalBase):
    """A nurture taken back: the journey no longer calls for it (marketing automation stops
    the track; what was already sent stays sent).

    Same `signal_id` as the nurture it withdraws, with the next version.
    """

    TOPIC: ClassVar[str] = NURTURE_TOPIC

    signal_type: Literal["nurture_withdrawn"] = "nurture_withdrawn"
    rule: str
    cycle: int
    reason: str


class _SlaSignal(SignalBase):
    TOPIC: ClassVar[str] = ALERTS_TOPIC

    handoff_signal_id: str
    handoff_version: int
    handoff_occurred_at: AwareDatetime
    deadline: AwareDatetime
    hours: float = Field(description="the threshold that passed, in hours after the hand-off")
    cycle: int
    stage: Stage


class HandoffSlaBreachedSignal(_SlaSignal):
    """Sales neither accepted nor rejected a hand-off within the SLA."""

    signal_type: Literal["handoff_sla_breached"] = "handoff_sla_breached"


class HandoffSlaEscalatedSignal(_SlaSignal):
    """Still unanswered at the escalation threshold."""

    signal_type: Literal["handoff_sla_escalated"] = "handoff_sla_escalated"


class IdentityQuarantinedSignal(SignalBase):
    """An identifier linked too many strong identities (a shared mailbox, a kiosk cookie): it
    links nothing further. What it linked before stays linked until `tandem unmerge` splits it.

    `customer_id` is the customer the identifier belonged to when it was quarantined (its
    journey may hold strangers: the ones to split off); `identities` lists that customer's
    identifiers at the time.
    """

    TOPIC: ClassVar[str] = ALERTS_TOPIC

    signal_type: Literal["identity_quarantined"] = "identity_quarantined"
    identifier: str
    linked: list[str] = Field(
        description="strong identities it was seen with (up to limit + 1), strongest first"
    )
    limit: int = Field(description="the playbook's identity.max_links_per_identifier")
    trigger_event_id: str
    reason: str


class PersonForgottenSignal(SignalBase):
    """A person was forgotten (`tandem forget`, ``DELETE /v1/people/{ref}``): the audit record.

    It names no identifier (`identities` is empty): only the SHA-256 of the reference that was
    asked for, who asked and when, and the customer ids erased. Consumers that keep copies of
    this customer's signals should delete them (docs/privacy.md).
    """

    TOPIC: ClassVar[str] = ALERTS_TOPIC

    signal_type: Literal["person_forgotten"] = "person_forgotten"
    request_id: str
    requested_by: str = Field(description="who asked: the CLI user, or the API key's name")
    reference_sha256: str = Field(description="SHA-256 (hex) of the reference as given")
    erased_customer_ids: list[str] = Field(
        description="every customer id whose journey or moved-journey pointer was erased"
    )
    identifiers_erased: int = Field(ge=0, description="how many identifiers were unlinked")
    known: bool = Field(description="false: no journey had any of the identifiers yet")


class AccountHandoffSignal(SignalBase):
    """An account ready for sales: the playbook's rule for several engaged people of one
    account holds (docs/accounts.md). Sent once per account, by the worker, when the read
    model first shows the rule holding.

    `customer_id` is ``account:<account id>`` and `identities` is empty: the people are in
    `buying_group` (each with their own identifiers and customer id).
    """

    TOPIC: ClassVar[str] = HANDOFF_TOPIC

    signal_type: Literal["account_handoff"] = "account_handoff"
    account_id: str
    stage: Stage = Field(description="the account's stage: the furthest any member reached")
    reason: str
    engaged_people: int = Field(ge=0)
    engagement_total: float = Field(description="sum of the people's engagement (decayed)")
    buying_group: list[BuyingGroupMember] = Field(description="every member, by customer id")


Signal = Annotated[
    HandoffSignal
    | HandoffRevokedSignal
    | NurtureSignal
    | NurtureWithdrawnSignal
    | HandoffSlaBreachedSignal
    | HandoffSlaEscalatedSignal
    | IdentityQuarantinedSignal
    | PersonForgottenSignal
    | AccountHandoffSignal,
    Field(discriminator="signal_type"),
]
"""Any signal; pydantic picks the model by ``signal_type``."""

SIGNAL: TypeAdapter[Signal] = TypeAdapter(Signal)

SIGNAL_MODELS: tuple[type[SignalBase], ...] = (
    HandoffSignal,
    HandoffRevokedSignal,
    NurtureSignal,
    NurtureWithdrawnSignal,
    HandoffSlaBreachedSignal,
    HandoffSlaEscalatedSignal,
    IdentityQuarantinedSignal,
    PersonForgottenSignal,
    AccountHandoffSignal,
)
