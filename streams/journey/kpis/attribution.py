"""Attribution: the won revenue credited to channels and campaigns under four models.

Credits are integer quanta (0.0001) times exact rational shares, summed per (dimension,
model, value, denominator) — additive, so the same sums are kept per day in the aggregates —
and rounded once with the largest-remainder method, so every model adds up to the revenue.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from schemas.kpis import (
    ATTRIBUTION_MODELS,
    NONE_GROUP,
    Attribution,
    AttributionModel,
    AttributionReport,
    PathSummary,
    WonDeal,
)
from streams.journey.kpis.units import ATTRIBUTION_QUANTUM, money, units_of

CreditKey = tuple[str, str, str, int]
"""(dimension, model, value, denominator) of a credit sum."""


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


def credit_sums(
    units: int, channels: Mapping[str, Any], campaigns: Mapping[str, Any]
) -> Iterator[tuple[CreditKey, int]]:
    """One won deal's credits along both dimensions under every model, in integer quanta
    over a denominator (several entries may share a key: add them)."""
    for dim, path in (("channel", channels), ("campaign", campaigns)):
        for model in ATTRIBUTION_MODELS:
            for value, numerator, denominator in _credit_terms(path, model):
                yield (dim, model, value, denominator), units * numerator


class AttributionSums:
    """Exact credit sums: per (dimension, model, value, denominator), integer quanta."""

    def __init__(self) -> None:
        self.total_units = 0
        self.deals = 0
        self.sums: dict[CreditKey, int] = defaultdict(int)

    def add(
        self, amount: Decimal, channels: Mapping[str, Any], campaigns: Mapping[str, Any]
    ) -> None:
        """Credit one won deal along both dimensions under every model."""
        units = units_of(amount)
        self.total_units += units
        self.deals += 1
        for key, credit in credit_sums(units, channels, campaigns):
            self.sums[key] += credit

    def report(self, total: Decimal | None = None) -> AttributionReport:
        """The rounded credits; `total` is the won revenue as shown (default: from quanta)."""
        exact: dict[tuple[str, str], dict[str, Fraction]] = defaultdict(dict)
        for (dim, model, value, denominator), units in self.sums.items():
            shares = exact[dim, model]
            shares[value] = shares.get(value, Fraction(0)) + Fraction(units, denominator)

        def build(dim: str) -> Attribution:
            return Attribution(
                **{m: _round_to_total(exact[dim, m], self.total_units) for m in ATTRIBUTION_MODELS}
            )

        return AttributionReport(
            won_revenue=money(self.total_units) if total is None else total,
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
    acc = AttributionSums()
    for deal in deals:
        acc.add(deal.amount, deal.channels.model_dump(), deal.campaigns.model_dump())
    return acc.report()
