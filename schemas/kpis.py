"""Shared KPIs: the per-journey facts Tandem keeps, and the KPI report it answers with.

`JourneyFacts` is a small, exact summary of one journey (derived by
`streams.journey.kpis.journey_facts` from the deduplicated, merged, event-time ordered
journey). Every KPI is a pure aggregation over the facts of all live journeys
(`streams.journey.kpis.compute_kpis`), evaluated at query time for any event-time window —
so a late touchpoint lands in the window of its event time, a duplicate never counts twice and
an identity merge moves the counts (the absorbed journey's facts disappear with it).

`KpiReport` is what ``tandem kpis --json``, ``GET /v1/kpis`` and the dashboard snapshot in
Redis return. Definitions and formulas: ``docs/kpis.md``. Money is an exact decimal
(serialised as a string) in the report's `currency`; a ratio whose denominator is zero is null.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.journey import Stage


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Money = Annotated[Decimal, Field(description="exact decimal, serialised as a string")]
Micros = Annotated[
    int, Field(description="event time in microseconds since 1970-01-01T00:00:00Z (exact)")
]
"""Event times in facts: integers are exact, compact, and parse several times faster than
RFC 3339 strings — the facts of every journey are read on each KPI query."""
Rate = Annotated[float, Field(description="a ratio (0.25 = 25 %), null when undefined")]

GroupBy = Literal["channel", "campaign", "persona", "source", "account"]
"""How a report can be sliced: the journey's first-touch channel or campaign, its best-fit
persona, its source (inbound / outbound), or its account (docs/accounts.md)."""

NONE_GROUP = "(none)"
"""The group of journeys (or ledger records) without a value for the slicing dimension."""

AttributionModel = Literal["first_touch", "last_touch", "linear", "position_based"]
ATTRIBUTION_MODELS: tuple[AttributionModel, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "position_based",
)


# --- per-journey facts ---------------------------------------------------------------------


class StageEntry(_Model):
    """One entry of the journey's stage history."""

    stage: Stage
    at: Micros
    cycle: int = 0


class PathSummary(_Model):
    """The touchpoints before a win, along one dimension (channel or campaign), in brief.

    Enough for every attribution model exactly: the first and last value and how often each
    value occurs (touchpoints without a value for the dimension are left out).
    """

    first: str | None = None
    last: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class WonDeal(_Model):
    """A `sales.deal_won`: when, how much, at what margin, and the path that led to it."""

    at: Micros
    amount: Money
    currency: str
    gross_margin: float | None = None
    channels: PathSummary = Field(default_factory=PathSummary)
    campaigns: PathSummary = Field(default_factory=PathSummary)


class Amount(_Model):
    """An amount at a time (renewals)."""

    at: Micros
    amount: Money
    currency: str


class HandoffFacts(_Model):
    """A hand-off (the journey became an MQL) and how sales answered it."""

    at: Micros = Field(description="when the journey became an MQL (hand-off signal)")
    cycle: int = 0
    deadline: Micros = Field(description="hand-off time + the playbook's sla_hours")
    answered_at: Micros | None = Field(
        None, description="when the journey left MQL (accepted, rejected, or further)"
    )
    first_sales_touch_at: Micros | None = Field(
        None, description="the first sales touchpoint after the hand-off"
    )


class NpsResponse(_Model):
    """An NPS answer from `sales.feedback_recorded`."""

    at: Micros
    score: Annotated[int, Field(ge=0, le=10)]


VoiceKind = Literal["pain_point", "motivation", "objection"]


class Voice(_Model):
    """Something the customer told: a pain point, a motivation or an objection category."""

    at: Micros
    kind: VoiceKind
    value: str
    stage: Stage | None = Field(None, description="the journey's stage right after it")


LedgerKind = Literal["spend", "cost"]


class LedgerItem(_Model):
    """A spend (`marketing.spend_recorded`) or cost (`sales.cost_recorded`) record."""

    kind: LedgerKind
    at: Micros
    amount: Money
    currency: str
    campaign: str | None = None
    channel: str | None = None


Source = Literal["inbound", "outbound"]


class JourneyFacts(_Model):
    """What the KPIs need of one journey (stored in Redis, one hash field per journey)."""

    customer_id: str
    version: int = Field(0, ge=0)
    playbook_version: str | None = None
    persona: str | None = Field(None, description="best-fit persona (null: none fits)")
    source: Source | None = Field(
        None, description="outbound when the earliest person touchpoint is a sales.* event"
    )
    account: str | None = Field(None, description="the journey's account (null: none)")
    first_touch_at: Micros | None = None
    first_channel: str | None = Field(
        None, description="context.channel of the earliest touchpoint that has one"
    )
    first_campaign: str | None = Field(
        None, description="context.campaign_id of the earliest touchpoint that has one"
    )
    stages: list[StageEntry] = Field(default_factory=list)
    won: list[WonDeal] = Field(default_factory=list)
    lost: list[Micros] = Field(default_factory=list)
    renewals: list[Amount] = Field(default_factory=list)
    form_views: list[Micros] = Field(default_factory=list)
    form_submissions: list[Micros] = Field(default_factory=list)
    marketing_touches: list[Micros] = Field(default_factory=list)
    handoffs: list[HandoffFacts] = Field(default_factory=list)
    nps: list[NpsResponse] = Field(default_factory=list)
    voices: list[Voice] = Field(default_factory=list)
    ledger: list[LedgerItem] = Field(default_factory=list)


# --- the report ----------------------------------------------------------------------------


class FunnelStep(_Model):
    """One stage of the funnel of the window's lead cohort."""

    stage: Stage
    journeys: int = Field(description="journeys of the cohort that reached this stage")
    conversion: Rate | None = Field(description="journeys ÷ journeys of the previous step")


class StageTime(_Model):
    """Time spent in a stage, over the stays that ended in the window."""

    stays: int
    days_mean: float | None
    days_median: float | None


class Kpis(_Model):
    """The KPIs of one slice (the whole report, or one group of it)."""

    journeys: int = Field(description="journeys whose first touchpoint is in the window")
    leads: int
    mqls: int
    sals: int
    sqls: int
    opportunities: int
    customers_won: int
    deals_won: int
    deals_lost: int
    churned: int
    funnel: list[FunnelStep]
    lead_to_customer_rate: Rate | None
    sales_cycle_days_mean: float | None
    sales_cycle_days_median: float | None
    days_in_stage: dict[str, StageTime]
    win_rate: Rate | None
    revenue: Money
    revenue_previous: Money | None = Field(description="the same-length period just before")
    revenue_growth: Rate | None
    paying_accounts: int
    average_revenue_per_account: Money | None
    gross_margin: Rate | None
    marketing_spend: Money | None = Field(description="null: not attributable to this group")
    sales_cost: Money | None = Field(description="null: not attributable to this group")
    cost_per_lead: Money | None
    customer_acquisition_cost: Money | None
    customer_lifetime_value: Money | None
    customers_at_start: int
    customers_exposed: int = Field(description="customers at the start + becoming one in it")
    retention_rate: Rate | None
    churn_rate: Rate | None
    nps: float | None = Field(description="-100 … 100")
    nps_responses: int
    promoters: int
    detractors: int
    form_views: int
    form_submissions: int
    form_conversion_rate: Rate | None
    marketing_roi: Rate | None
    handoffs: int
    handoffs_in_sla: int
    handoffs_breached: int
    handoffs_pending: int
    handoff_sla_attainment: Rate | None
    handoff_to_first_sales_touch_hours_mean: float | None
    handoff_to_first_sales_touch_hours_median: float | None


class Attribution(_Model):
    """Won revenue credited to the values of one dimension under each model."""

    first_touch: dict[str, Money]
    last_touch: dict[str, Money]
    linear: dict[str, Money]
    position_based: dict[str, Money] = Field(
        description="U-shaped: 40 % first, 40 % last, 20 % split over the touchpoints between"
    )


class AttributionReport(_Model):
    """Won revenue of the window attributed to channels and to campaigns, side by side."""

    won_revenue: Money
    deals: int
    channel: Attribution
    campaign: Attribution


class VoiceCounts(_Model):
    """How many journeys mentioned each pain point, motivation and objection category."""

    pain_points: dict[str, int] = Field(default_factory=dict)
    motivations: dict[str, int] = Field(default_factory=dict)
    objections: dict[str, int] = Field(default_factory=dict)


class PersonaEngagement(_Model):
    """Whether a persona converts or only engages."""

    engaged: int = Field(description="journeys with a marketing touchpoint in the window")
    marketing_touches: int
    touches_per_journey: float | None
    leads: int
    customers_won: int
    lead_to_customer_rate: Rate | None
    revenue: Money
    verdict: Literal["converts", "engages_only", "inactive"]


class FeedbackInsight(_Model):
    """Customer feedback aggregated by persona and by stage, and persona conversion."""

    by_persona: dict[str, VoiceCounts]
    by_stage: dict[str, VoiceCounts]
    personas: dict[str, PersonaEngagement]


class DailyKpis(_Model):
    """The period counts of one event-time day (UTC)."""

    day: date
    leads: int
    mqls: int
    sals: int
    sqls: int
    opportunities: int
    customers_won: int
    deals_won: int
    deals_lost: int
    churned: int
    handoffs: int
    form_views: int
    form_submissions: int
    revenue: Money
    marketing_spend: Money
    sales_cost: Money


class KpiReport(Kpis):
    """Tandem's shared KPIs for an event-time window: one live truth for marketing and sales.

    The KPI names are at the top level (``leads``, ``mqls``, … ``handoff_sla_attainment``);
    with `by`, the same names appear per group under `groups`. Definitions: docs/kpis.md.
    """

    since: AwareDatetime | None = Field(description="window start (inclusive, event time)")
    until: AwareDatetime | None = Field(description="window end (exclusive, event time)")
    as_of: AwareDatetime = Field(description="when the report was computed (wall clock)")
    currency: str | None = Field(description="money KPIs are in this currency only")
    other_currencies: dict[str, Money] = Field(
        default_factory=dict, description="revenue in other currencies, left out (no FX)"
    )
    by: GroupBy | None = None
    groups: dict[str, Kpis] | None = None
    attribution: AttributionReport
    feedback: FeedbackInsight
    series: list[DailyKpis] | None = Field(None, description="per event-time day, if asked")
