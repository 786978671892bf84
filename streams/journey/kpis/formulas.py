"""The KPI formulas of docs/kpis.md, from a slice's sums.

Both ways of getting the sums — scanning every journey's facts (`recompute`) and summing
the incremental per-day aggregates (`aggregates`) — end here, so a formula exists once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from schemas.journey import Stage
from schemas.kpis import FunnelStep, Kpis, PersonaEngagement, StageTime, VoiceCounts
from streams.journey.kpis.units import CENT, FUNNEL, US_PER_DAY, US_PER_HOUR, as_money


@dataclass(frozen=True, slots=True)
class Dist:
    """Durations of a slice, in microseconds: how many, their sum, and twice their median.

    Twice the median is an integer (the middle value, or the sum of the two middle ones), so
    mean and median are exact until they are rounded for the report.
    """

    n: int = 0
    total: int = 0
    median2: int | None = None

    @classmethod
    def of(cls, values: Iterable[int]) -> Dist:
        ordered = sorted(values)
        n = len(ordered)
        if not n:
            return cls()
        middle = ordered[n // 2] * 2 if n % 2 else ordered[n // 2 - 1] + ordered[n // 2]
        return cls(n, sum(ordered), middle)

    def mean(self, unit: int) -> float | None:
        """The mean in `unit` microseconds (a day, an hour), 6 decimals."""
        return round(float(Fraction(self.total, self.n * unit)), 6) if self.n else None

    def median(self, unit: int) -> float | None:
        """The median in `unit` microseconds, 6 decimals."""
        if self.median2 is None:
            return None
        return round(float(Fraction(self.median2, 2 * unit)), 6)


def _zeros() -> list[int]:
    return [0] * len(FUNNEL)


@dataclass(slots=True)
class Sums:
    """What the formulas need of one slice (the whole report, a group, or a persona)."""

    journeys: int = 0
    period: list[int] = field(default_factory=_zeros)
    funnel: list[int] = field(default_factory=_zeros)
    deals_won: int = 0
    deals_lost: int = 0
    churned: int = 0
    at_start: int = 0
    exposed: int = 0
    paying: int = 0
    cycle: Dist = Dist()
    stays: dict[str, Dist] = field(default_factory=dict)
    revenue: Decimal = Decimal(0)
    revenue_previous: Decimal = Decimal(0)
    margin_weighted: Decimal = Decimal(0)
    margin_base: Decimal = Decimal(0)
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    form_views: int = 0
    form_submissions: int = 0
    handoffs: int = 0
    in_sla: int = 0
    breached: int = 0
    pending: int = 0
    touch: Dist = Dist()
    engaged: int = 0
    marketing: int = 0


def ratio(numerator: float | int, denominator: float | int) -> float | None:
    """numerator ÷ denominator to 6 decimals; None for a zero denominator."""
    return None if not denominator else round(numerator / denominator, 6)


def money_ratio(numerator: Decimal, denominator: Decimal | int) -> Decimal | None:
    """A money ratio rounded to cents; None for a zero denominator."""
    return None if not denominator else (numerator / denominator).quantize(CENT)


def kpis_of(a: Sums, ledger: tuple[Decimal, Decimal] | None, previous: bool) -> Kpis:
    """The KPIs of a slice's sums; `ledger` (spend, cost) None: not attributable to it."""
    period = a.period
    # Sums are spelled as money here, once for both paths: a sum of facts keeps its terms'
    # exponents ("3162000"), the aggregates' integer units do not ("3162000.00").
    spend, cost = (None, None) if ledger is None else (as_money(ledger[0]), as_money(ledger[1]))
    revenue_previous = as_money(a.revenue_previous) if previous else None
    churn_rate = ratio(a.churned, a.exposed)
    answers = a.promoters + a.passives + a.detractors
    return Kpis(
        journeys=a.journeys,
        leads=period[0],
        mqls=period[1],
        sals=period[2],
        sqls=period[3],
        opportunities=period[4],
        customers_won=period[5],
        deals_won=a.deals_won,
        deals_lost=a.deals_lost,
        churned=a.churned,
        funnel=_funnel_steps(a),
        lead_to_customer_rate=ratio(a.funnel[-1], a.funnel[0]),
        sales_cycle_days_mean=a.cycle.mean(US_PER_DAY),
        sales_cycle_days_median=a.cycle.median(US_PER_DAY),
        days_in_stage=_days_in_stage(a.stays),
        win_rate=ratio(a.deals_won, a.deals_won + a.deals_lost),
        revenue=as_money(a.revenue),
        revenue_previous=revenue_previous,
        revenue_growth=_revenue_growth(a.revenue, revenue_previous),
        paying_accounts=a.paying,
        average_revenue_per_account=money_ratio(a.revenue, a.paying),
        gross_margin=_gross_margin(a),
        marketing_spend=spend,
        sales_cost=cost,
        cost_per_lead=None if spend is None else money_ratio(spend, period[0]),
        customer_acquisition_cost=_acquisition_cost(spend, cost, period[-1]),
        customer_lifetime_value=_lifetime_value(a),
        customers_at_start=a.at_start,
        customers_exposed=a.exposed,
        retention_rate=None if churn_rate is None else round(1 - churn_rate, 6),
        churn_rate=churn_rate,
        nps=_net_promoter_score(a, answers),
        nps_responses=answers,
        promoters=a.promoters,
        detractors=a.detractors,
        form_views=a.form_views,
        form_submissions=a.form_submissions,
        form_conversion_rate=ratio(a.form_submissions, a.form_views),
        marketing_roi=_marketing_roi(a.revenue, spend),
        handoffs=a.handoffs,
        handoffs_in_sla=a.in_sla,
        handoffs_breached=a.breached,
        handoffs_pending=a.pending,
        handoff_sla_attainment=ratio(a.in_sla, a.in_sla + a.breached),
        handoff_to_first_sales_touch_hours_mean=a.touch.mean(US_PER_HOUR),
        handoff_to_first_sales_touch_hours_median=a.touch.median(US_PER_HOUR),
    )


def _funnel_steps(a: Sums) -> list[FunnelStep]:
    """The cohort funnel: journeys per stage, each converted from the stage before it."""
    return [
        FunnelStep(
            stage=stage, journeys=n, conversion=None if i == 0 else ratio(n, a.funnel[i - 1])
        )
        for i, (stage, n) in enumerate(zip(FUNNEL, a.funnel, strict=True))
    ]


def _revenue_growth(revenue: Decimal, previous: Decimal | None) -> float | None:
    # No revenue before (or not asked): growth is undefined, not infinite.
    if not previous:
        return None
    return round(float((revenue - previous) / previous), 6)


def _gross_margin(a: Sums) -> float | None:
    return round(float(a.margin_weighted / a.margin_base), 6) if a.margin_base else None


def _acquisition_cost(
    spend: Decimal | None, cost: Decimal | None, customers: int
) -> Decimal | None:
    # Only a slice the whole ledger is attributable to has a CAC (spend and cost both known).
    if spend is None or cost is None:
        return None
    return money_ratio(spend + cost, customers)


def _lifetime_value(a: Sums) -> Decimal | None:
    if not (a.paying and a.margin_base and a.churned):
        return None
    # ARPA × gross margin ÷ churn rate, from the unrounded sums (rounded once, at the end).
    return (
        a.revenue * a.margin_weighted * a.exposed / (a.paying * a.margin_base * a.churned)
    ).quantize(CENT)


def _net_promoter_score(a: Sums, answers: int) -> float | None:
    return round(100 * (a.promoters - a.detractors) / answers, 6) if answers else None


def _marketing_roi(revenue: Decimal, spend: Decimal | None) -> float | None:
    return round(float((revenue - spend) / spend), 6) if spend else None


def _days_in_stage(stays: Mapping[str, Dist]) -> dict[str, StageTime]:
    return {
        stage.value: StageTime(
            stays=d.n, days_mean=d.mean(US_PER_DAY), days_median=d.median(US_PER_DAY)
        )
        for stage in Stage
        if (d := stays.get(stage.value)) is not None and d.n
    }


def persona_engagement(a: Sums) -> PersonaEngagement:
    """Whether a persona's journeys convert or only engage (docs/kpis.md, feedback)."""
    customers = a.period[-1]
    verdict = "converts" if customers else ("engages_only" if a.engaged else "inactive")
    return PersonaEngagement(
        engaged=a.engaged,
        marketing_touches=a.marketing,
        touches_per_journey=ratio(a.marketing, a.engaged),
        leads=a.period[0],
        customers_won=customers,
        lead_to_customer_rate=ratio(a.funnel[-1], a.funnel[0]),
        revenue=as_money(a.revenue),
        verdict=verdict,
    )


VoiceTally = Mapping[str, Mapping[str, Mapping[str, int]]]
"""group → kind → value → how many distinct journeys said it."""


def voice_counts(tally: VoiceTally) -> dict[str, VoiceCounts]:
    """Voice counts per group, most mentioned first (ties alphabetical)."""
    out: dict[str, VoiceCounts] = {}
    for group in sorted(tally):
        kinds = tally[group]

        def count(kind: str, kinds: Mapping[str, Mapping[str, int]] = kinds) -> dict[str, int]:
            items = [(v, n) for v, n in kinds.get(kind, {}).items() if n]
            return dict(sorted(items, key=lambda kv: (-kv[1], kv[0])))

        counts = VoiceCounts(
            pain_points=count("pain_point"),
            motivations=count("motivation"),
            objections=count("objection"),
        )
        if counts.pain_points or counts.motivations or counts.objections:
            out[group] = counts
    return out
