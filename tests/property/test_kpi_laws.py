"""KPI laws: the report depends on the set of touchpoints only, and windows add up.

Touchpoints of several people (linked by shared identifiers, so journeys merge) are resolved
and folded the way the worker does it (`workflow.replay`); the KPIs of the resulting journeys'
facts must not depend on delivery order or duplication, and period counts over two adjacent
windows must add up to those of their union.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.vocabulary import Touchpoint
from schemas.kpis import KpiReport
from streams import workflow
from streams.journey import kpis

from .strategies import T0, law_playbook, parse, touchpoint_documents, with_duplicates

PB = law_playbook()
NOW = datetime(2030, 1, 1, tzinfo=UTC)
LAW = settings(max_examples=150, deadline=None)
Docs = list[dict[str, Any]]

PERIOD_COUNTS = (
    "journeys",
    "leads",
    "mqls",
    "sals",
    "sqls",
    "opportunities",
    "customers_won",
    "deals_won",
    "deals_lost",
    "churned",
    "form_views",
    "form_submissions",
    "handoffs",
    "revenue",
    "marketing_spend",
    "sales_cost",
)


def report(touchpoints: list[Touchpoint], **kwargs: Any) -> KpiReport:
    records = workflow.replay(touchpoints, PB).records.values()
    return kpis.compute_kpis([kpis.journey_facts(r, PB) for r in records], now=NOW, **kwargs)


@st.composite
def two_deliveries(draw: st.DrawFn) -> tuple[Docs, Docs]:
    """The same touchpoints delivered twice: in two orders, the second with re-deliveries."""
    deliveries = draw(with_duplicates(draw(touchpoint_documents(max_size=25))))
    extra = draw(st.lists(st.sampled_from(deliveries), max_size=5))
    return (
        draw(st.permutations(deliveries)),
        draw(st.permutations([*deliveries, *(dict(d) for d in extra)])),
    )


@LAW
@given(two_deliveries(), st.integers(0, 120), st.sampled_from([None, "channel", "source"]))
def test_kpis_ignore_order_and_duplication(
    deliveries: tuple[Docs, Docs], start_slot: int, by: Any
) -> None:
    first, second = deliveries
    window = {"since": T0 + timedelta(hours=12 * start_slot), "until": T0 + timedelta(days=90)}
    for kwargs in ({}, {**window, "by": by, "daily": True}):
        a = report(parse(first), **kwargs)
        b = report(parse(second), **kwargs)
        assert a == b


@LAW
@given(touchpoint_documents(max_size=25), st.integers(1, 239))
def test_period_counts_of_adjacent_windows_add_up(docs: Docs, split_slot: int) -> None:
    touchpoints = parse(docs)
    start, end = T0, T0 + timedelta(days=121)
    middle = T0 + timedelta(hours=12 * split_slot)
    whole = report(touchpoints, since=start, until=end)
    left = report(touchpoints, since=start, until=middle)
    right = report(touchpoints, since=middle, until=end)
    for name in PERIOD_COUNTS:
        assert getattr(left, name) + getattr(right, name) == getattr(whole, name), name
    assert left.attribution.deals + right.attribution.deals == whole.attribution.deals
    won = left.attribution.won_revenue + right.attribution.won_revenue
    assert won == whole.attribution.won_revenue
