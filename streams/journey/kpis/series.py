"""The daily series of a report computed from facts: period counts and money per UTC day."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from schemas.kpis import DailyKpis
from streams.journey.kpis.loaded import LedgerTuple, LoadedJourney
from streams.journey.kpis.units import CHURNED, EPOCH_DAY, FUNNEL_VALUES, US_PER_DAY, as_money

SERIES_COUNTS = (
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
"""The counts of a `DailyKpis` row; the first six are the funnel's period counts."""
SERIES_MONEY = ("revenue", "marketing_spend", "sales_cost")


class Series:
    """Per-day counts and amounts of the window [lo, hi), in `currency`."""

    def __init__(self, lo: int, hi: int, currency: str | None) -> None:
        self.lo, self.hi, self.currency = lo, hi, currency
        self.ints: dict[int, Counter[str]] = defaultdict(Counter)
        self.money: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

    def _count(self, name: str, times: Iterable[int]) -> None:
        lo, hi = self.lo, self.hi
        for at in times:
            if lo <= at < hi:
                self.ints[at // US_PER_DAY][name] += 1

    def _money(self, name: str, at: int, amount: Decimal, currency: str) -> None:
        if self.lo <= at < self.hi and currency == self.currency:
            self.money[at // US_PER_DAY][name] += amount

    def add(self, j: LoadedJourney) -> None:
        """Count one person journey."""
        for name, stage in zip(SERIES_COUNTS, FUNNEL_VALUES, strict=False):
            at = j.reached.get(stage)
            if at is not None:
                self._count(name, (at,))
        self._count("deals_won", (w[0] for w in j.won))
        self._count("deals_lost", j.lost)
        # A journey churning twice on one day is one churned journey that day.
        churn_days = {at // US_PER_DAY: at for stage, at in j.stages if stage == CHURNED}
        self._count("churned", churn_days.values())
        self._count("handoffs", (h[0] for h in j.handoffs))
        self._count("form_views", j.form_views)
        self._count("form_submissions", j.form_submissions)
        for w in j.won:
            self._money("revenue", w[0], w[1], w[2])
        for at, amount, currency in j.renewals:
            self._money("revenue", at, amount, currency)

    def add_ledger(self, item: LedgerTuple) -> None:
        """Count one spend or cost record."""
        kind, at, amount, currency, _, _ = item
        self._money("marketing_spend" if kind == "spend" else "sales_cost", at, amount, currency)

    def days(self) -> list[DailyKpis]:
        """One row per day with activity, in order."""
        return [
            DailyKpis(
                day=EPOCH_DAY + timedelta(days=index),
                **{name: self.ints[index][name] for name in SERIES_COUNTS},
                revenue=as_money(self.money[index]["revenue"]),
                marketing_spend=as_money(self.money[index]["marketing_spend"]),
                sales_cost=as_money(self.money[index]["sales_cost"]),
            )
            for index in sorted(self.ints.keys() | self.money.keys())
        ]
