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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

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
from streams.journey.view import NO_CURRENCY

FUNNEL: tuple[Stage, ...] = (
    Stage.LEAD,
    Stage.MQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)
"""The funnel, in order. Reaching a stage counts as reaching every earlier one (see docs)."""

_RANK: dict[str, int] = {stage.value: rank for rank, stage in enumerate(FUNNEL)}
_RANK[Stage.CHURNED.value] = _RANK[Stage.CUSTOMER.value]  # only a customer can churn

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
                nps.append(NpsResponse(at=micros(tp.occurred_at), score=p.nps))
        elif isinstance(tp, ObjectionRaised):
            said = [("objection", tp.properties.category)]
        if not said:
            continue
        stage = _stage_after(history, keys, tp.order_key)
        # Normalised like the fold normalises pain points, so "Attribution " = "attribution".
        for kind, value in sorted({(k, v.strip().lower()) for k, v in said}):
            if value:
                voices.append(Voice(at=micros(tp.occurred_at), kind=kind, value=value, stage=stage))
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
    lost: list[int] = []
    renewals: list[Amount] = []
    form_views: list[int] = []
    form_submissions: list[int] = []
    marketing: list[int] = []
    channels, campaigns = _PathBuilder(), _PathBuilder()
    for s in people:
        if s.type == "sales.deal_won" and s.amount is not None:
            # The path is what came strictly before the win (not the win's own context).
            won.append(
                WonDeal(
                    at=micros(s.occurred_at),
                    amount=s.amount,
                    currency=s.currency or NO_CURRENCY,
                    gross_margin=margins.get(s.event_id),
                    channels=channels.freeze(),
                    campaigns=campaigns.freeze(),
                )
            )
        elif s.type == "sales.deal_lost":
            lost.append(micros(s.occurred_at))
        elif s.type == "sales.renewed" and s.amount is not None:
            renewals.append(
                Amount(
                    at=micros(s.occurred_at), amount=s.amount, currency=s.currency or NO_CURRENCY
                )
            )
        elif s.type == "marketing.form_viewed":
            form_views.append(micros(s.occurred_at))
        elif s.type == "marketing.form_submitted":
            form_submissions.append(micros(s.occurred_at))
        if s.type.startswith("marketing."):
            marketing.append(micros(s.occurred_at))
        channels.add(s.channel)
        campaigns.add(s.campaign_id)

    ledger = [
        LedgerItem(
            kind="spend" if s.type == "marketing.spend_recorded" else "cost",
            at=micros(s.occurred_at),
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
                at=micros(entry.entered_at),
                cycle=entry.cycle,
                deadline=micros(entry.entered_at + sla),
                answered_at=micros(history[i + 1].entered_at) if i + 1 < len(history) else None,
                first_sales_touch_at=(
                    micros(sales_keys[after][0]) if after < len(sales_keys) else None
                ),
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
        first_touch_at=None if first is None else micros(first.occurred_at),
        first_channel=next((s.channel for s in people if s.channel), None),
        first_campaign=next((s.campaign_id for s in people if s.campaign_id), None),
        stages=[StageEntry(stage=h.stage, at=micros(h.entered_at), cycle=h.cycle) for h in history],
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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_DAY = 86_400_000_000
_US_PER_HOUR = 3_600_000_000
_FOREVER = 1 << 62


def micros(at: datetime) -> int:
    """An aware datetime as exact microseconds since the Unix epoch (the facts' time unit)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    """Microseconds since the Unix epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class Window:
    """An event-time window: `since` inclusive, `until` exclusive; None is unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"empty window: since {self.since} is not before until {self.until}")

    @property
    def bounds(self) -> tuple[int, int]:
        """[lo, hi) in microseconds, with far-away sentinels for open ends."""
        lo = -_FOREVER if self.since is None else micros(self.since)
        hi = _FOREVER if self.until is None else micros(self.until)
        return lo, hi

    def previous(self) -> Window | None:
        """The same-length window just before this one (None when unbounded)."""
        if self.since is None or self.until is None:
            return None
        return Window(self.since - (self.until - self.since), self.since)


# --- facts, loaded for aggregation ---------------------------------------------------------

WonTuple = tuple[int, Decimal, str, float | None, Mapping[str, Any], Mapping[str, Any]]
LedgerTuple = tuple[str, int, Decimal, str, str | None, str | None]


@dataclass(slots=True)
class _Journey:
    """A journey's facts as plain tuples and integers: the hot loop touches nothing else."""

    customer_id: str
    persona: str | None
    source: str | None
    channel: str | None
    campaign: str | None
    first: int | None
    stages: list[tuple[str, int]]
    reached: dict[str, int]
    won: list[WonTuple]
    lost: list[int]
    renewals: list[tuple[int, Decimal, str]]
    form_views: list[int]
    form_submissions: list[int]
    marketing: list[int]
    handoffs: list[tuple[int, int, int | None, int | None]]
    nps: list[tuple[int, int]]
    voices: list[tuple[int, str, str, str | None]]
    ledger: list[LedgerTuple]


def _load(facts: JourneyFacts | Mapping[str, Any]) -> _Journey:
    # Mappings are the stored JSON decoded as is: the read path skips model validation (the
    # worker validated the facts when it built them), which is most of a query's time.
    d: Mapping[str, Any] = facts.model_dump() if isinstance(facts, JourneyFacts) else facts
    stages = [(str(e["stage"]), e["at"]) for e in d.get("stages", ())]
    reached: dict[str, int] = {}
    for stage, at in stages:
        rank = _RANK.get(stage)
        if rank is None:
            continue
        for earlier in _FUNNEL_VALUES[: rank + 1]:
            known = reached.get(earlier)
            if known is None or at < known:
                reached[earlier] = at
    return _Journey(
        customer_id=d["customer_id"],
        persona=d.get("persona"),
        source=d.get("source"),
        channel=d.get("first_channel"),
        campaign=d.get("first_campaign"),
        first=d.get("first_touch_at"),
        stages=stages,
        reached=reached,
        won=[
            (
                w["at"],
                Decimal(w["amount"]),
                w["currency"],
                w.get("gross_margin"),
                w.get("channels") or {},
                w.get("campaigns") or {},
            )
            for w in d.get("won", ())
        ],
        lost=list(d.get("lost", ())),
        renewals=[(r["at"], Decimal(r["amount"]), r["currency"]) for r in d.get("renewals", ())],
        form_views=list(d.get("form_views", ())),
        form_submissions=list(d.get("form_submissions", ())),
        marketing=list(d.get("marketing_touches", ())),
        handoffs=[
            (h["at"], h["deadline"], h.get("answered_at"), h.get("first_sales_touch_at"))
            for h in d.get("handoffs", ())
        ],
        nps=[(r["at"], r["score"]) for r in d.get("nps", ())],
        voices=[(v["at"], v["kind"], v["value"], v.get("stage")) for v in d.get("voices", ())],
        ledger=[
            (
                i["kind"],
                i["at"],
                Decimal(i["amount"]),
                i["currency"],
                i.get("campaign"),
                i.get("channel"),
            )
            for i in d.get("ledger", ())
        ],
    )


_FUNNEL_VALUES: tuple[str, ...] = tuple(stage.value for stage in FUNNEL)


# --- one pass per journey, accumulated per slice -------------------------------------------


@dataclass(frozen=True)
class _Context:
    lo: int
    hi: int
    prev_lo: int | None
    prev_hi: int | None
    currency: str | None
    clock: int  # now, or the window's end if earlier: deadlines not passed by then are pending


@dataclass(slots=True)
class _Acc:
    """Sums and samples of a slice; one journey's contribution is an `_Acc` as well."""

    journeys: int = 0
    period: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    funnel: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    deals_won: int = 0
    deals_lost: int = 0
    churned: int = 0
    at_start: int = 0
    exposed: int = 0
    paying: int = 0
    cycle_days: list[float] = field(default_factory=list)
    stays: dict[str, list[float]] = field(default_factory=dict)
    revenue: Decimal = Decimal(0)
    revenue_previous: Decimal = Decimal(0)
    margin_weighted: Decimal = Decimal(0)
    margin_base: Decimal = Decimal(0)
    nps: list[int] = field(default_factory=list)
    form_views: int = 0
    form_submissions: int = 0
    handoffs: int = 0
    in_sla: int = 0
    breached: int = 0
    pending: int = 0
    touch_hours: list[float] = field(default_factory=list)
    engaged: int = 0
    marketing: int = 0

    def merge(self, c: _Acc) -> None:
        """Add another slice (or one journey's contribution) to this one."""
        self.journeys += c.journeys
        for i in range(len(FUNNEL)):
            self.period[i] += c.period[i]
            self.funnel[i] += c.funnel[i]
        self.deals_won += c.deals_won
        self.deals_lost += c.deals_lost
        self.churned += c.churned
        self.at_start += c.at_start
        self.exposed += c.exposed
        self.paying += c.paying
        self.cycle_days += c.cycle_days
        for stage, days in c.stays.items():
            self.stays.setdefault(stage, []).extend(days)
        self.revenue += c.revenue
        self.revenue_previous += c.revenue_previous
        self.margin_weighted += c.margin_weighted
        self.margin_base += c.margin_base
        self.nps += c.nps
        self.form_views += c.form_views
        self.form_submissions += c.form_submissions
        self.handoffs += c.handoffs
        self.in_sla += c.in_sla
        self.breached += c.breached
        self.pending += c.pending
        self.touch_hours += c.touch_hours
        self.engaged += c.engaged
        self.marketing += c.marketing


def _accumulate(j: _Journey, x: _Context, targets: Sequence[_Acc]) -> None:
    """Add what one journey contributes to every slice it belongs to (see docs/kpis.md).

    Computed once per journey and added to each target: the journey loop is the hot path.
    """
    lo, hi, cur = x.lo, x.hi, x.currency
    first = j.first
    new = first is not None and lo <= first < hi
    reached = j.reached
    period = [i for i, s in enumerate(_FUNNEL_VALUES) if lo <= reached.get(s, _NEVER) < hi]
    funnel: list[int] = []
    if period and period[0] == 0:
        # The window's lead cohort, followed to the window's end.
        funnel = [i for i, s in enumerate(_FUNNEL_VALUES) if reached.get(s, _NEVER) < hi]
    customer_at = reached.get(_CUSTOMER)
    cycle = None
    if customer_at is not None and lo <= customer_at < hi and first is not None:
        cycle = (customer_at - first) / _US_PER_DAY
    stays: list[tuple[str, float]] = []
    before = None
    churned = exposed = False
    stages = j.stages
    for i, (stage, at) in enumerate(stages):
        if at < lo:
            before = stage
        elif at < hi:
            if i:
                left, left_at = stages[i - 1]
                stays.append((left, (at - left_at) / _US_PER_DAY))
            if stage == _CHURNED:
                churned = True
            elif stage == _CUSTOMER:
                exposed = True
    at_start = before == _CUSTOMER and lo > -_FOREVER
    exposed = exposed or at_start
    deals_won = 0
    revenue = revenue_previous = margin_weighted = margin_base = _ZERO
    paid = False
    for at, amount, currency, margin, _, _ in j.won:
        if lo <= at < hi:
            deals_won += 1
            if currency == cur:
                revenue += amount
                paid = True
                if margin is not None:
                    margin_weighted += amount * Decimal(str(margin))
                    margin_base += amount
        elif x.prev_lo is not None and x.prev_lo <= at < lo and currency == cur:
            revenue_previous += amount
    for at, amount, currency in j.renewals:
        if currency != cur:
            continue
        if lo <= at < hi:
            revenue += amount
            paid = True
        elif x.prev_lo is not None and x.prev_lo <= at < lo:
            revenue_previous += amount
    deals_lost = sum(1 for at in j.lost if lo <= at < hi)
    answers = [(at, score) for at, score in j.nps if lo <= at < hi]
    nps = max(answers)[1] if answers else None  # one voice per customer: the latest answer
    form_views = sum(1 for at in j.form_views if lo <= at < hi)
    form_submissions = sum(1 for at in j.form_submissions if lo <= at < hi)
    marketing = sum(1 for at in j.marketing if lo <= at < hi)
    handoffs = in_sla = breached = pending = 0
    touch_hours: list[float] = []
    for at, deadline, answered, touch in j.handoffs:
        if not lo <= at < hi:
            continue
        handoffs += 1
        if answered is not None and answered < hi:
            if answered <= deadline:
                in_sla += 1
            else:
                breached += 1
        elif deadline <= x.clock:
            breached += 1
        else:
            pending += 1
        if touch is not None and touch < hi:
            touch_hours.append((touch - at) / _US_PER_HOUR)

    for a in targets:
        a.journeys += new
        for i in period:
            a.period[i] += 1
        for i in funnel:
            a.funnel[i] += 1
        if cycle is not None:
            a.cycle_days.append(cycle)
        for stage, days in stays:
            a.stays.setdefault(stage, []).append(days)
        a.churned += churned
        a.at_start += at_start
        a.exposed += exposed
        a.deals_won += deals_won
        a.deals_lost += deals_lost
        if paid:
            a.paying += 1
            a.revenue += revenue
            a.margin_weighted += margin_weighted
            a.margin_base += margin_base
        a.revenue_previous += revenue_previous
        if nps is not None:
            a.nps.append(nps)
        a.form_views += form_views
        a.form_submissions += form_submissions
        a.marketing += marketing
        a.engaged += marketing > 0
        if handoffs:
            a.handoffs += handoffs
            a.in_sla += in_sla
            a.breached += breached
            a.pending += pending
            a.touch_hours += touch_hours


_NEVER = _FOREVER + 1  # a reach time that is in no window (and after every window's end)
_ZERO = Decimal(0)
_CUSTOMER = Stage.CUSTOMER.value
_CHURNED = Stage.CHURNED.value


def _inside(at: datetime | None, window: Window) -> bool:
    lo, hi = window.bounds
    return at is not None and lo <= micros(at) < hi


def _ratio(numerator: float | int, denominator: float | int) -> float | None:
    return None if not denominator else round(numerator / denominator, 6)


def _money_ratio(numerator: Decimal, denominator: Decimal | int) -> Decimal | None:
    return None if not denominator else (numerator / denominator).quantize(CENT)


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def _median(values: Sequence[float]) -> float | None:
    return round(float(statistics.median(values)), 6) if values else None


def _kpis(a: _Acc, ledger: tuple[Decimal, Decimal] | None, previous: bool) -> Kpis:
    """The KPIs of a slice's sums; `ledger` (spend, cost) None: not attributable to it."""
    period = a.period
    customers = period[-1]
    spend, cost = (None, None) if ledger is None else ledger
    revenue_previous = a.revenue_previous if previous else None
    growth = None
    if revenue_previous:
        growth = round(float((a.revenue - revenue_previous) / revenue_previous), 6)
    arpa = _money_ratio(a.revenue, a.paying)
    margin = round(float(a.margin_weighted / a.margin_base), 6) if a.margin_base else None
    churn_rate = _ratio(a.churned, a.exposed)
    clv = None
    if a.paying and a.margin_base and a.churned:
        # ARPA × gross margin ÷ churn rate, from the unrounded sums (rounded once, at the end).
        clv = (
            a.revenue * a.margin_weighted * a.exposed / (a.paying * a.margin_base * a.churned)
        ).quantize(CENT)
    promoters = sum(1 for s in a.nps if s >= 9)
    detractors = sum(1 for s in a.nps if s <= 6)
    nps = round(100 * (promoters - detractors) / len(a.nps), 6) if a.nps else None
    roi = round(float((a.revenue - spend) / spend), 6) if spend else None
    cac = None
    if spend is not None and cost is not None:
        cac = _money_ratio(spend + cost, customers)
    funnel = [
        FunnelStep(
            stage=stage, journeys=n, conversion=None if i == 0 else _ratio(n, a.funnel[i - 1])
        )
        for i, (stage, n) in enumerate(zip(FUNNEL, a.funnel, strict=True))
    ]
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
        funnel=funnel,
        lead_to_customer_rate=_ratio(a.funnel[-1], a.funnel[0]),
        sales_cycle_days_mean=_mean(a.cycle_days),
        sales_cycle_days_median=_median(a.cycle_days),
        days_in_stage={
            stage.value: StageTime(
                stays=len(a.stays[stage.value]),
                days_mean=_mean(a.stays[stage.value]),
                days_median=_median(a.stays[stage.value]),
            )
            for stage in Stage
            if a.stays.get(stage.value)
        },
        win_rate=_ratio(a.deals_won, a.deals_won + a.deals_lost),
        revenue=a.revenue,
        revenue_previous=revenue_previous,
        revenue_growth=growth,
        paying_accounts=a.paying,
        average_revenue_per_account=arpa,
        gross_margin=margin,
        marketing_spend=spend,
        sales_cost=cost,
        cost_per_lead=None if spend is None else _money_ratio(spend, period[0]),
        customer_acquisition_cost=cac,
        customer_lifetime_value=clv,
        customers_at_start=a.at_start,
        customers_exposed=a.exposed,
        retention_rate=None if churn_rate is None else round(1 - churn_rate, 6),
        churn_rate=churn_rate,
        nps=nps,
        nps_responses=len(a.nps),
        promoters=promoters,
        detractors=detractors,
        form_views=a.form_views,
        form_submissions=a.form_submissions,
        form_conversion_rate=_ratio(a.form_submissions, a.form_views),
        marketing_roi=roi,
        handoffs=a.handoffs,
        handoffs_in_sla=a.in_sla,
        handoffs_breached=a.breached,
        handoffs_pending=a.pending,
        handoff_sla_attainment=_ratio(a.in_sla, a.in_sla + a.breached),
        handoff_to_first_sales_touch_hours_mean=_mean(a.touch_hours),
        handoff_to_first_sales_touch_hours_median=_median(a.touch_hours),
    )


# --- attribution ---------------------------------------------------------------------------


def _credit_terms(path: Mapping[str, Any], model: str) -> list[tuple[str, int, int]]:
    # (value, numerator, denominator) of each share: integers keep the sums exact and fast.
    counts: Mapping[str, int] = path.get("counts") or {}
    first, last = path.get("first"), path.get("last")
    n = sum(counts.values())
    if n == 0 or first is None or last is None:
        return [(NONE_GROUP, 1, 1)]
    if model == "first_touch":
        return [(first, 1, 1)]
    if model == "last_touch":
        return [(last, 1, 1)]
    if model == "linear":
        return [(value, count, n) for value, count in counts.items()]
    if n == 1:
        return [(first, 1, 1)]
    if n == 2:
        return [(first, 1, 2), (last, 1, 2)]
    # U-shaped: 40 % to the first touch, 40 % to the last, 20 % over the ones between.
    terms = [(first, 2, 5), (last, 2, 5)]
    middle = dict(counts)
    middle[first] -= 1
    middle[last] -= 1
    terms += [(value, count, 5 * (n - 2)) for value, count in middle.items() if count]
    return terms


def credits(path: PathSummary, model: AttributionModel) -> dict[str, Fraction]:
    """The share of a win each value of a path earns under `model` (shares sum to 1).

    An empty path (no touchpoint named the dimension) credits everything to `NONE_GROUP`.
    """
    shares: dict[str, Fraction] = defaultdict(Fraction)
    for value, numerator, denominator in _credit_terms(path.model_dump(), model):
        shares[value] += Fraction(numerator, denominator)
    return dict(shares)


_SCALE = int(1 / ATTRIBUTION_QUANTUM)


class _Attribution:
    """Exact credit sums: per (dimension, model, value, denominator), integer quanta."""

    def __init__(self) -> None:
        self.total = Decimal(0)
        self.deals = 0
        self.sums: dict[tuple[str, str, str, int], int] = defaultdict(int)

    def add(
        self, amount: Decimal, channels: Mapping[str, Any], campaigns: Mapping[str, Any]
    ) -> None:
        """Credit one won deal along both dimensions under every model."""
        self.total += amount
        self.deals += 1
        units = int(amount * _SCALE)  # the contract's amounts have at most 4 decimals
        for dim, path in (("channel", channels), ("campaign", campaigns)):
            for model in ATTRIBUTION_MODELS:
                for value, numerator, denominator in _credit_terms(path, model):
                    self.sums[dim, model, value, denominator] += units * numerator

    def report(self) -> AttributionReport:
        exact: dict[tuple[str, str], dict[str, Fraction]] = defaultdict(dict)
        for (dim, model, value, denominator), units in self.sums.items():
            shares = exact[dim, model]
            shares[value] = shares.get(value, Fraction(0)) + Fraction(units, denominator)

        def build(dim: str) -> Attribution:
            return Attribution(
                **{
                    m: _round_to_total(exact[dim, m], int(self.total * _SCALE))
                    for m in ATTRIBUTION_MODELS
                }
            )

        return AttributionReport(
            won_revenue=self.total,
            deals=self.deals,
            channel=build("channel"),
            campaign=build("campaign"),
        )


def _round_to_total(exact: Mapping[str, Fraction], units_total: int) -> dict[str, Decimal]:
    # Largest remainder: each credit rounded down to the quantum, the missing quanta go to the
    # largest remainders, so the rounded credits add up to the won revenue exactly.
    units = {k: math.floor(v) for k, v in exact.items()}
    missing = units_total - sum(units.values())
    for k in sorted(exact, key=lambda k: (units[k] - exact[k], k))[: max(missing, 0)]:
        units[k] += 1
    return {k: Decimal(units[k]) * ATTRIBUTION_QUANTUM for k in sorted(units)}


def attribute(deals: Sequence[WonDeal]) -> AttributionReport:
    """Won revenue attributed to channels and campaigns under every model, side by side."""
    acc = _Attribution()
    for deal in deals:
        acc.add(deal.amount, deal.channels.model_dump(), deal.campaigns.model_dump())
    return acc.report()


# --- feedback ------------------------------------------------------------------------------


def _voice_counts(seen: Mapping[str, Mapping[str, set[tuple[str, str]]]]) -> dict[str, VoiceCounts]:
    out: dict[str, VoiceCounts] = {}
    for group in sorted(seen):
        kinds = seen[group]

        def count(kind: str, kinds: Mapping[str, set[tuple[str, str]]] = kinds) -> dict[str, int]:
            # Distinct journeys per value: a customer repeating a pain point is one voice.
            tally = Counter(value for value, _ in kinds.get(kind, set()))
            return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))

        out[group] = VoiceCounts(
            pain_points=count("pain_point"),
            motivations=count("motivation"),
            objections=count("objection"),
        )
    return out


def _persona(a: _Acc, x: _Context) -> PersonaEngagement:
    customers = a.period[-1]
    verdict = "converts" if customers else ("engages_only" if a.engaged else "inactive")
    return PersonaEngagement(
        engaged=a.engaged,
        marketing_touches=a.marketing,
        touches_per_journey=_ratio(a.marketing, a.engaged),
        leads=a.period[0],
        customers_won=customers,
        lead_to_customer_rate=_ratio(a.funnel[-1], a.funnel[0]),
        revenue=a.revenue,
        verdict=verdict,
    )


# --- daily series --------------------------------------------------------------------------

_SERIES_COUNTS = (
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
_EPOCH_DAY = EPOCH.date()


class _Series:
    def __init__(self, x: _Context) -> None:
        self.x = x
        self.ints: dict[int, Counter[str]] = defaultdict(Counter)
        self.money: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

    def _count(self, name: str, times: Iterable[int]) -> None:
        lo, hi = self.x.lo, self.x.hi
        for at in times:
            if lo <= at < hi:
                self.ints[at // _US_PER_DAY][name] += 1

    def _money(self, name: str, at: int, amount: Decimal, currency: str) -> None:
        if self.x.lo <= at < self.x.hi and currency == self.x.currency:
            self.money[at // _US_PER_DAY][name] += amount

    def add(self, j: _Journey) -> None:
        for name, stage in zip(_SERIES_COUNTS, _FUNNEL_VALUES, strict=False):
            at = j.reached.get(stage)
            if at is not None:
                self._count(name, (at,))
        self._count("deals_won", (w[0] for w in j.won))
        self._count("deals_lost", j.lost)
        # A journey churning twice on one day is one churned journey that day.
        churn_days = {at // _US_PER_DAY: at for stage, at in j.stages if stage == _CHURNED}
        self._count("churned", churn_days.values())
        self._count("handoffs", (h[0] for h in j.handoffs))
        self._count("form_views", j.form_views)
        self._count("form_submissions", j.form_submissions)
        for w in j.won:
            self._money("revenue", w[0], w[1], w[2])
        for at, amount, currency in j.renewals:
            self._money("revenue", at, amount, currency)

    def add_ledger(self, item: LedgerTuple) -> None:
        kind, at, amount, currency, _, _ = item
        self._money("marketing_spend" if kind == "spend" else "sales_cost", at, amount, currency)

    def days(self) -> list[DailyKpis]:
        return [
            DailyKpis(
                day=_EPOCH_DAY + timedelta(days=index),
                **{name: self.ints[index][name] for name in _SERIES_COUNTS},
                revenue=self.money[index]["revenue"],
                marketing_spend=self.money[index]["marketing_spend"],
                sales_cost=self.money[index]["sales_cost"],
            )
            for index in sorted(self.ints.keys() | self.money.keys())
        ]


# --- the report ----------------------------------------------------------------------------


GROUP_KEYS: dict[GroupBy, Callable[[_Journey], str | None]] = {
    "channel": lambda j: j.channel,
    "campaign": lambda j: j.campaign,
    "persona": lambda j: j.persona,
    "source": lambda j: j.source,
}
"""The value a journey is grouped under, per slicing dimension (None → `NONE_GROUP`)."""


_LEDGER_KEYS: dict[GroupBy, Callable[[LedgerTuple], str | None]] = {
    "channel": lambda item: item[5],
    "campaign": lambda item: item[4],
}
"""Spend and cost can be attributed to channel and campaign groups only (by what they name)."""


def _ledger_sums(ledger: Iterable[LedgerTuple], x: _Context) -> tuple[Decimal, Decimal]:
    spend, cost = Decimal(0), Decimal(0)
    for kind, at, amount, currency, _, _ in ledger:
        if x.lo <= at < x.hi and currency == x.currency:
            if kind == "spend":
                spend += amount
            else:
                cost += amount
    return spend, cost


def default_currency(facts: Iterable[JourneyFacts | Mapping[str, Any]]) -> str | None:
    """The currency most amounts (deals, renewals, spend, cost) are in; ties: alphabetical."""
    return _default_currency([_load(f) for f in facts])


def _default_currency(journeys: Iterable[_Journey]) -> str | None:
    tally: Counter[str] = Counter()
    for j in journeys:
        if j.won or j.renewals or j.ledger:  # most journeys have no amounts at all
            tally.update(w[2] for w in j.won)
            tally.update(r[2] for r in j.renewals)
            tally.update(i[3] for i in j.ledger)
    tally.pop(NO_CURRENCY, None)
    if not tally:
        return None
    return min(tally, key=lambda c: (-tally[c], c))


def compute_kpis(
    facts: Iterable[JourneyFacts | Mapping[str, Any]],
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    by: GroupBy | None = None,
    currency: str | None = None,
    daily: bool = False,
) -> KpiReport:
    """The KPI report over every journey's facts for the event-time window [since, until).

    `facts` are `JourneyFacts`, or their stored JSON decoded to mappings (the fast path of
    the read side). `now` is the wall-clock time of the question: only whether an unanswered
    hand-off is pending or breached depends on it. `currency` defaults to the most used one.
    With `by`, the same KPIs per group; with `daily`, the period counts per event-time day.
    """
    window = Window(since, until)
    loaded = [_load(f) for f in facts]
    cur = currency or _default_currency(loaded)
    lo, hi = window.bounds
    previous = window.previous()
    plo, phi = previous.bounds if previous is not None else (None, None)
    x = _Context(lo, hi, plo, phi, cur, min(micros(now), hi))
    ledger = [item for j in loaded for item in j.ledger]

    personas: dict[str, _Acc] = defaultdict(_Acc)
    groups: dict[str, _Acc] = defaultdict(_Acc)
    key = GROUP_KEYS[by] if by is not None else None
    attribution = _Attribution()
    by_persona: dict[str, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    by_stage: dict[str, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    other: dict[str, Decimal] = defaultdict(Decimal)
    series = _Series(x) if daily else None
    for j in loaded:
        if j.first is None:
            continue  # no person touchpoint: the spend and cost ledger
        persona = personas[j.persona or NONE_GROUP]
        if key is None:
            _accumulate(j, x, (persona,))
        else:
            _accumulate(j, x, (persona, groups[key(j) or NONE_GROUP]))
        for at, amount, currency_, _, channels, campaigns in j.won:
            if lo <= at < hi:
                if currency_ == cur:
                    attribution.add(amount, channels, campaigns)
                else:
                    other[currency_] += amount
        for at, amount, currency_ in j.renewals:
            if lo <= at < hi and currency_ != cur:
                other[currency_] += amount
        for at, kind, value, stage in j.voices:
            if lo <= at < hi:
                by_persona[j.persona or NONE_GROUP][kind].add((value, j.customer_id))
                by_stage[stage or NONE_GROUP][kind].add((value, j.customer_id))
        if series is not None:
            series.add(j)
    if series is not None:
        for item in ledger:
            series.add_ledger(item)

    total = _Acc()
    for slice_ in personas.values():
        total.merge(slice_)  # every journey is in exactly one persona slice
    has_previous = previous is not None
    report_groups: dict[str, Kpis] | None = None
    if by is not None:
        ledger_key = _LEDGER_KEYS.get(by)
        names = set(groups)
        if ledger_key is not None:
            names |= {ledger_key(item) or NONE_GROUP for item in ledger}
        report_groups = {}
        for name in sorted(names):
            sums = None
            if ledger_key is not None and name != NONE_GROUP:
                # A group sees only the ledger records that name it; the rest stays in the total.
                sums = _ledger_sums([i for i in ledger if ledger_key(i) == name], x)
            report_groups[name] = _kpis(groups.get(name, _Acc()), sums, has_previous)

    kpis = _kpis(total, _ledger_sums(ledger, x), has_previous)
    return KpiReport(
        **{name: getattr(kpis, name) for name in Kpis.model_fields},
        since=since,
        until=until,
        as_of=now,
        currency=cur,
        other_currencies=dict(sorted(other.items())),
        by=by,
        groups=report_groups,
        attribution=attribution.report(),
        feedback=FeedbackInsight(
            by_persona=_voice_counts(by_persona),
            by_stage=_voice_counts(by_stage),
            personas={name: _persona(a, x) for name, a in sorted(personas.items())},
        ),
        series=series.days() if series is not None else None,
    )
