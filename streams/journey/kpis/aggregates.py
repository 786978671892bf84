"""Aggregates → report: the KPIs of a day-aligned window from the per-day aggregates.

`AggregateQuery` names the buckets a question needs (the window's days, the window before
it for revenue growth, customer stays before it, one day of exact deadlines) and turns their
contents into the same `KpiReport` as `compute_kpis` over the same journeys' facts. Its cost
is that of the window's days and the asked slicing, not of the number of journeys. Bucket
and field layout: `streams.journey.kpis.contributions`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.kpis import NONE_GROUP, DailyKpis, FeedbackInsight, GroupBy, KpiReport, Kpis
from streams.journey.kpis.attribution import AttributionSums
from streams.journey.kpis.contributions import SEP
from streams.journey.kpis.formulas import Dist, Sums, kpis_of, persona_engagement, voice_counts
from streams.journey.kpis.series import SERIES_COUNTS
from streams.journey.kpis.units import (
    ATTRIBUTION_QUANTUM,
    CENT,
    EPOCH_DAY,
    FUNNEL,
    US_PER_DAY,
    Window,
    micros,
)
from streams.journey.view import NO_CURRENCY

Buckets = Mapping[str, Mapping[str, int]]
_LEDGER_DIMS = ("channel", "campaign")


def money(units: int) -> Decimal:
    """Money units (0.0001) as an amount: cents, or 4 decimals when the cents are not exact."""
    amount = Decimal(units) * ATTRIBUTION_QUANTUM
    return amount.quantize(CENT) if units % 100 == 0 else amount


def _num(value: str) -> int | None:
    return None if value == "" else int(value)


@dataclass(slots=True)
class _Group:
    """One slice's sums while the buckets are read (money in units, durations as values)."""

    journeys: int = 0
    period: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    funnel: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    won: int = 0
    lost: int = 0
    churned: int = 0
    at_start: int = 0
    exposed: int = 0
    paying: int = 0
    revenue: int = 0
    revenue_previous: int = 0
    margins: Counter[str] = field(default_factory=Counter)
    nps: Counter[str] = field(default_factory=Counter)
    form_views: int = 0
    form_submissions: int = 0
    handoffs: int = 0
    in_sla: int = 0
    breached: int = 0
    pending: int = 0
    engaged: int = 0
    marketing: int = 0
    cycle: Counter[int] = field(default_factory=Counter)
    stays: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    touch: Counter[int] = field(default_factory=Counter)
    spend: int = 0
    cost: int = 0

    def merge(self, o: _Group) -> None:
        for name in _SCALARS:
            setattr(self, name, getattr(self, name) + getattr(o, name))
        for i in range(len(FUNNEL)):
            self.period[i] += o.period[i]
            self.funnel[i] += o.funnel[i]
        self.margins.update(o.margins)
        self.nps.update(o.nps)
        self.cycle.update(o.cycle)
        self.touch.update(o.touch)
        for stage, values in o.stays.items():
            self.stays[stage].update(values)

    def sums(self) -> Sums:
        weighted = sum((Decimal(m) * money(u) for m, u in self.margins.items()), Decimal(0))
        base = sum(self.margins.values())
        return Sums(
            journeys=self.journeys,
            period=list(self.period),
            funnel=list(self.funnel),
            deals_won=self.won,
            deals_lost=self.lost,
            churned=self.churned,
            at_start=self.at_start,
            exposed=self.exposed + self.at_start,
            paying=self.paying,
            cycle=_dist(self.cycle),
            stays={stage: _dist(v) for stage, v in self.stays.items()},
            revenue=money(self.revenue),
            revenue_previous=money(self.revenue_previous),
            margin_weighted=weighted,
            margin_base=money(base),
            promoters=self.nps["p"],
            passives=self.nps["n"],
            detractors=self.nps["d"],
            form_views=self.form_views,
            form_submissions=self.form_submissions,
            handoffs=self.handoffs,
            in_sla=self.in_sla,
            breached=self.breached,
            pending=self.pending,
            touch=_dist(self.touch),
            engaged=self.engaged,
            marketing=self.marketing,
        )


_SCALARS = (
    "journeys", "won", "lost", "churned", "at_start", "exposed", "paying", "revenue",
    "revenue_previous", "form_views", "form_submissions", "handoffs", "in_sla", "breached",
    "pending", "engaged", "marketing", "spend", "cost",
)  # fmt: skip


def _dist(histogram: Mapping[int, int]) -> Dist:
    """Count, sum and twice the median of a value histogram (exact)."""
    n = sum(histogram.values())
    if not n:
        return Dist()
    total = sum(v * c for v, c in histogram.items())
    wanted = (n // 2, n // 2) if n % 2 else (n // 2 - 1, n // 2)  # 0-based ranks
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(value)
        if len(found) == 2:
            break
    return Dist(n, total, found[0] + found[1])


@dataclass(frozen=True)
class AggregateQuery:
    """A KPI question over whole UTC days: [since_day, until_day) in days since 1970-01-01
    (None: open), asked at `now` (microseconds), sliced `by`, in `currency`."""

    since_day: int | None
    until_day: int | None
    now: int
    by: GroupBy | None = None
    currency: str | None = None
    daily: bool = False

    @classmethod
    def of(
        cls,
        *,
        now: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        by: GroupBy | None = None,
        currency: str | None = None,
        daily: bool = False,
    ) -> AggregateQuery:
        """The question for a window whose ends are midnights (UTC); others raise."""
        Window(since, until)  # rejects an empty window

        def day(at: datetime | None) -> int | None:
            if at is None:
                return None
            us = micros(at)
            if us % US_PER_DAY:
                raise ValueError(f"the aggregates answer whole UTC days; {at} is not midnight")
            return us // US_PER_DAY

        return cls(day(since), day(until), micros(now), by, currency, daily)

    @property
    def dims(self) -> tuple[str, ...]:
        """The slicing dimensions to read: persona (totals, personas) and the asked one."""
        return ("persona",) if self.by in (None, "persona") else ("persona", self.by)

    def _in(self, day: int) -> bool:
        return (self.since_day is None or day >= self.since_day) and (
            self.until_day is None or day < self.until_day
        )

    def _previous(self, day: int) -> bool:
        if self.since_day is None or self.until_day is None:
            return False
        return self.since_day - (self.until_day - self.since_day) <= day < self.since_day

    def buckets(self, days: Iterable[int]) -> list[str]:
        """The buckets this question reads, given the days that have aggregates."""
        names = ["g"]
        for day in days:
            if self._in(day):
                names += [f"d:{day}:{d}" for d in self.dims]
                names += [f"q:{day}:{d}" for d in self.dims]
                names += [f"d:{day}:x", f"d:{day}:vp", f"d:{day}:vs"]
            elif self._previous(day):
                names += [f"d:{day}:{d}" for d in self.dims]
            if self.since_day is not None and day < self.since_day:
                names += [f"c:{day}:{d}" for d in self.dims]
        if self._clock_is_now():
            names += [f"l:{self.now // US_PER_DAY + 1}:{d}" for d in self.dims]
        return names

    def _clock_is_now(self) -> bool:
        return self.until_day is None or self.now < self.until_day * US_PER_DAY

    def report(self, days: Iterable[int], read: Buckets) -> KpiReport:
        """The report from the contents of `buckets(days)` (missing buckets are empty)."""
        return _Answer(self, sorted(days), read).report()


class _Answer:
    """Sums the read buckets into slices, then applies the formulas."""

    def __init__(self, q: AggregateQuery, days: list[int], read: Buckets) -> None:
        self.q, self.days, self.read = q, days, read
        tally = self._global("cur")
        tally.pop(NO_CURRENCY, None)
        self.currency = q.currency or (min(tally, key=lambda c: (-tally[c], c)) if tally else None)
        self.slices: dict[str, dict[str, _Group]] = {d: defaultdict(_Group) for d in q.dims}
        self.other: Counter[str] = Counter()
        self.attribution = AttributionSums()
        self.spend = self.cost = 0
        self.voices: dict[str, dict[str, dict[str, dict[str, int]]]] = {
            "vp": defaultdict(lambda: defaultdict(Counter)),
            "vs": defaultdict(lambda: defaultdict(Counter)),
        }
        self.series: dict[int, Counter[str]] = defaultdict(Counter)

    def _global(self, kind: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for name, n in self.read.get("g", {}).items():
            parts = name.split(SEP)
            if parts[0] == kind and n:
                out[SEP.join(parts[1:])] += n
        return out

    def _bucket(self, name: str) -> Mapping[str, int]:
        return self.read.get(name, {})

    def report(self) -> KpiReport:
        q = self.q
        for day in self.days:
            if q._in(day):
                for dim in q.dims:
                    self._day(day, dim)
                    self._durations(day, dim)
                self._unsliced(day)
                self._said(day)
            elif q._previous(day):
                for dim in q.dims:
                    self._previous(day, dim)
            if q.since_day is not None and day < q.since_day:
                for dim in q.dims:
                    self._stays(day, dim)
        if q._clock_is_now():
            for dim in q.dims:
                self._deadlines(dim)
        return self._assemble()

    # --- reading the buckets ---------------------------------------------------------------

    def _before_since(self, day: str) -> bool:
        """A neighbouring day ('' = none) before the window: the entry is a journey's first."""
        return day == "" or (self.q.since_day is not None and int(day) < self.q.since_day)

    def _day(self, day: int, dim: str) -> None:
        q, cur, slices = self.q, self.currency, self.slices[dim]
        series = self.series[day] if dim == "persona" else Counter[str]()
        until = q.until_day
        ends_today = q.now // US_PER_DAY + 1 if q._clock_is_now() else None
        for name, n in self._bucket(f"d:{day}:{dim}").items():
            group, kind, *rest = name.split(SEP)
            g = slices[group]
            if kind == "new":
                g.journeys += n
            elif kind == "reach":
                i = int(rest[0])
                g.period[i] += n
                series[SERIES_COUNTS[i]] += n
            elif kind == "coh":
                if until is None or int(rest[1]) < until:
                    g.funnel[int(rest[0])] += n
            elif kind == "cus":
                if self._before_since(rest[0]):
                    g.exposed += n
            elif kind == "chu":
                series["churned"] += n
                if self._before_since(rest[0]):
                    g.churned += n
            elif kind == "won":
                g.won += n
                series["deals_won"] += n
            elif kind == "lost":
                g.lost += n
                series["deals_lost"] += n
            elif kind == "rev":
                if rest[0] == cur:
                    g.revenue += n
                    series["revenue"] += n
                elif dim == "persona":
                    self.other[rest[0]] += n
            elif kind == "mon":
                if rest[0] == cur:
                    series["money"] += n
                elif dim == "persona":
                    self.other[rest[0]] += 0
            elif kind == "mw":
                if rest[0] == cur:
                    g.margins[rest[1]] += n
            elif kind == "pay":
                if rest[0] == cur and self._before_since(rest[1]):
                    g.paying += n
            elif kind == "fv":
                g.form_views += n
                series["form_views"] += n
            elif kind == "fs":
                g.form_submissions += n
                series["form_submissions"] += n
            elif kind == "mk":
                g.marketing += n
            elif kind == "eng":
                if self._before_since(rest[0]):
                    g.engaged += n
            elif kind == "nps":
                if rest[1] == "" or (until is not None and int(rest[1]) >= until):
                    g.nps[rest[0]] += n
            elif kind == "ho":
                g.handoffs += n
                series["handoffs"] += n
            elif kind == "hs":
                self._handoff(g, rest, n, ends_today)
            elif kind in ("lsp", "lco") and rest[0] == cur:
                if kind == "lsp":
                    g.spend += n
                else:
                    g.cost += n

    def _handoff(self, g: _Group, rest: list[str], n: int, ends_today: int | None) -> None:
        answered, in_time, ends = _num(rest[0]), rest[1] == "1", int(rest[2])
        until = self.q.until_day
        if answered is not None and (until is None or answered < until):
            if in_time:
                g.in_sla += n
            else:
                g.breached += n
        elif ends_today is None:  # the clock is the window's end: whole days decide
            if until is not None and ends <= until:
                g.breached += n
            else:
                g.pending += n
        elif ends < ends_today:
            g.breached += n
        elif ends > ends_today:
            g.pending += n
        # else: the deadline falls on today, decided exactly by `_deadlines`

    def _deadlines(self, dim: str) -> None:
        q, slices = self.q, self.slices[dim]
        for name, n in self._bucket(f"l:{q.now // US_PER_DAY + 1}:{dim}").items():
            group, day, answered, _, deadline = name.split(SEP)
            if not q._in(int(day)):
                continue
            if answered != "" and (q.until_day is None or int(answered) < q.until_day):
                continue  # answered by the window's end: counted with the day's hand-offs
            g = slices[group]
            if int(deadline) <= q.now:
                g.breached += n
            else:
                g.pending += n

    def _durations(self, day: int, dim: str) -> None:
        until, slices = self.q.until_day, self.slices[dim]
        for name, n in self._bucket(f"q:{day}:{dim}").items():
            group, kind, aux, value = name.split(SEP)
            g = slices[group]
            if kind == "cyc":
                g.cycle[int(value)] += n
            elif kind == "st":
                g.stays[aux][int(value)] += n
            elif kind == "th" and (until is None or int(aux) < until):
                g.touch[int(value)] += n

    def _previous(self, day: int, dim: str) -> None:
        slices = self.slices[dim]
        for name, n in self._bucket(f"d:{day}:{dim}").items():
            group, kind, *rest = name.split(SEP)
            if kind == "rev" and rest[0] == self.currency:
                slices[group].revenue_previous += n

    def _stays(self, day: int, dim: str) -> None:
        slices = self.slices[dim]
        for name, n in self._bucket(f"c:{day}:{dim}").items():
            group, kind = name.split(SEP)
            slices[group].at_start += n if kind == "in" else -n

    def _unsliced(self, day: int) -> None:
        cur, a, series = self.currency, self.attribution, self.series[day]
        for name, n in self._bucket(f"d:{day}:x").items():
            kind, currency, *rest = name.split(SEP)
            if currency != cur:
                continue
            if kind == "aw":
                a.total_units += n
            elif kind == "an":
                a.deals += n
            elif kind == "at":
                dim, model, value, denominator = rest
                a.sums[dim, model, value, int(denominator)] += n
            elif kind == "sp":
                self.spend += n
                series["marketing_spend"] += n
            elif kind == "co":
                self.cost += n
                series["sales_cost"] += n
            elif kind == "lmon":
                series["money"] += n

    def _said(self, day: int) -> None:
        for dim in ("vp", "vs"):
            tally = self.voices[dim]
            for name, n in self._bucket(f"d:{day}:{dim}").items():
                group, kind, value, before = name.split(SEP)
                if self._before_since(before):
                    tally[group][kind][value] += n

    # --- the report ------------------------------------------------------------------------

    def _assemble(self) -> KpiReport:
        q = self.q
        members = self._global("m")
        personas = sorted(k.split(SEP, 1)[1] for k in members if k.startswith("persona" + SEP))
        total = _Group()
        for g in self.slices["persona"].values():
            total.merge(g)  # every journey is in exactly one persona slice
        previous = q.since_day is not None and q.until_day is not None
        kpis = kpis_of(total.sums(), (money(self.spend), money(self.cost)), previous)
        since = None if q.since_day is None else _midnight(q.since_day)
        until = None if q.until_day is None else _midnight(q.until_day)
        return KpiReport(
            **{name: getattr(kpis, name) for name in Kpis.model_fields},
            since=since,
            until=until,
            as_of=_midnight(0) + timedelta(microseconds=q.now),
            currency=self.currency,
            other_currencies={c: money(u) for c, u in sorted(self.other.items())},
            by=q.by,
            groups=None if q.by is None else self._groups(members, previous),
            attribution=self.attribution.report(money(self.attribution.total_units)),
            feedback=FeedbackInsight(
                by_persona=voice_counts(self.voices["vp"]),
                by_stage=voice_counts(self.voices["vs"]),
                personas={
                    p: persona_engagement(self.slices["persona"].get(p, _Group()).sums())
                    for p in personas
                },
            ),
            series=self._series() if q.daily else None,
        )

    def _groups(self, members: Counter[str], previous: bool) -> dict[str, Kpis]:
        by = self.q.by
        assert by is not None
        prefix = by + SEP
        names = {k[len(prefix) :] for k in members if k.startswith(prefix)}
        if by in _LEDGER_DIMS:
            names |= {k[len(prefix) :] for k in self._global("lm") if k.startswith(prefix)}
        slices = self.slices[by]
        out: dict[str, Kpis] = {}
        for name in sorted(names):
            g = slices.get(name, _Group())
            ledger = None
            if by in _LEDGER_DIMS and name != NONE_GROUP:
                # A group sees only the ledger records that name it; the rest stays in the total.
                ledger = (money(g.spend), money(g.cost))
            out[name] = kpis_of(g.sums(), ledger, previous)
        return out

    def _series(self) -> list[DailyKpis]:
        rows = []
        for day in self.days:
            counts = self.series.get(day)
            if not self.q._in(day) or not counts or not any(counts.values()):
                continue
            rows.append(
                DailyKpis(
                    day=EPOCH_DAY + timedelta(days=day),
                    **{name: counts[name] for name in SERIES_COUNTS},
                    revenue=money(counts["revenue"]),
                    marketing_spend=money(counts["marketing_spend"]),
                    sales_cost=money(counts["sales_cost"]),
                )
            )
        return rows


def _midnight(day: int) -> datetime:
    from streams.journey.kpis.units import EPOCH

    return EPOCH + timedelta(days=day)
