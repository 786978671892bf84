"""Aggregates → report: the KPIs of a day-aligned window from the per-day aggregates.

`AggregateQuery` names the buckets a question needs (the window's days, the window before
it for revenue growth, customer stays before it, one day of exact deadlines) and turns their
contents into the same `KpiReport` as `compute_kpis` over the same journeys' facts. Its cost
is that of the window's days and the asked slicing, not of the number of journeys. Bucket
and field layout: `streams.journey.kpis.contributions`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.kpis import NONE_GROUP, DailyKpis, FeedbackInsight, GroupBy, KpiReport, Kpis
from streams.journey.kpis.attribution import AttributionSums
from streams.journey.kpis.contributions import BLOCK_DAYS, SEP, second_days
from streams.journey.kpis.formulas import Dist, Sums, kpis_of, persona_engagement, voice_counts
from streams.journey.kpis.series import SERIES_COUNTS
from streams.journey.kpis.units import EPOCH_DAY, FUNNEL, US_PER_DAY, Window, micros, money
from streams.journey.view import NO_CURRENCY

Buckets = Mapping[str, Mapping[str, int]]
_LEDGER_DIMS = ("channel", "campaign")
_DEAL_AND_MONEY_KINDS = frozenset({"won", "lost", "rev", "mon", "mw", "pay", "lsp", "lco"})
"""Bucket fields `Answer._deal_and_money` reads (layout: `kpis.contributions`)."""


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
    durations: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
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
        for metric, (n, total) in o.durations.items():
            mine = self.durations[metric]
            mine[0] += n
            mine[1] += total

    def dist(self, metric: str, medians: Mapping[str, int | None]) -> Dist:
        n, total = self.durations.get(metric, (0, 0))
        return Dist(n, total, medians.get(metric)) if n else Dist()

    def sums(self, medians: Mapping[str, int | None]) -> Sums:
        """The formulas' sums, with twice the medians of the durations by metric."""
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
            cycle=self.dist("cyc", medians),
            stays={
                m[3:]: self.dist(m, medians)
                for m, (n, _) in self.durations.items()
                if m.startswith("st=") and n
            },
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
            touch=self.dist("th", medians),
            engaged=self.engaged,
            marketing=self.marketing,
        )


_SCALARS = (
    "journeys", "won", "lost", "churned", "at_start", "exposed", "paying", "revenue",
    "revenue_previous", "form_views", "form_submissions", "handoffs", "in_sla", "breached",
    "pending", "engaged", "marketing", "spend", "cost",
)  # fmt: skip


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

    def critical(self) -> frozenset[int]:
        """The blocks holding a threshold a second day is compared with (the window's ends,
        the day after its end, the day of today's deadlines) inside them rather than at their
        start: fields whose second day falls there need that day exactly."""
        ends = [self.since_day, self.until_day]
        if self.until_day is not None:
            ends.append(self.until_day + 1)
        out = {e // BLOCK_DAYS for e in ends if e is not None and e % BLOCK_DAYS}
        if self._clock_is_now():
            out.add((self.now // US_PER_DAY + 1) // BLOCK_DAYS)
        return frozenset(out)

    def plan(self, days: Iterable[int]) -> Plan:
        """Which whole blocks answer for the window, the window before it and the customer
        stays before it; the other days are read one by one."""
        critical = self.critical()
        since, until = self.since_day, self.until_day

        def whole(block: int, start: int | None, end: int | None) -> bool:
            first, last = block * BLOCK_DAYS, (block + 1) * BLOCK_DAYS
            return (start is None or first >= start) and (end is None or last <= end)

        plan = Plan(critical)
        for block in {day // BLOCK_DAYS for day in days}:
            if not self.daily and block not in critical and whole(block, since, until):
                plan.inside.add(block)
            if since is not None and until is not None and whole(block, 2 * since - until, since):
                plan.previous.add(block)
            if since is not None and whole(block, None, since):
                plan.stays.add(block)
        return plan

    def buckets(self, days: Iterable[int]) -> list[str]:
        """The buckets this question reads, given the days that have aggregates."""
        days = list(days)
        plan = self.plan(days)
        names = ["g"]
        for day in days:
            block = day // BLOCK_DAYS
            if self._in(day):
                if block not in plan.inside:
                    names += [f"d:{day}:{d}" for d in self.dims]
                    names += [f"d:{day}:x", f"d:{day}:vp", f"d:{day}:vs"]
            elif self._previous(day) and block not in plan.previous:
                names += [f"r:{day}:{d}" for d in self.dims]
            if self.since_day is not None and day < self.since_day and block not in plan.stays:
                names += [f"c:{day}:{d}" for d in self.dims]
        for block in sorted(plan.inside):
            for dim in (*self.dims, "vp", "vs"):
                names.append(f"B:{block}:{dim}")
                names += [f"X:{block}.{c}:{dim}" for c in sorted(plan.critical)]
            names.append(f"B:{block}:x")
        names += [f"R:{b}:{d}" for b in sorted(plan.previous) for d in self.dims]
        names += [f"C:{b}:{d}" for b in sorted(plan.stays) for d in self.dims]
        if self._clock_is_now():
            names += [f"l:{self.now // US_PER_DAY + 1}:{d}" for d in self.dims]
        return names

    def _clock_is_now(self) -> bool:
        return self.until_day is None or self.now < self.until_day * US_PER_DAY

    def answer(self, days: Iterable[int], read: Buckets) -> Answer:
        """The sums of the contents of `buckets(days)` (missing buckets are empty); its
        `medians` name the ranked entries whose medians the report still needs."""
        return Answer(self, sorted(days), read)

    def report(self, days: Iterable[int], read: Buckets, ranked: Ranked | None = None) -> KpiReport:
        """The report from the contents of `buckets(days)` and the ranked entries."""
        answer = self.answer(days, read)
        return answer.report({m.slot: select(m, ranked or {}) for m in answer.medians})


Ranked = Mapping[str, Mapping[str, int]]
"""Sorted sets by key: member → score."""


@dataclass(frozen=True)
class Plan:
    """The whole blocks a question reads (block buckets) instead of their days."""

    critical: frozenset[int]
    inside: set[int] = field(default_factory=set)
    previous: set[int] = field(default_factory=set)
    stays: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class MedianAsk:
    """Twice the median of the members of the `plus` sorted sets that are not in the `minus`
    ones (a subset of them), for one `slot` (dimension or "*", group, metric)."""

    slot: tuple[str, str, str]
    plus: tuple[str, ...]
    minus: tuple[str, ...] = ()


def select(ask: MedianAsk, ranked: Ranked) -> int | None:
    """Twice the median of an ask, from sorted sets in memory (what Redis answers with the
    bisection of `streams.kpi_store`)."""
    left = {m for key in ask.minus for m in ranked.get(key, {})}
    values = [
        v for key in ask.plus for m, v in ranked.get(key, {}).items() if m not in left
    ]  # fmt: skip
    return Dist.of(values).median2


def spans(days: Iterable[int], since: int | None, until: int | None) -> list[str]:
    """The fewest ranked spans covering `days` (all in the window [since, until)): whole
    aligned blocks inside the window, single days at its edges."""
    blocks: dict[int, list[int]] = defaultdict(list)
    for day in days:
        blocks[day // BLOCK_DAYS].append(day)
    out: list[str] = []
    for block, inside in sorted(blocks.items()):
        start, end = block * BLOCK_DAYS, (block + 1) * BLOCK_DAYS
        if (since is None or start >= since) and (until is None or end <= until):
            out.append(f"b{block}")
        else:
            out += [f"d{day}" for day in sorted(inside)]
    return out


class Answer:
    """Sums the read buckets into slices; `report` applies the formulas."""

    def __init__(self, q: AggregateQuery, days: list[int], read: Buckets) -> None:
        self.q, self.days, self.read = q, days, read
        self.median2: Mapping[tuple[str, str, str], int | None] = {}
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
        # (dim, group, metric) → days with durations; (dim, group) → (day, touch day) pairs
        # whose first sales touch came at or after the window's end.
        self.ranked_days: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        # (dim, group) → the ranked spans of hand-offs touched at or after the window's end
        self.late: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.plan = q.plan(days)
        self._read()
        self.medians = self._medians()

    def _global(self, kind: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for name, n in self.read.get("g", {}).items():
            parts = name.split(SEP)
            if parts[0] == kind and n:
                out[SEP.join(parts[1:])] += n
        return out

    def _bucket(self, name: str) -> Mapping[str, int]:
        return self.read.get(name, {})

    def _read(self) -> None:
        q, plan = self.q, self.plan
        for day in self.days:
            block = day // BLOCK_DAYS
            if q._in(day):
                if block not in plan.inside:
                    for dim in q.dims:
                        self._day(day, dim)
                    self._unsliced(f"d:{day}:x", self.series[day])
                    self._said({dim: self._bucket(f"d:{day}:{dim}") for dim in ("vp", "vs")})
            elif q._previous(day) and block not in plan.previous:
                for dim in q.dims:
                    self._previous(f"r:{day}:{dim}", dim)
            if q.since_day is not None and day < q.since_day and block not in plan.stays:
                for dim in q.dims:
                    self._stays(f"c:{day}:{dim}", dim)
        for block in sorted(plan.inside):
            self._block(block)
        for block in plan.previous:
            for dim in q.dims:
                self._previous(f"R:{block}:{dim}", dim)
        for block in plan.stays:
            for dim in q.dims:
                self._stays(f"C:{block}:{dim}", dim)
        if q._clock_is_now():
            for dim in q.dims:
                self._deadlines(dim)

    def _medians(self) -> list[MedianAsk]:
        q = self.q
        wanted: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for dim, group, metric in self.ranked_days:
            if dim == "persona":
                wanted["*", metric].append((dim, group))  # the total: every persona
            if dim == q.by:
                wanted[f"{dim}{SEP}{group}", metric].append((dim, group))
        asks = []
        for (slot, metric), members in sorted(wanted.items()):
            plus: list[str] = []
            minus: list[str] = []
            for dim, group in members:
                tail = f"{dim}:{group}"
                days = self.ranked_days[dim, group, metric]
                plus += [f"z:{metric}:{s}:{tail}" for s in spans(days, q.since_day, q.until_day)]
                if metric == "th":
                    minus += [f"z:th:{span}:{tail}" for span in sorted(self.late[dim, group])]
            dim, _, group = slot.partition(SEP)
            asks.append(MedianAsk((dim, group, metric), tuple(plus), tuple(minus)))
        return asks

    def report(self, medians: Mapping[tuple[str, str, str], int | None]) -> KpiReport:
        """The report, given twice the median of each of `medians`' slots."""
        self.median2 = medians
        return self._assemble()

    def _slot(self, dim: str, group: str) -> dict[str, int | None]:
        return {m: v for (d, g, m), v in self.median2.items() if d == dim and g == group}

    # --- reading the buckets ---------------------------------------------------------------

    def _before_since(self, day: str) -> bool:
        """A neighbouring day ('' = none) before the window: the entry is a journey's first."""
        return day == "" or (self.q.since_day is not None and int(day) < self.q.since_day)

    def _block(self, block: int) -> None:
        """A whole block inside the window: its block buckets, whose second days stand for
        their blocks, except the fields with a second day in a critical block, counted once
        (under the first such block) from the exact crossing fields."""
        day, critical = block * BLOCK_DAYS, self.plan.critical
        for dim in (*self.q.dims, "vp", "vs"):
            items = dict(self._coarse(f"B:{block}:{dim}", dim, critical))
            for c in sorted(critical):
                for name, n in self._bucket(f"X:{block}.{c}:{dim}").items():
                    parts = name.split(SEP)
                    owner = min(
                        b
                        for at in second_days(dim, parts)
                        if parts[at] != "" and (b := int(parts[at]) // BLOCK_DAYS) in critical
                    )
                    if owner == c:
                        items[name] = items.get(name, 0) + n
            if dim in ("vp", "vs"):
                self._said({dim: items})
            else:
                self._day(day, dim, items, f"r{block}.")
        self._unsliced(f"B:{block}:x", Counter())

    def _coarse(self, bucket: str, dim: str, critical: frozenset[int]) -> Iterator[tuple[str, int]]:
        """A block bucket's fields without a second day in a critical block, each second block
        replaced by its first day (every day of it compares alike with the thresholds)."""
        for name, n in self._bucket(bucket).items():
            parts = name.split(SEP)
            for at in second_days(dim, parts):
                if parts[at] != "":
                    other = int(parts[at])
                    if other in critical:
                        break
                    parts[at] = str(other * BLOCK_DAYS)
            else:
                yield SEP.join(parts), n

    def _day(self, day: int, dim: str, items: Mapping[str, int] | None = None,
             exact: str = "p") -> None:  # fmt: skip
        q, slices = self.q, self.slices[dim]
        series = self.series[day] if dim == "persona" and items is None else Counter[str]()
        until = q.until_day
        ends_today = q.now // US_PER_DAY + 1 if q._clock_is_now() else None
        for name, n in (self._bucket(f"d:{day}:{dim}") if items is None else items).items():
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
            elif kind in _DEAL_AND_MONEY_KINDS:
                self._deal_and_money(g, series, dim, kind, rest, n)
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
            elif kind == "dn":
                g.durations[rest[0]][0] += n
                self.ranked_days[dim, group, rest[0]].add(day)
            elif kind == "ds":
                g.durations[rest[0]][1] += n
            elif kind in ("thn", "ths"):
                self._touch(g, (dim, group), day, kind, int(rest[0]), n, exact)

    def _deal_and_money(self, g: _Group, series: Counter[str], dim: str, kind: str,
                        rest: list[str], n: int) -> None:  # fmt: skip
        # Money counts only in the report's currency; revenue and money moved in another one
        # are noted once (on the persona slicing, which every answer reads) so the report can
        # say which currencies it left out.
        cur = self.currency
        if kind == "won":
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
        elif rest[0] == cur:  # the ledger: "lsp" spend, "lco" cost
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

    def _touch(self, g: _Group, slot: tuple[str, str], day: int, kind: str, touch_day: int,
               n: int, exact: str) -> None:  # fmt: skip
        """`exact`: the ranked spans of late hand-offs: ``p`` by (day, touch day); in a block,
        ``r{block}.`` by touch day, or by touch block (the touch day is a block's first)."""
        until = self.q.until_day
        if kind == "thn":
            self.ranked_days[(*slot, "th")].add(day)
        if until is not None and touch_day >= until:
            if kind == "thn":  # ranked under the hand-off's day too: to be left out
                self.late[slot].add(self._late(day, touch_day, exact))
            return
        g.durations["th"][0 if kind == "thn" else 1] += n

    def _late(self, day: int, touch_day: int, exact: str) -> str:
        if exact == "p":
            return f"p{day}.{touch_day}"
        if touch_day // BLOCK_DAYS in self.plan.critical:
            return f"{exact}{touch_day}"  # an exact crossing field
        return f"q{day // BLOCK_DAYS}.{touch_day // BLOCK_DAYS}"

    def _previous(self, bucket: str, dim: str) -> None:
        slices = self.slices[dim]
        for name, n in self._bucket(bucket).items():
            group, kind, *rest = name.split(SEP)
            if kind == "rev" and rest[0] == self.currency:
                slices[group].revenue_previous += n

    def _stays(self, bucket: str, dim: str) -> None:
        slices = self.slices[dim]
        for name, n in self._bucket(bucket).items():
            group, kind = name.split(SEP)
            slices[group].at_start += n if kind == "in" else -n

    def _unsliced(self, bucket: str, series: Counter[str]) -> None:
        cur, a = self.currency, self.attribution
        for name, n in self._bucket(bucket).items():
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

    def _said(self, buckets: Mapping[str, Mapping[str, int]]) -> None:
        for dim, fields in buckets.items():
            tally = self.voices[dim]
            for name, n in fields.items():
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
        kpis = kpis_of(
            total.sums(self._slot("*", "")), (money(self.spend), money(self.cost)), previous
        )
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
                    p: persona_engagement(self.slices["persona"].get(p, _Group()).sums({}))
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
            out[name] = kpis_of(g.sums(self._slot(by, name)), ledger, previous)
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
