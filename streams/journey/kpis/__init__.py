"""Shared KPIs, attribution and feedback insight: pure functions over journeys. No I/O, no clock.

Exactness comes from the journeys, not from counters. A journey is already deduplicated,
merged and ordered by event time by the core; `journey_facts` reduces it to a small
`JourneyFacts` record. Two ways lead from facts to a report, with the same formulas:

* `compute_kpis` aggregates the facts of every live journey for any event-time window (the
  definition; its cost grows with the number of journeys);
* `contributions` maps one journey's facts to additive, integer per-day aggregates; the
  store subtracts a journey's old contributions and adds its new ones, and `AggregateQuery`
  answers a day-aligned window from the aggregates of the window's days only.

Hence a replayed or duplicated touchpoint never counts twice, a late touchpoint lands in the
window of its event time, and an identity merge moves the counts. Definitions: docs/kpis.md.

Modules: `units` (time, money, the funnel, windows), `facts` (journey → facts), `loaded`
(facts as tuples), `formulas` (sums → KPIs), `attribution`, `series` (daily rows),
`recompute` (facts → report), `contributions` (facts → aggregates), `aggregates`
(aggregates → report).
"""

from streams.journey.kpis.attribution import attribute, credits
from streams.journey.kpis.facts import journey_facts, journey_facts_json
from streams.journey.kpis.recompute import GROUP_KEYS, compute_kpis, default_currency
from streams.journey.kpis.units import (
    ATTRIBUTION_QUANTUM,
    CENT,
    EPOCH,
    FUNNEL,
    Window,
    from_micros,
    micros,
)

__all__ = [
    "ATTRIBUTION_QUANTUM",
    "CENT",
    "EPOCH",
    "FUNNEL",
    "GROUP_KEYS",
    "Window",
    "attribute",
    "compute_kpis",
    "credits",
    "default_currency",
    "from_micros",
    "journey_facts",
    "journey_facts_json",
    "micros",
]

from streams.journey.kpis.aggregates import AggregateQuery
from streams.journey.kpis.contributions import contributions, delta
from streams.journey.kpis.memory import Aggregates, MemoryKpiStore, aggregate

__all__ += ["AggregateQuery", "Aggregates", "MemoryKpiStore", "aggregate", "contributions", "delta"]
