"""The playbook: how marketing and sales agree to score, stage, hand off and nurture a journey.

One YAML document (`streams/defaults/playbook.yaml` is the bundled default) validated by these
models. Every model forbids unknown keys, so a misspelt setting is an error rather than a
silently ignored default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.vocabulary import TYPE_NAMES, ObjectionCategory
from schemas.journey import Stage

Name = Annotated[str, Field(min_length=1, max_length=100)]
Keyword = Annotated[str, Field(min_length=1, max_length=200)]
Points = Annotated[float, Field(ge=-1000, le=1000)]
BANT = Literal["budget", "authority", "need", "timeline"]
_ALL_BANT: tuple[BANT, ...] = ("budget", "authority", "need", "timeline")

NURTURE_TRACKS = ("engaged", "recycled", "stalled", "onboarding", "churn_risk", "upsell", "renewal")
"""The tracks every playbook defines: one per nurture rule."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompanySize(_Model):
    """An employee-count range (inclusive); either end may be open."""

    min: Annotated[int, Field(ge=1)] | None = None
    max: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> CompanySize:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self

    def contains(self, size: int) -> bool:
        """Whether `size` employees falls in the range."""
        return (self.min is None or size >= self.min) and (self.max is None or size <= self.max)


class PersonaPoints(_Model):
    """Fit points a persona awards per matched attribute."""

    job_title: Points = 30
    company_size: Points = 20
    industry: Points = 20
    pain_points: Points = 15


class Persona(_Model):
    """An ideal buyer: who they are, what company they work for, what hurts."""

    name: Name
    job_titles: list[Keyword] = Field(
        default_factory=list, description="case-insensitive keywords matched in the job title"
    )
    company_size: CompanySize | None = None
    industries: list[Keyword] = Field(default_factory=list, description="case-insensitive")
    pain_points: list[Keyword] = Field(default_factory=list, description="case-insensitive")
    points: PersonaPoints = Field(default_factory=PersonaPoints)


class Scoring(_Model):
    """Engagement: points per touchpoint type, halved every `half_life_days`."""

    half_life_days: Annotated[float, Field(gt=0, le=3650)] = 30
    points: dict[str, Points] = Field(
        default_factory=dict, description="touchpoint type (e.g. marketing.form_submitted) → points"
    )

    @field_validator("points")
    @classmethod
    def _known_types(cls, points: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(points) - set(TYPE_NAMES))
        if unknown:
            raise ValueError(
                f"unknown touchpoint type(s) {', '.join(unknown)}; "
                "use the full type name, e.g. marketing.form_submitted"
            )
        return points


class MqlRule(_Model):
    """A lead becomes marketing-qualified when both scores reach these minimums."""

    min_engagement: Annotated[float, Field(ge=0)] = 50
    min_fit: Annotated[float, Field(ge=0)] = 40


class StageRules(_Model):
    """The few stage rules that differ between teams (the rest is fixed, see docs/journey.md)."""

    subscriber_forms: list[Keyword] = Field(
        default_factory=lambda: ["newsletter"],
        description="forms that make a subscriber, not a lead, when they carry no firmographics",
    )
    sql_requires: list[BANT] = Field(
        default_factory=lambda: list(_ALL_BANT),
        description="BANT answers that must not be 'no' for sales.lead_qualified to make an SQL "
        "(an unknown answer does not block it)",
    )
    outbound_meeting_enters_sal: bool = Field(
        True, description="a meeting booked with an outbound prospect makes it sales-accepted"
    )
    outbound_positive_reply_enters_sal: bool = Field(
        False, description="a positive reply from an outbound prospect makes it sales-accepted"
    )


class Handoff(_Model):
    """How long sales has to accept or reject a hand-off."""

    sla_hours: Annotated[float, Field(gt=0)] = 24
    escalate_after_hours: Annotated[float, Field(gt=0)] | None = 48

    @model_validator(mode="after")
    def _escalation_after_sla(self) -> Handoff:
        if self.escalate_after_hours is not None and self.escalate_after_hours <= self.sla_hours:
            raise ValueError(
                f"escalate_after_hours ({self.escalate_after_hours}) must be later than "
                f"sla_hours ({self.sla_hours})"
            )
        return self


class ScoreThresholds(_Model):
    """Score levels whose crossing is news for sales."""

    engagement: list[Annotated[float, Field(ge=0)]] = Field(default_factory=list)
    fit: list[Annotated[float, Field(ge=0)]] = Field(default_factory=list)


class SignalRules(_Model):
    """When a signal already sent is sent again (see docs/journey.md, *Signal hygiene*)."""

    settle_minutes: Annotated[float, Field(ge=0)] = Field(
        30,
        description="corrections of one signal owed while the journey's event time is within "
        "this many minutes of its last send are coalesced into one, sent when the window "
        "closes (0: send every correction at once)",
    )
    handoff_score_thresholds: ScoreThresholds = Field(
        default_factory=lambda: ScoreThresholds(engagement=[60.0, 100.0], fit=[75.0]),
        description="a hand-off is corrected when its engagement or fit crosses one of these "
        "(besides the MQL rule's own thresholds)",
    )


class NurtureTrack(_Model):
    """A sequence of content marketing automation sends on one channel."""

    channel: Literal["email", "ads", "sales"] = "email"
    content: list[Keyword] = Field(default_factory=list, description="content ids, in order")


class EngagementFall(_Model):
    """Churn risk from falling engagement: a customer's engagement touchpoints (those scoring
    points) in the last `window_days` against the `window_days` before (event time)."""

    window_days: Annotated[float, Field(gt=0)] = 30
    min_touchpoints: Annotated[int, Field(ge=1)] = Field(
        5, description="touchpoints in the earlier window for a fall to count"
    )
    max_share: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.25,
        description="a fall: the later window has at most this share of the earlier one's "
        "touchpoints; it lasts until the later window has more than this share again",
    )


class CustomerNurture(_Model):
    """After the sale: onboarding, upsell and renewal timing, and falling engagement."""

    upsell_after_days: Annotated[float, Field(gt=0)] | None = 90
    renewal_term_days: Annotated[float, Field(gt=0)] = 365
    renewal_reminder_days: Annotated[float, Field(gt=0)] | None = 60
    engagement_fall: EngagementFall | None = Field(
        None, description="churn risk when engagement falls (none: not watched)"
    )

    @model_validator(mode="after")
    def _reminder_inside_term(self) -> CustomerNurture:
        if (
            self.renewal_reminder_days is not None
            and self.renewal_reminder_days >= self.renewal_term_days
        ):
            raise ValueError(
                f"renewal_reminder_days ({self.renewal_reminder_days}) must be shorter than "
                f"renewal_term_days ({self.renewal_term_days})"
            )
        return self


class Nurture(_Model):
    """When a journey is nurtured instead of handed off, and with what."""

    engagement_floor: Annotated[float, Field(ge=0)] = 15
    tracks: dict[Name, NurtureTrack] = Field(default_factory=dict)
    stall_days: dict[Stage, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="stage → days without a touchpoint before nurturing"
    )
    customer: CustomerNurture = Field(default_factory=CustomerNurture)

    @field_validator("tracks")
    @classmethod
    def _every_track(cls, tracks: dict[str, NurtureTrack]) -> dict[str, NurtureTrack]:
        missing = [name for name in NURTURE_TRACKS if name not in tracks]
        if missing:
            raise ValueError(
                f"missing track(s) {', '.join(missing)}; every playbook defines "
                f"{', '.join(NURTURE_TRACKS)}"
            )
        return tracks


class ContentItem(_Model):
    """A piece of content marketing or sales can send."""

    id: Keyword
    title: Annotated[str, Field(min_length=1, max_length=300)]
    url: Annotated[str, Field(min_length=1, max_length=2048)]


class ContentCatalogue(_Model):
    """Content recommended per stage (for the next step) and per objection category."""

    stages: dict[Stage, list[ContentItem]] = Field(default_factory=dict)
    objections: dict[ObjectionCategory, list[ContentItem]] = Field(default_factory=dict)

    def items(self) -> dict[str, ContentItem]:
        """Every item by id (the first definition of an id wins)."""
        found: dict[str, ContentItem] = {}
        for group in (*self.stages.values(), *self.objections.values()):
            for item in group:
                found.setdefault(item.id, item)
        return found


class IdentityRules(_Model):
    """Guards on identity linking."""

    blocklist: list[Keyword] = Field(
        default_factory=list,
        description="identifiers that never link: exact (email:info@acme.example) or fnmatch "
        "patterns (email:info@*, email:*@example.com)",
    )
    max_identifiers_per_customer: Annotated[int, Field(ge=1, le=10_000)] = 50
    max_links_per_identifier: Annotated[int, Field(ge=1, le=10_000)] = Field(
        3,
        description="an email or anonymous id seen on touchpoints with more than this many "
        "other strong identities (contact ids, emails) is quarantined: it links nothing "
        "further and an identity_quarantined alert is emitted (a shared mailbox, a kiosk "
        "cookie); contact ids are the CRM's own records and are never quarantined",
    )

    @field_validator("blocklist")
    @classmethod
    def _kinds(cls, blocklist: list[str]) -> list[str]:
        bad = [p for p in blocklist if p.split(":", 1)[0] not in ("contact", "email", "anon", "*")]
        if bad:
            raise ValueError(
                f"entries must start with contact:, email: or anon: (got {', '.join(bad)})"
            )
        return blocklist


FREE_EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
    "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
    "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de",
    "mail.com", "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com",
    "zoho.com", "fastmail.com", "hey.com", "tutanota.com", "example.com",
)  # fmt: skip
"""Mailbox providers: an address there says nothing about the person's company."""


class AccountHandoffRule(_Model):
    """When several engaged people of one account make the account itself ready for sales."""

    min_engaged_people: Annotated[int, Field(ge=1, le=1000)] = Field(
        3, description="people of the account engaged enough, recently enough"
    )
    min_score: Annotated[float, Field(ge=0)] = Field(
        40, description="a person's engagement, decayed to the account's latest touch"
    )
    within_days: Annotated[float, Field(gt=0)] = Field(
        30, description="a person counts when their last touch is this close to the account's"
    )


class AccountRules(_Model):
    """How journeys roll up to accounts (docs/accounts.md)."""

    domain_fallback: bool = Field(
        False,
        description="a journey with no identity.account_id joins the account of its email's "
        "company domain (domain:acme.example); free-mail and blocklisted addresses never do",
    )
    free_email_domains: list[Keyword] = Field(
        default_factory=lambda: list(FREE_EMAIL_DOMAINS),
        description="domains that never form an account (fnmatch patterns allowed)",
    )
    handoff: AccountHandoffRule | None = Field(
        default_factory=AccountHandoffRule,
        description="the account-level hand-off rule (null: no account hand-off)",
    )


class Playbook(_Model):
    """Everything that turns touchpoints into stages, scores and signals for one team."""

    version: Annotated[str, Field(min_length=1, max_length=100)]
    personas: list[Persona] = Field(default_factory=list)
    scoring: Scoring = Field(default_factory=Scoring)
    mql_rule: MqlRule = Field(default_factory=MqlRule)
    stages: StageRules = Field(default_factory=StageRules)
    handoff: Handoff = Field(default_factory=Handoff)
    signals: SignalRules = Field(default_factory=SignalRules)
    nurture: Nurture
    content: ContentCatalogue = Field(default_factory=ContentCatalogue)
    identity: IdentityRules = Field(default_factory=IdentityRules)
    accounts: AccountRules = Field(default_factory=AccountRules)

    @model_validator(mode="after")
    def _references(self) -> Playbook:
        catalogue = self.content.items()
        problems = [
            f"nurture.tracks.{name}: content {content_id!r} is not in the content catalogue"
            for name, track in self.nurture.tracks.items()
            for content_id in track.content
            if content_id not in catalogue
        ]
        names = [p.name for p in self.personas]
        problems += [f"personas: {n!r} is defined twice" for n in sorted(set(names)) if
                     names.count(n) > 1]  # fmt: skip
        if problems:
            # One line per problem: the loader reports each line separately.
            raise ValueError("\n".join(problems))
        return self
