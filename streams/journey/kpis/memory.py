"""The KPI aggregates in memory: the same version-checked, incremental updates as the Redis
store (`streams.kpi_store`), for tests, replays and anything without Redis."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from schemas.kpis import GroupBy, JourneyFacts, KpiReport
from streams.journey.kpis.aggregates import AggregateQuery
from streams.journey.kpis.contributions import contributions, delta

Facts = JourneyFacts | Mapping[str, Any]


def aggregate(facts: Iterable[Facts]) -> dict[str, Counter[str]]:
    """The aggregates of journeys, summed from scratch (zero entries left out)."""
    buckets: dict[str, Counter[str]] = defaultdict(Counter)
    for f in facts:
        for (bucket, name), value in contributions(f).items():
            buckets[bucket][name] += value
    return {b: Counter({k: v for k, v in c.items() if v}) for b, c in buckets.items() if +c}


def days_of(buckets: Iterable[str]) -> set[int]:
    """The days that have day buckets."""
    return {int(b.split(":")[1]) for b in buckets if b[:2] in ("d:", "q:", "c:")}


class MemoryKpiStore:
    """Facts and version per customer, and the aggregates of the latest facts."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.facts: dict[str, Facts] = {}
        self.buckets: dict[str, Counter[str]] = defaultdict(Counter)

    def write(self, customer_id: str, version: int, facts: Facts | None) -> bool:
        """Apply a journey's new facts (None: it moved away) if `version` is newer than the
        stored one (a drop also at an equal version); True when applied."""
        current = self.versions.get(customer_id)
        if current is not None and (current > version or (current == version and facts)):
            return False
        old = contributions(self.facts.get(customer_id))
        for (bucket, name), change in delta(old, contributions(facts)).items():
            counter = self.buckets[bucket]
            counter[name] += change
            if not counter[name]:
                del counter[name]
        self.versions[customer_id] = version
        if facts is None:
            self.facts.pop(customer_id, None)
        else:
            self.facts[customer_id] = facts
        return True

    def snapshot(self) -> dict[str, Counter[str]]:
        """The non-empty buckets."""
        return {b: Counter(c) for b, c in self.buckets.items() if c}

    def report(
        self,
        *,
        now: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        by: GroupBy | None = None,
        currency: str | None = None,
        daily: bool = False,
    ) -> KpiReport:
        """The report of a day-aligned window, from the aggregates."""
        q = AggregateQuery.of(
            now=now, since=since, until=until, by=by, currency=currency, daily=daily
        )
        return q.report(days_of(self.buckets), self.buckets)
