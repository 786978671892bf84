"""A customer's journey: the stored record and the snapshot Tandem publishes.

`JourneyRecord` is what the journey agent keeps per customer (in its Faust table): the
touchpoints themselves plus bookkeeping. Everything else — stage, scores, signals — is derived
from it by the pure core in `streams.journey`. `JourneySnapshot` is the derived, read-friendly
picture written to Redis and `journeys.state`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from events.vocabulary import ObjectionCategory, Touchpoint


class Stage(StrEnum):
    """Lifecycle stages, in funnel order (``disqualified`` and ``recycled`` are side exits)."""

    VISITOR = "visitor"
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    CHURNED = "churned"
    DISQUALIFIED = "disqualified"
    RECYCLED = "recycled"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _without_delivery_count(data: object) -> object:
    """Drop the `duplicates` delivery count that records and snapshots written before
    2026-12-01 carry (stored in tables and Redis): it is no longer part of a journey."""
    if isinstance(data, dict) and "duplicates" in data:
        return {k: v for k, v in data.items() if k != "duplicates"}
    return data


# --- the parts of a derived journey ------------------------------------------------------


class StageChange(_Model):
    """One entry of the stage history: which stage, since when, because of which touchpoint."""

    stage: Stage
    entered_at: AwareDatetime
    cause_event_id: str
    reason: str
    cycle: int = Field(0, ge=0, description="qualification cycle (increments on recycle)")


BREAKDOWN_LISTED = 50
"""How many touchpoints with points an engagement breakdown lists (the latest)."""


class ScoreItem(_Model):
    """One touchpoint's contribution to the engagement score."""

    event_id: str
    type: str
    occurred_at: AwareDatetime
    points: float
    decayed: float = Field(description="points × 0.5^(age / half-life), rounded to 3 decimals")


class EngagementScore(_Model):
    """Engagement as of `as_of` (the event time of the latest touchpoint considered)."""

    score: float = Field(description="rounded to 2 decimals")
    cycle_score: float = Field(description="engagement since the current cycle began")
    as_of: AwareDatetime | None = None
    half_life_days: float
    carried: float = Field(
        0.0,
        description="decayed contribution of the touchpoints the breakdown does not list "
        f"(compacted ones, and any before the latest {BREAKDOWN_LISTED} with points)",
    )
    breakdown: list[ScoreItem] = Field(
        default_factory=list,
        description=f"the latest {BREAKDOWN_LISTED} touchpoints with points, oldest first",
    )


class FitItem(_Model):
    """One persona attribute the person matches."""

    attribute: Literal["job_title", "company_size", "industry", "pain_points"]
    matched: list[str] = Field(description="what matched, e.g. the keyword or the size")
    points: float


class FitScore(_Model):
    """Fit against the best-matching persona."""

    score: float = Field(description="rounded to 2 decimals")
    persona: str | None = None
    breakdown: list[FitItem] = Field(default_factory=list)


class Firmographics(_Model):
    """What the person told about themselves: the latest non-empty value of each field."""

    job_title: str | None = None
    company: str | None = None
    company_size: int | None = None
    industry: str | None = None
    pain_points: list[str] = Field(default_factory=list, description="union, sorted")


class Objection(_Model):
    """An objection sales heard; open until a deal is won."""

    category: ObjectionCategory
    event_id: str
    raised_at: AwareDatetime
    note: str | None = None


class TouchpointSummary(_Model):
    """A touchpoint in a few fields (for snapshots and hand-offs)."""

    event_id: str
    type: str
    occurred_at: AwareDatetime
    source: str
    channel: str | None = None
    campaign_id: str | None = None
    message_id: str | None = None
    content_id: str | None = None


class FirstTouch(_Model):
    """The earliest person touchpoint of the journey (first-touch attribution)."""

    event_id: str
    type: str
    at: AwareDatetime
    channel: str | None = None
    campaign_id: str | None = None


class MergeEntry(_Model):
    """Another customer's journey absorbed into this one when an identity link joined them."""

    absorbed_customer_id: str
    identifiers: list[str]
    cause_event_id: str
    at: AwareDatetime


class UnmergeEntry(_Model):
    """A wrong merge undone (`tandem unmerge`): identifiers split off into another journey.

    Recorded on both sides: `other_customer_id` and `other_identifiers` name the other side.
    """

    other_customer_id: str
    other_identifiers: list[str]
    cause_id: str = Field(description="the unmerge request's id")
    at: AwareDatetime


SignalStatus = Literal["active", "revoked", "withdrawn", "superseded"]
"""active: current; revoked: a hand-off taken back; withdrawn: a nurture no longer wanted
(`nurture_withdrawn` is sent); superseded: re-issued under another id after the journey moved
to another customer id. The status is the truth: a take-back held in the settle window
(`owed`) has its status already."""


class LedgerEntry(_Model):
    """What was emitted for one signal id."""

    signal_id: str
    signal_type: str
    rule: str = Field(description="e.g. handoff, nurture.engaged, handoff_sla_breached")
    key: str = Field(description="which occurrence of the rule, e.g. the cycle")
    version: int = Field(ge=1)
    content_hash: str
    status: SignalStatus = "active"
    origin: Literal["event", "timer"] = "event"
    occurred_at: AwareDatetime
    sent: str = Field(
        "",
        description="what was last sent, materially: the material hash, or revoked/withdrawn "
        "(empty: as content_hash says)",
    )
    sent_at: AwareDatetime | None = Field(
        None, description="the journey's event time (latest touchpoint) when last sent"
    )
    owed: bool = Field(
        False, description="a material correction is held in the settle window, not sent yet"
    )


class SignalTrigger(_Model):
    """The facts behind an event-driven signal, as of its triggering touchpoint.

    Captured by the fold when the rule fires, so touchpoints after the trigger never change
    the signal; touchpoints before it (arriving late) do.
    """

    rule: Literal[
        "handoff", "nurture.engaged", "nurture.recycled", "nurture.onboarding", "nurture.churn_risk"
    ]
    key: str = Field(description="which occurrence of the rule (part of the signal id)")
    cycle: int
    event_id: str
    at: AwareDatetime
    stage: Stage
    reason: str
    identities: list[str]
    engagement: EngagementScore
    fit: FitScore
    firmographics: Firmographics
    last_marketing: list[TouchpointSummary]
    last_sales: list[TouchpointSummary]
    campaigns: list[str]
    messages: list[str]
    open_objections: list[Objection]
    unsubscribed: bool


# --- the stored record -------------------------------------------------------------------


class CompactedTouchpoint(_Model):
    """What is kept of a touchpoint folded into the compacted prefix: enough for exact
    aggregates (counts, revenue, spend, first touch) and deduplication."""

    event_id: str
    type: str
    occurred_at: AwareDatetime
    channel: str | None = None
    campaign_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    account_id: str | None = Field(None, description="identity.account_id, if it named one")


class PinnedTrigger(_Model):
    """A signal's facts computed before compaction folded some of their inputs away.

    Reused as long as the retained touchpoints between the horizon and the trigger are the
    same ones (`fingerprint`), so compaction alone never changes a signal's content.
    """

    fingerprint: str
    trigger: SignalTrigger


class UnmatchedResponse(_Model):
    """A hand-off accept or reject that names no current hand-off of this journey: recorded,
    reported, and it does not move the stage."""

    event_id: str
    type: str
    signal_id: str
    at: AwareDatetime
    reason: Literal["unknown", "stale"] = Field(
        description="unknown: no hand-off of this journey has that id; stale: it names the "
        "hand-off of an earlier cycle"
    )


class HorizonState(_Model):
    """The fold's state right after the last compacted touchpoint (resumable)."""

    stage: Stage | None = None
    cycle: int = 0
    stage_history: list[StageChange] = Field(default_factory=list)
    known: bool = False
    outbound: bool = False
    firmographics: Firmographics = Field(default_factory=Firmographics)
    open_objections: list[Objection] = Field(default_factory=list)
    campaigns: list[str] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list)
    last_marketing: list[TouchpointSummary] = Field(default_factory=list)
    last_sales: list[TouchpointSummary] = Field(default_factory=list)
    identities: list[str] = Field(default_factory=list)
    unsubscribed: bool = False
    carry_at: AwareDatetime | None = None
    carry: float = 0.0
    cycle_carry: float = 0.0
    term_started_at: AwareDatetime | None = None
    term_event_id: str | None = None
    nurtured_cycles: list[int] = Field(default_factory=list)
    wins: int = 0
    last_at: AwareDatetime | None = None
    triggers: list[SignalTrigger] = Field(default_factory=list)
    unmatched_responses: list[UnmatchedResponse] = Field(default_factory=list)
    pinned: list[PinnedTrigger] = Field(
        default_factory=list, description="facts of signals triggered after the horizon"
    )


class CompactedPrefix(_Model):
    """Touchpoints older than the horizon, folded: their state at the horizon and summaries."""

    horizon_at: AwareDatetime
    horizon_event_id: str
    playbook_version: str
    state: HorizonState
    touchpoints: list[CompactedTouchpoint] = Field(
        default_factory=list, description="sorted by (occurred_at, event_id)"
    )


class JourneyRecord(_Model):
    """One customer's journey as stored: a set of touchpoints plus bookkeeping.

    Invariants: `touchpoints` is sorted by `order_key` with unique event ids, none of which
    is among the compacted ones; `identifiers` is sorted strongest first.
    """

    customer_id: str
    version: int = Field(0, ge=0, description="bumped on every change (stale-write guard)")
    identifiers: list[str] = Field(default_factory=list)
    touchpoints: list[Touchpoint] = Field(default_factory=list)
    compacted: CompactedPrefix | None = None
    merges: list[MergeEntry] = Field(default_factory=list)
    unmerges: list[UnmergeEntry] = Field(default_factory=list)
    signal_ledger: dict[str, LedgerEntry] = Field(default_factory=dict)
    playbook_version: str | None = None

    _legacy = model_validator(mode="before")(_without_delivery_count)

    def seen_event_ids(self) -> set[str]:
        """Every event id this journey holds, retained or compacted (for deduplication)."""
        ids = {t.event_id for t in self.touchpoints}
        if self.compacted is not None:
            ids.update(t.event_id for t in self.compacted.touchpoints)
        return ids


# --- the published snapshot --------------------------------------------------------------


class SignalRef(_Model):
    """A signal in the ledger, in brief."""

    signal_id: str
    signal_type: str
    rule: str
    version: int
    status: SignalStatus
    occurred_at: AwareDatetime


class Counts(_Model):
    """How many touchpoints the journey holds (duplicates are counted by the worker's metrics,
    not here: how often an event was delivered is not part of the journey)."""

    touchpoints: int
    retained: int

    _legacy = model_validator(mode="before")(_without_delivery_count)
    by_type: dict[str, int] = Field(default_factory=dict)


class Scores(_Model):
    """Both scores with their breakdowns."""

    engagement: EngagementScore
    fit: FitScore


Money = Annotated[Decimal, Field(description="exact decimal, serialised as a string")]


class JourneySnapshot(_Model):
    """The journey as Tandem publishes it (Redis, ``journeys.state``, ``tandem journey``)."""

    customer_id: str
    version: int
    identities: list[str]
    account_id: str | None = Field(
        None,
        description="the account the person belongs to: the latest identity.account_id by "
        "event time, else (playbook accounts.domain_fallback) domain:<company email domain>",
    )
    stage: Stage
    cycle: int
    stage_history: list[StageChange]
    scores: Scores
    firmographics: Firmographics
    open_objections: list[Objection]
    campaigns: list[str]
    messages: list[str]
    unsubscribed: bool
    revenue: dict[str, Money] = Field(description="won and renewed amounts by currency")
    spend: dict[str, Money] = Field(description="spend and cost by 'campaign|currency'")
    recent_touchpoints: list[TouchpointSummary] = Field(description="the last 20, oldest first")
    last_marketing: TouchpointSummary | None
    last_sales: TouchpointSummary | None
    merges: list[MergeEntry]
    signals: list[SignalRef]
    unmatched_responses: list[UnmatchedResponse] = Field(
        default_factory=list,
        description="hand-off accepts and rejects naming no current hand-off (not applied)",
    )
    counts: Counts
    playbook_version: str
    first_touch: FirstTouch | None
    last_touch_at: datetime | None
    as_of: datetime | None
