"""KPI aggregates laws: the incremental per-day aggregates answer exactly what the report
computed from every journey's facts answers, and they never depend on the order, repetition
or staleness of the changes that built them.

* aggregates(latest facts) report == `compute_kpis`(latest facts), for every whole-day window,
  slicing, currency and moment of the question — as JSON, byte for byte: the models compare
  money by value (Decimal("1000") == Decimal("1000.00")), so only the JSON shows a money
  amount spelled two ways;
* for any sequence of facts replacements and drops (versions in any order, redelivered)
  interleaved with partial catch-ups, a final catch-up leaves exactly the aggregation from
  scratch of the latest facts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.kpis import (
    Amount,
    HandoffFacts,
    JourneyFacts,
    NpsResponse,
    StageEntry,
    Voice,
    WonDeal,
)
from streams import workflow
from streams.journey import kpis

from .strategies import T0, law_playbook, parse, touchpoint_documents

PB = law_playbook()
LAW = settings(max_examples=150, deadline=None)


def facts_of(docs: list[dict[str, Any]]) -> list[JourneyFacts]:
    records = workflow.replay(parse(docs), PB).records.values()
    return [kpis.journey_facts(r, PB) for r in records]


@st.composite
def questions(draw: st.DrawFn) -> dict[str, Any]:
    """A whole-day window (either end may be open), slicing, currency and wall clock."""
    since = draw(st.none() | st.integers(-2, 70))
    length = draw(st.none() | st.integers(1, 70))
    until = None if length is None else (since or 0) + length
    return {
        "since": None if since is None else T0 + timedelta(days=since),
        "until": None if until is None else T0 + timedelta(days=until),
        "by": draw(st.sampled_from([None, "channel", "campaign", "persona", "source"])),
        "currency": draw(st.sampled_from([None, "EUR", "USD"])),
        "daily": draw(st.booleans()),
        # Before, inside and after the touchpoints: hand-offs turn from pending to breached.
        "now": T0
        + timedelta(
            hours=draw(st.integers(-24, 24 * 80)), microseconds=draw(st.integers(0, 10**6))
        ),
    }


@LAW
@given(touchpoint_documents(max_size=25), questions())
def test_aggregates_answer_what_the_facts_answer(
    docs: list[dict[str, Any]], ask: dict[str, Any]
) -> None:
    facts = facts_of(docs)
    store = kpis.MemoryKpiStore()
    for f in facts:
        store.write(f.customer_id, 1, f)
    expected = kpis.compute_kpis(facts, **ask)
    assert store.report(**ask).model_dump_json() == expected.model_dump_json()


DAY_US = 86_400_000_000
BLOCKS_T0 = datetime(2024, 1, 1, tzinfo=UTC)  # day 19,723: 11 days into block 616


def long_facts(rng: random.Random, i: int) -> JourneyFacts:
    """A journey over up to a year: stages, answers, touches, churns and answers to surveys
    months apart, so that second days fall in other 32-day blocks than their first days."""
    base = int(BLOCKS_T0.timestamp() * 1_000_000)

    def at(low: float, high: float) -> int:
        return base + int(rng.uniform(low, high) * DAY_US)

    t = at(0, 200)
    stages = []
    for stage in ["lead", "mql", "sal", "customer", "churned", "customer", "churned"]:
        if rng.random() < 0.2:
            break
        stages.append(StageEntry(stage=stage, at=t))
        t += int(rng.choice([0.2, 3, 40, 90]) * DAY_US)
    handoffs = []
    for _ in range(rng.randint(0, 2)):
        h = at(0, 250)
        answered = None if rng.random() < 0.3 else h + int(rng.choice([0.1, 2, 35, 70]) * DAY_US)
        touch = None if rng.random() < 0.3 else h + int(rng.choice([0.1, 1, 33, 80]) * DAY_US)
        deadline = h + int(rng.choice([0.5, 1.5, 40]) * DAY_US)
        handoffs.append(HandoffFacts(at=h, deadline=deadline, answered_at=answered,
                                     first_sales_touch_at=touch))  # fmt: skip
    return JourneyFacts(
        customer_id=f"c{i}",
        first_touch_at=stages[0].at if stages else at(0, 200),
        first_channel=rng.choice(["email", "social", None]),
        persona=rng.choice(["buyer", None]),
        stages=stages,
        won=[WonDeal(at=at(0, 300), amount=Decimal(100), currency="EUR", gross_margin=0.5)],
        renewals=[Amount(at=at(0, 300), amount=Decimal(50), currency="EUR")],
        marketing_touches=sorted(at(0, 300) for _ in range(rng.randint(0, 4))),
        handoffs=handoffs,
        nps=[NpsResponse(at=at(0, 300), score=rng.randint(0, 10)) for _ in range(2)],
        voices=[Voice(at=at(0, 300), kind="pain_point", value="price") for _ in range(2)],
    )


def test_block_buckets_answer_exactly_for_second_days_in_other_blocks() -> None:
    """Windows over whole 32-day blocks, their ends aligned or not, asked at moments inside
    and after them: the block buckets answer what the facts answer."""
    rng = random.Random(5)
    facts = [long_facts(rng, i) for i in range(120)]
    store = kpis.MemoryKpiStore()
    for f in facts:
        store.write(f.customer_id, 1, f)
    day = timedelta(days=1)
    ends = [None, 21, 53, 60, 85, 117, 130, 149, 181, 213, 250, 320]  # 21 + 32k: block starts
    for since, until in [(s, u) for s in ends for u in ends if s is None or u is None or s < u]:
        for now in [40.5, 117.25, 200.75, 400.0]:
            for by in [None, "channel"]:
                ask: dict[str, Any] = {
                    "since": None if since is None else BLOCKS_T0 + since * day,
                    "until": None if until is None else BLOCKS_T0 + until * day,
                    "now": BLOCKS_T0 + now * day,
                    "by": by,
                }
                expected = kpis.compute_kpis(facts, **ask).model_dump_json()
                assert store.report(**ask).model_dump_json() == expected, ask


Change = tuple[str, int, JourneyFacts | None] | int
"""A facts write (customer, version, facts or None: moved away), or a catch-up of n journeys."""


@st.composite
def histories(draw: st.DrawFn) -> list[Change]:
    """Facts of a few customers at several versions, applied in any order, some twice, with
    partial catch-ups in between."""
    pool = facts_of(draw(touchpoint_documents(max_size=20)))
    pool += facts_of(draw(touchpoint_documents(prefix="f", max_size=20)))
    customers = ["c1", "c2", "c3"]
    writes: list[tuple[str, int, JourneyFacts | None]] = []
    for _ in range(draw(st.integers(1, 14))):
        customer = draw(st.sampled_from(customers))
        version = draw(st.integers(1, 6))
        moved = draw(st.booleans()) if pool else True
        facts = (
            None
            if moved
            else draw(st.sampled_from(pool)).model_copy(update={"customer_id": customer})
        )
        writes.append((customer, version, facts))
    writes += draw(st.lists(st.sampled_from(writes), max_size=5))  # redelivery
    catch_ups: list[Change] = draw(st.lists(st.integers(0, 3), max_size=6))
    return draw(st.permutations([*writes, *catch_ups]))


@LAW
@given(histories())
def test_catch_up_equals_the_aggregation_of_the_latest_facts(history: list[Change]) -> None:
    store = kpis.MemoryKpiStore()
    for change in history:
        if isinstance(change, int):
            store.catch_up(change)
        else:
            store.write(*change)
    store.catch_up()
    assert store.snapshot() == kpis.aggregate(store.facts.values())
    # The latest facts are those of the highest version (a drop wins a tie).
    writes = [c for c in history if not isinstance(c, int)]
    for customer in {c for c, _, _ in writes}:
        top = max(v for c, v, _ in writes if c == customer)
        at_top = [f for c, v, f in writes if c == customer and v == top]
        assert store.versions[customer] == top
        if any(f is None for f in at_top):
            assert customer not in store.facts
