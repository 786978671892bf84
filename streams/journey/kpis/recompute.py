"""The report computed from every journey's facts in one pass (pure; docs/kpis.md).

This is the definition the incremental aggregates (`streams.journey.kpis.aggregates`) must
equal on day-aligned windows, and the path for any other window (tests, replay, benchmarks).
Its cost grows with the number of journeys: the worker and the read side use the aggregates.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from schemas.kpis import (
    NONE_GROUP,
    FeedbackInsight,
    GroupBy,
    JourneyFacts,
    KpiReport,
    Kpis,
)
from streams.journey.kpis.attribution import AttributionSums
from streams.journey.kpis.formulas import (
    Dist,
    Sums,
    VoiceTally,
    kpis_of,
    persona_engagement,
    voice_counts,
)
from streams.journey.kpis.loaded import LedgerTuple, LoadedJourney, load
from streams.journey.kpis.series import Series
from streams.journey.kpis.units import (
    CHURNED,
    CUSTOMER,
    FOREVER,
    FUNNEL,
    FUNNEL_VALUES,
    NEVER,
    Window,
    as_money,
    micros,
)
from streams.journey.view import NO_CURRENCY

_ZERO = Decimal(0)


@dataclass(frozen=True)
class _Context:
    lo: int
    hi: int
    prev_lo: int | None
    prev_hi: int | None
    currency: str | None
    clock: int  # now, or the window's end if earlier: deadlines not passed by then are pending


def _zeros() -> list[int]:
    return [0] * len(FUNNEL)


@dataclass(slots=True)
class _Acc:
    """A slice's sums with its durations and NPS answers as samples (in microseconds)."""

    journeys: int = 0
    period: list[int] = field(default_factory=_zeros)
    funnel: list[int] = field(default_factory=_zeros)
    deals_won: int = 0
    deals_lost: int = 0
    churned: int = 0
    at_start: int = 0
    exposed: int = 0
    paying: int = 0
    cycle: list[int] = field(default_factory=list)
    stays: dict[str, list[int]] = field(default_factory=dict)
    revenue: Decimal = _ZERO
    revenue_previous: Decimal = _ZERO
    margin_weighted: Decimal = _ZERO
    margin_base: Decimal = _ZERO
    nps: list[int] = field(default_factory=list)
    form_views: int = 0
    form_submissions: int = 0
    handoffs: int = 0
    in_sla: int = 0
    breached: int = 0
    pending: int = 0
    touch: list[int] = field(default_factory=list)
    engaged: int = 0
    marketing: int = 0

    def merge(self, c: _Acc) -> None:
        """Add another slice to this one."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(c, name))
        for i in range(len(FUNNEL)):
            self.period[i] += c.period[i]
            self.funnel[i] += c.funnel[i]
        for stage, stays in c.stays.items():
            self.stays.setdefault(stage, []).extend(stays)
        self.cycle += c.cycle
        self.nps += c.nps
        self.touch += c.touch

    def sums(self) -> Sums:
        """The formulas' input: samples reduced to count, sum and median."""
        return Sums(
            **{name: getattr(self, name) for name in _COUNTS},
            period=list(self.period),
            funnel=list(self.funnel),
            cycle=Dist.of(self.cycle),
            stays={stage: Dist.of(v) for stage, v in self.stays.items()},
            promoters=sum(1 for s in self.nps if s >= 9),
            passives=sum(1 for s in self.nps if 7 <= s <= 8),
            detractors=sum(1 for s in self.nps if s <= 6),
            touch=Dist.of(self.touch),
        )


_COUNTS = (
    "journeys", "deals_won", "deals_lost", "churned", "at_start", "exposed", "paying",
    "revenue", "revenue_previous", "margin_weighted", "margin_base", "form_views",
    "form_submissions", "handoffs", "in_sla", "breached", "pending", "engaged", "marketing",
)  # fmt: skip


@dataclass(slots=True)
class _Revenue:
    """One journey's deals won and revenue in the window (and the previous one)."""

    deals_won: int = 0
    paid: bool = False  # revenue in the report's currency in the window: a paying customer
    revenue: Decimal = _ZERO
    revenue_previous: Decimal = _ZERO
    margin_weighted: Decimal = _ZERO
    margin_base: Decimal = _ZERO


@dataclass(slots=True)
class _Handoffs:
    """One journey's hand-offs in the window, by SLA outcome, with their times to first touch."""

    handoffs: int = 0
    in_sla: int = 0
    breached: int = 0
    pending: int = 0
    touch: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Stages:
    """One journey's stage moves in the window: time spent in each stage it left, and churn."""

    stays: list[tuple[str, int]]
    churned: bool
    exposed: bool  # a customer at some point of the window (the churn rate's base)
    at_start: bool


def _funnel_steps(reached: Mapping[str, int], lo: int, hi: int) -> tuple[list[int], list[int]]:
    """The funnel stages first reached in the window, and (for the window's new leads) every
    stage the lead cohort reached by the window's end."""
    period = [i for i, s in enumerate(FUNNEL_VALUES) if lo <= reached.get(s, NEVER) < hi]
    funnel: list[int] = []
    if period and period[0] == 0:
        # The window's lead cohort, followed to the window's end.
        funnel = [i for i, s in enumerate(FUNNEL_VALUES) if reached.get(s, NEVER) < hi]
    return period, funnel


def _sales_cycle(j: LoadedJourney, lo: int, hi: int) -> int | None:
    """First touch to customer, for a journey that became a customer in the window."""
    customer_at = j.reached.get(CUSTOMER)
    if customer_at is not None and lo <= customer_at < hi and j.first is not None:
        return customer_at - j.first
    return None


def _stage_moves(stages: Sequence[tuple[str, int]], lo: int, hi: int) -> _Stages:
    stays: list[tuple[str, int]] = []
    before = None
    churned = exposed = False
    for i, (stage, at) in enumerate(stages):
        if at < lo:
            before = stage
        elif at < hi:
            if i:
                left, left_at = stages[i - 1]
                stays.append((left, at - left_at))
            if stage == CHURNED:
                churned = True
            elif stage == CUSTOMER:
                exposed = True
    at_start = before == CUSTOMER and lo > -FOREVER
    return _Stages(stays, churned, exposed or at_start, at_start)


def _revenue(j: LoadedJourney, x: _Context) -> _Revenue:
    """Deals won and renewals: only amounts in the report's currency count as revenue."""
    lo, hi, cur = x.lo, x.hi, x.currency
    r = _Revenue()
    for at, amount, currency, margin, _, _ in j.won:
        if lo <= at < hi:
            r.deals_won += 1
            if currency == cur:
                r.revenue += amount
                r.paid = True
                if margin is not None:
                    r.margin_weighted += amount * Decimal(str(margin))
                    r.margin_base += amount
        elif x.prev_lo is not None and x.prev_lo <= at < lo and currency == cur:
            r.revenue_previous += amount
    for at, amount, currency in j.renewals:
        if currency != cur:
            continue
        if lo <= at < hi:
            r.revenue += amount
            r.paid = True
        elif x.prev_lo is not None and x.prev_lo <= at < lo:
            r.revenue_previous += amount
    return r


def _handoff_outcomes(j: LoadedJourney, x: _Context) -> _Handoffs:
    """Answered within the SLA, breached, or still pending (its deadline after the clock)."""
    lo, hi = x.lo, x.hi
    h = _Handoffs()
    for at, deadline, answered, touch in j.handoffs:
        if not lo <= at < hi:
            continue
        h.handoffs += 1
        if answered is not None and answered < hi:
            if answered <= deadline:
                h.in_sla += 1
            else:
                h.breached += 1
        elif deadline <= x.clock:
            h.breached += 1
        else:
            h.pending += 1
        if touch is not None and touch < hi:
            h.touch.append(touch - at)
    return h


def _latest_nps(j: LoadedJourney, lo: int, hi: int) -> int | None:
    answers = [(at, score) for at, score in j.nps if lo <= at < hi]
    return max(answers)[1] if answers else None  # one voice per customer: the latest answer


def _within(times: Iterable[int], lo: int, hi: int) -> int:
    return sum(1 for at in times if lo <= at < hi)


@dataclass(frozen=True, slots=True)
class _Contribution:
    """What one journey adds to every slice it belongs to."""

    new: bool
    period: list[int]
    funnel: list[int]
    cycle: int | None
    stages: _Stages
    deals_lost: int
    revenue: _Revenue
    nps: int | None
    form_views: int
    form_submissions: int
    marketing: int
    handoffs: _Handoffs


def _contribution(j: LoadedJourney, x: _Context) -> _Contribution:
    lo, hi = x.lo, x.hi
    period, funnel = _funnel_steps(j.reached, lo, hi)
    return _Contribution(
        new=j.first is not None and lo <= j.first < hi,
        period=period,
        funnel=funnel,
        cycle=_sales_cycle(j, lo, hi),
        stages=_stage_moves(j.stages, lo, hi),
        deals_lost=_within(j.lost, lo, hi),
        revenue=_revenue(j, x),
        nps=_latest_nps(j, lo, hi),
        form_views=_within(j.form_views, lo, hi),
        form_submissions=_within(j.form_submissions, lo, hi),
        marketing=_within(j.marketing, lo, hi),
        handoffs=_handoff_outcomes(j, x),
    )


def _add(c: _Contribution, a: _Acc) -> None:
    """Add one journey's contribution to a slice's sums."""
    a.journeys += c.new
    for i in c.period:
        a.period[i] += 1
    for i in c.funnel:
        a.funnel[i] += 1
    if c.cycle is not None:
        a.cycle.append(c.cycle)
    _add_stages(c.stages, a)
    a.deals_lost += c.deals_lost
    _add_revenue(c.revenue, a)
    if c.nps is not None:
        a.nps.append(c.nps)
    a.form_views += c.form_views
    a.form_submissions += c.form_submissions
    a.marketing += c.marketing
    a.engaged += c.marketing > 0
    _add_handoffs(c.handoffs, a)


def _add_stages(s: _Stages, a: _Acc) -> None:
    for stage, days in s.stays:
        a.stays.setdefault(stage, []).append(days)
    a.churned += s.churned
    a.at_start += s.at_start
    a.exposed += s.exposed


def _add_revenue(r: _Revenue, a: _Acc) -> None:
    a.deals_won += r.deals_won
    if r.paid:
        a.paying += 1
        a.revenue += r.revenue
        a.margin_weighted += r.margin_weighted
        a.margin_base += r.margin_base
    a.revenue_previous += r.revenue_previous


def _add_handoffs(h: _Handoffs, a: _Acc) -> None:
    if h.handoffs:
        a.handoffs += h.handoffs
        a.in_sla += h.in_sla
        a.breached += h.breached
        a.pending += h.pending
        a.touch += h.touch


def _accumulate(j: LoadedJourney, x: _Context, targets: Sequence[_Acc]) -> None:
    """Add what one journey contributes to every slice it belongs to (see docs/kpis.md).

    Computed once per journey and added to each target: the journey loop is the hot path.
    """
    contribution = _contribution(j, x)
    for a in targets:
        _add(contribution, a)


GROUP_KEYS: dict[GroupBy, Callable[[LoadedJourney], str | None]] = {
    "channel": lambda j: j.channel,
    "campaign": lambda j: j.campaign,
    "persona": lambda j: j.persona,
    "source": lambda j: j.source,
    "account": lambda j: j.account,
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
    return _default_currency([load(f) for f in facts])


def _default_currency(journeys: Iterable[LoadedJourney]) -> str | None:
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


_Voices = dict[str, dict[str, set[tuple[str, str]]]]
"""Per group (persona or stage), per kind of voice: the distinct (value, journey) pairs heard."""


def _voices() -> _Voices:
    return defaultdict(lambda: defaultdict(set))


@dataclass(slots=True)
class _Pass:
    """What one pass over the journeys collects: the slices' sums and everything beside them."""

    series: Series | None
    personas: dict[str, _Acc] = field(default_factory=lambda: defaultdict(_Acc))
    groups: dict[str, _Acc] = field(default_factory=lambda: defaultdict(_Acc))
    attribution: AttributionSums = field(default_factory=AttributionSums)
    attribution_total: Decimal = _ZERO
    by_persona: _Voices = field(default_factory=_voices)
    by_stage: _Voices = field(default_factory=_voices)
    other: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


def _context(window: Window, now: datetime, currency: str | None) -> _Context:
    lo, hi = window.bounds
    previous = window.previous()
    plo, phi = previous.bounds if previous is not None else (None, None)
    return _Context(lo, hi, plo, phi, currency, min(micros(now), hi))


def _walk(
    loaded: Sequence[LoadedJourney],
    x: _Context,
    key: Callable[[LoadedJourney], str | None] | None,
    daily: bool,
) -> _Pass:
    """The one pass over the journeys: every slice's sums, credit, voices and the day series."""
    p = _Pass(series=Series(x.lo, x.hi, x.currency) if daily else None)
    for j in loaded:
        if j.first is None:
            continue  # no person touchpoint: the spend and cost ledger
        persona = p.personas[j.persona or NONE_GROUP]
        if key is None:
            _accumulate(j, x, (persona,))
        else:
            _accumulate(j, x, (persona, p.groups[key(j) or NONE_GROUP]))
        _credit_amounts(j, x, p)
        _hear_voices(j, x, p)
        if p.series is not None:
            p.series.add(j)
    return p


def _credit_amounts(j: LoadedJourney, x: _Context, p: _Pass) -> None:
    """Won deals in the report's currency are attributed; other currencies are set aside."""
    lo, hi, cur = x.lo, x.hi, x.currency
    for at, amount, currency, _, channels, campaigns in j.won:
        if lo <= at < hi:
            if currency == cur:
                p.attribution.add(amount, channels, campaigns)
                p.attribution_total += amount
            else:
                p.other[currency] += amount
    for at, amount, currency in j.renewals:
        if lo <= at < hi and currency != cur:
            p.other[currency] += amount


def _hear_voices(j: LoadedJourney, x: _Context, p: _Pass) -> None:
    for at, kind, value, stage in j.voices:
        if x.lo <= at < x.hi:
            p.by_persona[j.persona or NONE_GROUP][kind].add((value, j.customer_id))
            p.by_stage[stage or NONE_GROUP][kind].add((value, j.customer_id))


def _group_kpis(
    by: GroupBy,
    groups: Mapping[str, _Acc],
    ledger: Sequence[LedgerTuple],
    x: _Context,
    has_previous: bool,
) -> dict[str, Kpis]:
    """The KPIs per group: every group a journey or (by channel or campaign) a ledger names."""
    ledger_key = _LEDGER_KEYS.get(by)
    names = set(groups)
    if ledger_key is not None:
        names |= {ledger_key(item) or NONE_GROUP for item in ledger}
    report_groups: dict[str, Kpis] = {}
    for name in sorted(names):
        sums = None
        if ledger_key is not None and name != NONE_GROUP:
            # A group sees only the ledger records that name it; the rest stays in the total.
            sums = _ledger_sums([i for i in ledger if ledger_key(i) == name], x)
        report_groups[name] = kpis_of(groups.get(name, _Acc()).sums(), sums, has_previous)
    return report_groups


def _feedback(p: _Pass) -> FeedbackInsight:
    return FeedbackInsight(
        by_persona=voice_counts(_tally(p.by_persona)),
        by_stage=voice_counts(_tally(p.by_stage)),
        personas={name: persona_engagement(a.sums()) for name, a in sorted(p.personas.items())},
    )


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
    loaded = [load(f) for f in facts]
    cur = currency or _default_currency(loaded)
    x = _context(window, now, cur)
    has_previous = window.previous() is not None
    ledger = [item for j in loaded for item in j.ledger]
    p = _walk(loaded, x, GROUP_KEYS[by] if by is not None else None, daily)
    if p.series is not None:
        for item in ledger:
            p.series.add_ledger(item)

    total = _Acc()
    for slice_ in p.personas.values():
        total.merge(slice_)  # every journey is in exactly one persona slice
    kpis = kpis_of(total.sums(), _ledger_sums(ledger, x), has_previous)
    return KpiReport(
        **{name: getattr(kpis, name) for name in Kpis.model_fields},
        since=since,
        until=until,
        as_of=now,
        currency=cur,
        other_currencies={c: as_money(amount) for c, amount in sorted(p.other.items())},
        by=by,
        groups=_group_kpis(by, p.groups, ledger, x, has_previous) if by is not None else None,
        attribution=p.attribution.report(as_money(p.attribution_total)),
        feedback=_feedback(p),
        series=p.series.days() if p.series is not None else None,
    )


def _tally(seen: Mapping[str, Mapping[str, set[tuple[str, str]]]]) -> VoiceTally:
    # Distinct journeys per value: a customer repeating a pain point is one voice.
    return {
        group: {kind: Counter(value for value, _ in said) for kind, said in kinds.items()}
        for group, kinds in seen.items()
    }
