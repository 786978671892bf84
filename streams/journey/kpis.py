"""Shared KPIs, attribution and feedback insight: pure functions over journeys. No I/O, no clock.

Exactness comes from the journeys, not from counters. A journey is already deduplicated,
merged and ordered by event time by the core; `journey_facts` reduces it to a small
`JourneyFacts` record, and `compute_kpis` aggregates the facts of every live journey for an
event-time window chosen at query time. Hence:

* a replayed or duplicated touchpoint never counts twice (the journey holds each event id once);
* a late touchpoint lands in the window of its event time (windows are evaluated at query time
  from event times, never from arrival);
* an identity merge moves the counts (the absorbed journey's facts are dropped, and the
  surviving journey's facts are re-derived from the union of touchpoints).

Every definition and formula is in ``docs/kpis.md``; this module is its implementation.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from events.envelope import Envelope
from events.vocabulary import (
    LEDGER_TYPES,
    DealWon,
    FeedbackRecorded,
    FormSubmitted,
    ObjectionRaised,
    ProspectAdded,
)
from schemas.journey import CompactedTouchpoint, JourneyRecord, Stage, StageChange
from schemas.kpis import (
    ATTRIBUTION_MODELS,
    NONE_GROUP,
    Amount,
    Attribution,
    AttributionModel,
    AttributionReport,
    DailyKpis,
    FeedbackInsight,
    FunnelStep,
    GroupBy,
    HandoffFacts,
    JourneyFacts,
    KpiReport,
    Kpis,
    LedgerItem,
    NpsResponse,
    PathSummary,
    PersonaEngagement,
    Source,
    StageEntry,
    StageTime,
    Voice,
    VoiceCounts,
    VoiceKind,
    WonDeal,
)
from schemas.playbook import Playbook
from streams.journey.record import compact_summary, derive

FUNNEL: tuple[Stage, ...] = (
    Stage.LEAD,
    Stage.MQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)
"""The funnel, in order. Reaching a stage counts as reaching every earlier one (see docs)."""

_RANK: dict[Stage, int] = {stage: rank for rank, stage in enumerate(FUNNEL)}
_RANK[Stage.CHURNED] = _RANK[Stage.CUSTOMER]  # only a customer can churn

NO_CURRENCY = "XXX"
"""ISO 4217's "no currency": renewals that name none."""

CENT = Decimal("0.01")
ATTRIBUTION_QUANTUM = Decimal("0.0001")
"""Attributed amounts keep the contract's 4 decimals, so they add up to the won revenue."""

_DAY = 86_400.0
_HOUR = 3_600.0


# === journey → facts ======================================================================


def _summaries(record: JourneyRecord) -> list[CompactedTouchpoint]:
    # Every touchpoint ever seen, compacted or retained, in (event time, event id) order: the
    # counts, amounts and paths stay exact beyond the retention cap.
    compacted = record.compacted.touchpoints if record.compacted else []
    summaries = [*compacted, *map(compact_summary, record.touchpoints)]
    summaries.sort(key=lambda s: (s.occurred_at, s.event_id))
    return summaries


@dataclass
class _PathBuilder:
    first: str | None = None
    last: str | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, value: str | None) -> None:
        if value is None:
            return
        if self.first is None:
            self.first = value
        self.last = value
        self.counts[value] += 1

    def freeze(self) -> PathSummary:
        return PathSummary(
            first=self.first, last=self.last, counts=dict(sorted(self.counts.items()))
        )


def _stage_after(
    history: Sequence[StageChange], keys: Sequence[tuple[datetime, str]], key: tuple[datetime, str]
) -> Stage | None:
    # History entries are caused by touchpoints, in fold order: the stage right after a
    # touchpoint is that of the last entry whose cause is not after it.
    index = bisect.bisect_right(keys, key)
    return history[index - 1].stage if index else None


def _voices(
    touchpoints: Iterable[Envelope],
    history: Sequence[StageChange],
    keys: Sequence[tuple[datetime, str]],
) -> tuple[list[Voice], list[NpsResponse]]:
    voices: list[Voice] = []
    nps: list[NpsResponse] = []
    for tp in touchpoints:
        said: list[tuple[VoiceKind, str]] = []
        if isinstance(tp, FormSubmitted | ProspectAdded):
            said = [("pain_point", p) for p in tp.properties.pain_points]
        elif isinstance(tp, FeedbackRecorded):
            p = tp.properties
            said = [("pain_point", x) for x in p.pain_points]
            said += [("motivation", x) for x in p.motivations]
            if p.nps is not None:
                nps.append(NpsResponse(at=tp.occurred_at, score=p.nps))
        elif isinstance(tp, ObjectionRaised):
            said = [("objection", tp.properties.category)]
        if not said:
            continue
        stage = _stage_after(history, keys, tp.order_key)
        # Normalised like the fold normalises pain points, so "Attribution " = "attribution".
        for kind, value in sorted({(k, v.strip().lower()) for k, v in said}):
            if value:
                voices.append(Voice(at=tp.occurred_at, kind=kind, value=value, stage=stage))
    return voices, nps


def journey_facts(record: JourneyRecord, playbook: Playbook) -> JourneyFacts:
    """The KPI facts of one journey under `playbook` (pure; see docs/kpis.md)."""
    state = derive(record, playbook)
    history = list(state.history)
    history_keys = [(h.entered_at, h.cause_event_id) for h in history]
    summaries = _summaries(record)
    people = [s for s in summaries if s.type not in LEDGER_TYPES]
    margins = {
        t.event_id: t.properties.gross_margin for t in record.touchpoints if isinstance(t, DealWon)
    }

    won: list[WonDeal] = []
    lost: list[datetime] = []
    renewals: list[Amount] = []
    form_views: list[datetime] = []
    form_submissions: list[datetime] = []
    marketing: list[datetime] = []
    channels, campaigns = _PathBuilder(), _PathBuilder()
    for s in people:
        if s.type == "sales.deal_won" and s.amount is not None:
            # The path is what came strictly before the win (not the win's own context).
            won.append(
                WonDeal(
                    at=s.occurred_at,
                    amount=s.amount,
                    currency=s.currency or NO_CURRENCY,
                    gross_margin=margins.get(s.event_id),
                    channels=channels.freeze(),
                    campaigns=campaigns.freeze(),
                )
            )
        elif s.type == "sales.deal_lost":
            lost.append(s.occurred_at)
        elif s.type == "sales.renewed" and s.amount is not None:
            renewals.append(
                Amount(at=s.occurred_at, amount=s.amount, currency=s.currency or NO_CURRENCY)
            )
        elif s.type == "marketing.form_viewed":
            form_views.append(s.occurred_at)
        elif s.type == "marketing.form_submitted":
            form_submissions.append(s.occurred_at)
        if s.type.startswith("marketing."):
            marketing.append(s.occurred_at)
        channels.add(s.channel)
        campaigns.add(s.campaign_id)

    ledger = [
        LedgerItem(
            kind="spend" if s.type == "marketing.spend_recorded" else "cost",
            at=s.occurred_at,
            amount=s.amount,
            currency=s.currency or NO_CURRENCY,
            campaign=s.campaign_id,
            channel=s.channel,
        )
        for s in summaries
        if s.type in LEDGER_TYPES and s.amount is not None
    ]

    sales_keys = [(s.occurred_at, s.event_id) for s in people if s.type.startswith("sales.")]
    sla = timedelta(hours=playbook.handoff.sla_hours)
    handoffs: list[HandoffFacts] = []
    for i, entry in enumerate(history):
        if entry.stage != Stage.MQL:
            continue  # every MQL entry is a hand-off (the fold fires it with the stage)
        key = (entry.entered_at, entry.cause_event_id)
        after = bisect.bisect_right(sales_keys, key)
        handoffs.append(
            HandoffFacts(
                at=entry.entered_at,
                cycle=entry.cycle,
                deadline=entry.entered_at + sla,
                answered_at=history[i + 1].entered_at if i + 1 < len(history) else None,
                first_sales_touch_at=sales_keys[after][0] if after < len(sales_keys) else None,
            )
        )

    voices, nps = _voices(record.touchpoints, history, history_keys)
    first = people[0] if people else None
    source: Source | None = None
    if first is not None:
        source = "outbound" if first.type.startswith("sales.") else "inbound"
    return JourneyFacts(
        customer_id=record.customer_id,
        version=record.version,
        playbook_version=playbook.version,
        persona=state.fit().persona,
        source=source,
        first_touch_at=None if first is None else first.occurred_at,
        first_channel=next((s.channel for s in people if s.channel), None),
        first_campaign=next((s.campaign_id for s in people if s.campaign_id), None),
        stages=[StageEntry(stage=h.stage, at=h.entered_at, cycle=h.cycle) for h in history],
        won=won,
        lost=lost,
        renewals=renewals,
        form_views=form_views,
        form_submissions=form_submissions,
        marketing_touches=marketing,
        handoffs=handoffs,
        nps=nps,
        voices=voices,
        ledger=ledger,
    )


# === facts → KPIs =========================================================================


@dataclass(frozen=True)
class Window:
    """An event-time window: `since` inclusive, `until` exclusive; None is unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"empty window: since {self.since} is not before until {self.until}")

    def __contains__(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)

    def before_end(self, at: datetime | None) -> bool:
        """Whether `at` happened by the end of the window (the report's "as of")."""
        return at is not None and (self.until is None or at < self.until)

    def previous(self) -> Window | None:
        """The same-length window just before this one (None when unbounded)."""
        if self.since is None or self.until is None:
            return None
        return Window(self.since - (self.until - self.since), self.since)


@dataclass(frozen=True)
class _Journey:
    """Facts plus what every slice needs, computed once."""

    facts: JourneyFacts
    reached: dict[Stage, datetime]

    @classmethod
    def of(cls, facts: JourneyFacts) -> _Journey:
        reached: dict[Stage, datetime] = {}
        for entry in facts.stages:
            rank = _RANK.get(entry.stage)
            if rank is None:
                continue
            for stage in FUNNEL[: rank + 1]:
                if stage not in reached or entry.at < reached[stage]:
                    reached[stage] = entry.at
        return cls(facts, reached)

    def stage_before(self, at: datetime) -> Stage | None:
        """The stage the journey was in just before `at`."""
        stage = None
        for entry in self.facts.stages:
            if entry.at >= at:
                break
            stage = entry.stage
        return stage


def _inside(at: datetime | None, window: Window) -> bool:
    return at is not None and at in window


def _ratio(numerator: float | int, denominator: float | int) -> float | None:
    return None if not denominator else round(numerator / denominator, 6)


def _money_ratio(numerator: Decimal, denominator: Decimal | int) -> Decimal | None:
    return None if not denominator else (numerator / denominator).quantize(CENT)


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def _median(values: Sequence[float]) -> float | None:
    return round(float(statistics.median(values)), 6) if values else None


def _amounts(facts: JourneyFacts) -> list[WonDeal | Amount]:
    """Revenue items: won deals and renewals."""
    return [*facts.won, *facts.renewals]


def _revenue(journeys: Iterable[_Journey], window: Window, currency: str | None) -> Decimal:
    total = Decimal(0)
    for j in journeys:
        for deal in j.facts.won:
            if deal.currency == currency and deal.at in window:
                total += deal.amount
        for renewal in j.facts.renewals:
            if renewal.currency == currency and renewal.at in window:
                total += renewal.amount
    return total


def _kpis(
    journeys: Sequence[_Journey],
    ledger: Sequence[LedgerItem] | None,
    window: Window,
    currency: str | None,
    now: datetime,
) -> Kpis:
    """The KPIs of one slice; `ledger` None: spend and cost cannot be attributed to it."""
    period = {stage: 0 for stage in FUNNEL}
    # The cohort: journeys that became a lead in the window, followed to the window's end.
    cohort = [j for j in journeys if _inside(j.reached.get(Stage.LEAD), window)]
    funnel_counts = [
        sum(1 for j in cohort if window.before_end(j.reached.get(stage))) for stage in FUNNEL
    ]
    new_journeys = deals_won = deals_lost = churned = 0
    customers_at_start = exposed = paying = 0
    cycle_days: list[float] = []
    stays: dict[Stage, list[float]] = defaultdict(list)
    revenue = weighted_margin = margin_base = Decimal(0)
    nps_scores: list[int] = []
    form_views = form_submissions = 0
    handoffs = in_sla = breached = pending = 0
    touch_hours: list[float] = []
    clock = now if window.until is None else min(now, window.until)
    for j in journeys:
        f = j.facts
        if f.first_touch_at is not None and f.first_touch_at in window:
            new_journeys += 1
        for stage, at in j.reached.items():
            if at in window:
                period[stage] += 1
        customer_at = j.reached.get(Stage.CUSTOMER)
        if customer_at is not None and customer_at in window and f.first_touch_at is not None:
            cycle_days.append((customer_at - f.first_touch_at).total_seconds() / _DAY)
        for left, entry in zip(f.stages, f.stages[1:], strict=False):
            if entry.at in window:
                stays[left.stage].append((entry.at - left.at).total_seconds() / _DAY)
        if any(e.stage == Stage.CHURNED and e.at in window for e in f.stages):
            churned += 1
        at_start = window.since is not None and j.stage_before(window.since) == Stage.CUSTOMER
        customers_at_start += at_start
        exposed += at_start or any(e.stage == Stage.CUSTOMER and e.at in window for e in f.stages)
        paid = Decimal(0)
        has_revenue = False
        for deal in f.won:
            if deal.at not in window:
                continue
            deals_won += 1
            if deal.currency == currency:
                paid += deal.amount
                has_revenue = True
                if deal.gross_margin is not None:
                    weighted_margin += deal.amount * Decimal(str(deal.gross_margin))
                    margin_base += deal.amount
        for renewal in f.renewals:
            if renewal.at in window and renewal.currency == currency:
                paid += renewal.amount
                has_revenue = True
        revenue += paid
        paying += has_revenue
        deals_lost += sum(1 for at in f.lost if at in window)
        answers = [r for r in f.nps if r.at in window]
        if answers:
            # One voice per customer: the latest answer in the window.
            nps_scores.append(max(answers, key=lambda r: r.at).score)
        form_views += sum(1 for at in f.form_views if at in window)
        form_submissions += sum(1 for at in f.form_submissions if at in window)
        for h in f.handoffs:
            if h.at not in window:
                continue
            handoffs += 1
            answered = h.answered_at if window.before_end(h.answered_at) else None
            if answered is not None:
                if answered <= h.deadline:
                    in_sla += 1
                else:
                    breached += 1
            elif h.deadline <= clock:
                breached += 1
            else:
                pending += 1
            touch = h.first_sales_touch_at
            if touch is not None and window.before_end(touch):
                touch_hours.append((touch - h.at).total_seconds() / _HOUR)

    spend = cost = None
    if ledger is not None:
        spend, cost = Decimal(0), Decimal(0)
        for item in ledger:
            if item.currency == currency and item.at in window:
                if item.kind == "spend":
                    spend += item.amount
                else:
                    cost += item.amount
    previous = window.previous()
    revenue_previous = None if previous is None else _revenue(journeys, previous, currency)
    growth = None
    if revenue_previous:
        growth = round(float((revenue - revenue_previous) / revenue_previous), 6)
    arpa = _money_ratio(revenue, paying)
    margin = round(float(weighted_margin / margin_base), 6) if margin_base else None
    churn_rate = _ratio(churned, exposed)
    clv = None
    if arpa is not None and margin is not None and churn_rate:
        clv = (arpa * Decimal(str(margin)) / Decimal(str(churn_rate))).quantize(CENT)
    promoters = sum(1 for s in nps_scores if s >= 9)
    detractors = sum(1 for s in nps_scores if s <= 6)
    nps = None
    if nps_scores:
        nps = round(100 * (promoters - detractors) / len(nps_scores), 6)
    roi = None
    if spend:
        roi = round(float((revenue - spend) / spend), 6)
    cac = None
    if spend is not None and cost is not None:
        cac = _money_ratio(spend + cost, period[Stage.CUSTOMER])
    funnel = [
        FunnelStep(
            stage=stage,
            journeys=n,
            conversion=None if i == 0 else _ratio(n, funnel_counts[i - 1]),
        )
        for i, (stage, n) in enumerate(zip(FUNNEL, funnel_counts, strict=True))
    ]
    return Kpis(
        journeys=new_journeys,
        leads=period[Stage.LEAD],
        mqls=period[Stage.MQL],
        sals=period[Stage.SAL],
        sqls=period[Stage.SQL],
        opportunities=period[Stage.OPPORTUNITY],
        customers_won=period[Stage.CUSTOMER],
        deals_won=deals_won,
        deals_lost=deals_lost,
        churned=churned,
        funnel=funnel,
        lead_to_customer_rate=_ratio(funnel_counts[-1], funnel_counts[0]),
        sales_cycle_days_mean=_mean(cycle_days),
        sales_cycle_days_median=_median(cycle_days),
        days_in_stage={
            stage.value: StageTime(
                stays=len(stays[stage]),
                days_mean=_mean(stays[stage]),
                days_median=_median(stays[stage]),
            )
            for stage in Stage
            if stays.get(stage)
        },
        win_rate=_ratio(deals_won, deals_won + deals_lost),
        revenue=revenue,
        revenue_previous=revenue_previous,
        revenue_growth=growth,
        paying_accounts=paying,
        average_revenue_per_account=arpa,
        gross_margin=margin,
        marketing_spend=spend,
        sales_cost=cost,
        cost_per_lead=None if spend is None else _money_ratio(spend, period[Stage.LEAD]),
        customer_acquisition_cost=cac,
        customer_lifetime_value=clv,
        customers_at_start=customers_at_start,
        customers_exposed=exposed,
        retention_rate=None if churn_rate is None else round(1 - churn_rate, 6),
        churn_rate=churn_rate,
        nps=nps,
        nps_responses=len(nps_scores),
        promoters=promoters,
        detractors=detractors,
        form_views=form_views,
        form_submissions=form_submissions,
        form_conversion_rate=_ratio(form_submissions, form_views),
        marketing_roi=roi,
        handoffs=handoffs,
        handoffs_in_sla=in_sla,
        handoffs_breached=breached,
        handoffs_pending=pending,
        handoff_sla_attainment=_ratio(in_sla, in_sla + breached),
        handoff_to_first_sales_touch_hours_mean=_mean(touch_hours),
        handoff_to_first_sales_touch_hours_median=_median(touch_hours),
    )


# --- attribution ---------------------------------------------------------------------------


def credits(path: PathSummary, model: AttributionModel) -> dict[str, Fraction]:
    """The share of a win each value of a path earns under `model` (shares sum to 1).

    An empty path (no touchpoint named the dimension) credits everything to `NONE_GROUP`.
    """
    n = sum(path.counts.values())
    if n == 0 or path.first is None or path.last is None:
        return {NONE_GROUP: Fraction(1)}
    shares: dict[str, Fraction] = defaultdict(Fraction)
    if model == "first_touch":
        shares[path.first] += 1
    elif model == "last_touch":
        shares[path.last] += 1
    elif model == "linear":
        for value, count in path.counts.items():
            shares[value] += Fraction(count, n)
    elif n == 1:
        shares[path.first] += 1
    elif n == 2:
        shares[path.first] += Fraction(1, 2)
        shares[path.last] += Fraction(1, 2)
    else:
        # U-shaped: 40 % to the first touch, 40 % to the last, 20 % over the ones between.
        shares[path.first] += Fraction(2, 5)
        shares[path.last] += Fraction(2, 5)
        middle = Counter(path.counts)
        middle[path.first] -= 1
        middle[path.last] -= 1
        for value, count in middle.items():
            if count:
                shares[value] += Fraction(count, 5 * (n - 2))
    return dict(shares)


def _round_to_total(exact: dict[str, Fraction], total: Decimal) -> dict[str, Decimal]:
    # Largest remainder: each value rounded down to the quantum, the missing quanta go to the
    # largest remainders, so the rounded credits add up to the total exactly.
    scale = int(1 / ATTRIBUTION_QUANTUM)
    units_total = int(total * scale)  # the contract's amounts have at most 4 decimals
    scaled = {k: v * scale for k, v in exact.items()}
    units = {k: math.floor(v) for k, v in scaled.items()}
    missing = units_total - sum(units.values())
    for k in sorted(scaled, key=lambda k: (units[k] - scaled[k], k))[: max(missing, 0)]:
        units[k] += 1
    return {k: Decimal(units[k]) * ATTRIBUTION_QUANTUM for k in sorted(units)}


def attribute(deals: Sequence[WonDeal]) -> AttributionReport:
    """Won revenue attributed to channels and campaigns under every model, side by side."""
    total = sum((d.amount for d in deals), Decimal(0))
    dims: dict[str, dict[AttributionModel, dict[str, Fraction]]] = {}
    for dim in ("channel", "campaign"):
        per_model: dict[AttributionModel, dict[str, Fraction]] = {}
        for model in ATTRIBUTION_MODELS:
            exact: dict[str, Fraction] = defaultdict(Fraction)
            for deal in deals:
                path = deal.channels if dim == "channel" else deal.campaigns
                amount = Fraction(deal.amount)
                for value, share in credits(path, model).items():
                    exact[value] += amount * share
            per_model[model] = dict(exact)
        dims[dim] = per_model

    def build(dim: str) -> Attribution:
        return Attribution(**{m: _round_to_total(dims[dim][m], total) for m in ATTRIBUTION_MODELS})

    return AttributionReport(
        won_revenue=total, deals=len(deals), channel=build("channel"), campaign=build("campaign")
    )


# --- feedback and personas -----------------------------------------------------------------


def _voice_counts(pairs: Iterable[tuple[str, str, Voice]]) -> dict[str, VoiceCounts]:
    seen: dict[str, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    for group, customer_id, voice in pairs:
        seen[group][voice.kind].add((voice.value, customer_id))
    out: dict[str, VoiceCounts] = {}
    for group in sorted(seen):
        kinds = seen[group]

        def count(kind: str, kinds: dict[str, set[tuple[str, str]]] = kinds) -> dict[str, int]:
            # Distinct journeys per value: a customer repeating a pain point is one voice.
            tally = Counter(value for value, _ in kinds.get(kind, set()))
            return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))

        out[group] = VoiceCounts(
            pain_points=count("pain_point"),
            motivations=count("motivation"),
            objections=count("objection"),
        )
    return out


def _feedback(
    journeys: Sequence[_Journey], window: Window, currency: str | None, now: datetime
) -> FeedbackInsight:
    voices = [(j, v) for j in journeys for v in j.facts.voices if v.at in window]
    by_persona = _voice_counts(
        (j.facts.persona or NONE_GROUP, j.facts.customer_id, v) for j, v in voices
    )
    by_stage = _voice_counts(
        ((v.stage.value if v.stage else NONE_GROUP), j.facts.customer_id, v) for j, v in voices
    )
    personas: dict[str, PersonaEngagement] = {}
    grouped = _group(journeys, lambda f: f.persona)
    for name, members in grouped.items():
        touches = [sum(1 for t in j.facts.marketing_touches if t in window) for j in members]
        engaged = sum(1 for n in touches if n)
        k = _kpis(members, None, window, currency, now)
        verdict = "converts" if k.customers_won else ("engages_only" if engaged else "inactive")
        personas[name] = PersonaEngagement(
            engaged=engaged,
            marketing_touches=sum(touches),
            touches_per_journey=_ratio(sum(touches), engaged),
            leads=k.leads,
            customers_won=k.customers_won,
            lead_to_customer_rate=k.lead_to_customer_rate,
            revenue=k.revenue,
            verdict=verdict,
        )
    return FeedbackInsight(by_persona=by_persona, by_stage=by_stage, personas=personas)


# --- daily series --------------------------------------------------------------------------


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _series(
    journeys: Sequence[_Journey],
    ledger: Sequence[LedgerItem],
    window: Window,
    currency: str | None,
) -> list[DailyKpis]:
    ints: dict[date, Counter[str]] = defaultdict(Counter)
    money: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    names = {
        Stage.LEAD: "leads",
        Stage.MQL: "mqls",
        Stage.SAL: "sals",
        Stage.SQL: "sqls",
        Stage.OPPORTUNITY: "opportunities",
        Stage.CUSTOMER: "customers_won",
    }

    def count(name: str, times: Iterable[datetime]) -> None:
        for at in times:
            if at in window:
                ints[_day(at)][name] += 1

    for j in journeys:
        f = j.facts
        for stage, at in j.reached.items():
            count(names[stage], [at])
        count("deals_won", (d.at for d in f.won))
        count("deals_lost", f.lost)
        # A journey churning twice on one day is one churned journey that day.
        count("churned", {_day(e.at): e.at for e in f.stages if e.stage == Stage.CHURNED}.values())
        count("handoffs", (h.at for h in f.handoffs))
        count("form_views", f.form_views)
        count("form_submissions", f.form_submissions)
        for amount in _amounts(f):
            if amount.at in window and amount.currency == currency:
                money[_day(amount.at)]["revenue"] += amount.amount
    for item in ledger:
        if item.at in window and item.currency == currency:
            key = "marketing_spend" if item.kind == "spend" else "sales_cost"
            money[_day(item.at)][key] += item.amount
    days = sorted(ints.keys() | money.keys())
    fields = (
        "leads",
        "mqls",
        "sals",
        "sqls",
        "opportunities",
        "customers_won",
        "deals_won",
        "deals_lost",
        "churned",
        "handoffs",
        "form_views",
        "form_submissions",
    )
    return [
        DailyKpis(
            day=day,
            **{name: ints[day][name] for name in fields},
            revenue=money[day]["revenue"],
            marketing_spend=money[day]["marketing_spend"],
            sales_cost=money[day]["sales_cost"],
        )
        for day in days
    ]


# --- the report ----------------------------------------------------------------------------


GROUP_KEYS: dict[GroupBy, Callable[[JourneyFacts], str | None]] = {
    "channel": lambda f: f.first_channel,
    "campaign": lambda f: f.first_campaign,
    "persona": lambda f: f.persona,
    "source": lambda f: f.source,
}
"""The value a journey is grouped under, per slicing dimension (None → `NONE_GROUP`)."""


def _group(
    journeys: Sequence[_Journey], key: Callable[[JourneyFacts], str | None]
) -> dict[str, list[_Journey]]:
    groups: dict[str, list[_Journey]] = defaultdict(list)
    for j in journeys:
        groups[key(j.facts) or NONE_GROUP].append(j)
    return dict(sorted(groups.items()))


def default_currency(facts: Iterable[JourneyFacts]) -> str | None:
    """The currency most amounts (deals, renewals, spend, cost) are in; ties: alphabetical."""
    tally: Counter[str] = Counter()
    for f in facts:
        tally.update(d.currency for d in f.won)
        tally.update(r.currency for r in f.renewals)
        tally.update(i.currency for i in f.ledger)
    tally.pop(NO_CURRENCY, None)
    if not tally:
        return None
    return min(tally, key=lambda c: (-tally[c], c))


def compute_kpis(
    facts: Iterable[JourneyFacts],
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    by: GroupBy | None = None,
    currency: str | None = None,
    daily: bool = False,
) -> KpiReport:
    """The KPI report over every journey's facts for the event-time window [since, until).

    `now` is the wall-clock time of the question (only hand-off SLA deadlines that have not
    passed yet depend on it). `currency` defaults to `default_currency`. With `by`, the same
    KPIs per group; with `daily`, the period counts per event-time day (UTC).
    """
    window = Window(since, until)
    all_facts = list(facts)
    cur = currency or default_currency(all_facts)
    journeys = [_Journey.of(f) for f in all_facts if f.first_touch_at is not None]
    ledger = [item for f in all_facts for item in f.ledger]
    total = _kpis(journeys, ledger, window, cur, now)

    groups: dict[str, Kpis] | None = None
    if by is not None:
        groups = {}
        members = _group(journeys, GROUP_KEYS[by])
        names = set(members)
        if by in ("channel", "campaign"):
            names |= {
                (item.channel if by == "channel" else item.campaign) or NONE_GROUP
                for item in ledger
            }
        for name in sorted(names):
            attributable: list[LedgerItem] | None = None
            if by in ("channel", "campaign") and name != NONE_GROUP:
                # A group sees only the ledger records that name it; the rest stays in the total.
                attributable = [
                    item
                    for item in ledger
                    if (item.channel if by == "channel" else item.campaign) == name
                ]
            groups[name] = _kpis(members.get(name, []), attributable, window, cur, now)

    other: dict[str, Decimal] = defaultdict(Decimal)
    for j in journeys:
        for amount in _amounts(j.facts):
            if amount.currency != cur and amount.at in window:
                other[amount.currency] += amount.amount
    won = [d for j in journeys for d in j.facts.won if d.at in window and d.currency == cur]
    return KpiReport(
        **total.model_dump(),
        since=since,
        until=until,
        as_of=now,
        currency=cur,
        other_currencies=dict(sorted(other.items())),
        by=by,
        groups=groups,
        attribution=attribute(won),
        feedback=_feedback(journeys, window, cur, now),
        series=_series(journeys, ledger, window, cur) if daily else None,
    )
