"""KPI money is spelled one way: the full computation from facts (`compute_kpis`) and the
incremental per-day aggregates (what `tandem kpis` answers from) write byte-identical JSON.

A sum of facts keeps the exponents of its terms (Decimal("45000") + Decimal("0") is "45000"),
while the aggregates count integer 0.0001 units and spell them as cents ("45000.00"). The
models compare equal either way (Decimal compares by value), so only the JSON shows it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.kpis import Amount, JourneyFacts, LedgerItem, PathSummary, StageEntry, WonDeal
from streams.journey import kpis
from streams.journey.kpis import compute_kpis, micros
from streams.journey.kpis.units import as_money, money, units_of

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def us(days: float) -> int:
    return micros(DAY0 + timedelta(days=days))


def won(days: float, amount: str, currency: str = "EUR", channel: str = "email") -> WonDeal:
    path = PathSummary(first=channel, last=channel, counts={channel: 1})
    return WonDeal(
        at=us(days),
        amount=Decimal(amount),
        currency=currency,
        gross_margin=0.5,
        channels=path,
        campaigns=path,
    )


def customer(cid: str, channel: str, deals: list[WonDeal], **fields: Any) -> JourneyFacts:
    """A lead on day 0 that became a customer on day 2 (and churned, if asked)."""
    stages = [("lead", 0.0), ("customer", 2.0), *fields.pop("more_stages", [])]
    return JourneyFacts(
        customer_id=cid,
        first_touch_at=us(0),
        first_channel=channel,
        persona="buyer",
        source="inbound",
        stages=[StageEntry(stage=s, at=us(d)) for s, d in stages],
        won=deals,
        **fields,
    )


def journeys() -> list[JourneyFacts]:
    """Amounts spelled every way the contract allows: whole ("45000"), cents, 1 to 4
    decimals, trailing zeros, whole-cent 4-decimal spellings, and another currency."""
    ledger = [
        LedgerItem(
            kind="spend", at=us(0.5), amount=Decimal("3162000"), currency="EUR", channel="email"
        ),
        LedgerItem(
            kind="spend", at=us(9.5), amount=Decimal("1200.5"), currency="EUR", channel="social"
        ),
        LedgerItem(kind="cost", at=us(1.5), amount=Decimal("800"), currency="EUR"),
        LedgerItem(kind="cost", at=us(9.5), amount=Decimal("0.1234"), currency="USD"),
    ]
    return [
        customer(
            "a",
            "email",
            [won(2.5, "45000"), won(9.5, "12.5")],
            renewals=[Amount(at=us(9.7), amount=Decimal("500.0000"), currency="EUR")],
            more_stages=[("churned", 9.8)],
        ),
        customer("b", "social", [won(3.5, "1250.10"), won(3.6, "99.1234", currency="USD")]),
        customer("c", "email", [won(9.5, "0.001")]),
        JourneyFacts(customer_id="ledger", ledger=ledger),
    ]


QUESTIONS: list[dict[str, Any]] = [
    {},
    {"by": "channel", "daily": True},
    {"by": "persona", "currency": "USD"},
    {"since": DAY0 + timedelta(days=7), "until": DAY0 + timedelta(days=14), "daily": True},
    {"since": DAY0 + timedelta(days=1), "until": DAY0 + timedelta(days=3), "by": "campaign"},
    {"since": DAY0 + timedelta(days=100), "by": "source"},  # no amount at all: zeros
]


@pytest.mark.parametrize("ask", QUESTIONS)
def test_full_computation_and_aggregates_write_byte_identical_money(ask: dict[str, Any]) -> None:
    facts = journeys()
    store = kpis.MemoryKpiStore()
    for f in facts:
        store.write(f.customer_id, 1, f)
    recomputed = compute_kpis(facts, now=NOW, **ask).model_dump_json()
    aggregated = store.report(now=NOW, **ask).model_dump_json()
    assert recomputed == aggregated


def test_money_is_cents_or_four_decimals_in_the_report() -> None:
    report = json.loads(compute_kpis(journeys(), now=NOW, daily=True).model_dump_json())
    # 45000 + 12.5 + 500.0000 + 1250.10 + 0.001 (EUR deals and renewals)
    assert report["revenue"] == "46762.6010"
    assert report["marketing_spend"] == "3163200.50"
    assert report["sales_cost"] == "800.00"
    assert report["other_currencies"] == {"USD": "99.1234"}
    assert report["attribution"]["won_revenue"] == "46262.6010"
    assert report["feedback"]["personas"]["buyer"]["revenue"] == "46762.6010"
    first_day = report["series"][0]
    assert (first_day["revenue"], first_day["sales_cost"]) == ("0.00", "0.00")
    assert first_day["marketing_spend"] == "3162000.00"


@pytest.mark.parametrize(
    ("amount", "spelled"),
    [
        ("3162000", "3162000.00"),
        ("3162000.0000", "3162000.00"),
        ("12.5", "12.50"),
        ("0", "0.00"),
        ("0.001", "0.0010"),
        ("99.1234", "99.1234"),
    ],
)
def test_as_money_spells_an_amount_as_the_aggregates_do(amount: str, spelled: str) -> None:
    assert str(as_money(Decimal(amount))) == spelled
    assert str(money(units_of(Decimal(amount)))) == spelled
