"""The KPI aggregates in memory: the same version-checked facts writes and lazy, incremental
catch-up as the Redis store (`streams.kpi_store`), for tests, replays and anything without
Redis."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.kpis import GroupBy, JourneyFacts, KpiReport
from streams.journey.kpis.aggregates import AggregateQuery, select
from streams.journey.kpis.contributions import Delta, contributions, delta

Facts = JourneyFacts | Mapping[str, Any]


@dataclass
class Aggregates:
    """Hash buckets (field → sum, no zeros) and sorted sets (member → score), by name."""

    buckets: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    ranked: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))

    def apply(self, change: Delta) -> None:
        for (bucket, name), diff in change.sums.items():
            counter = self.buckets[bucket]
            counter[name] += diff
            if not counter[name]:
                del counter[name]
        for (key, member), score in change.ranked.items():
            self.ranked[key][member] = score
        for key, member in change.unranked:
            self.ranked[key].pop(member, None)

    def nonempty(self) -> Aggregates:
        """A copy without empty buckets and sorted sets."""
        return Aggregates(
            {b: Counter(c) for b, c in self.buckets.items() if c},
            {k: dict(z) for k, z in self.ranked.items() if z},
        )


def aggregate(facts: Iterable[Facts]) -> Aggregates:
    """The aggregates of journeys, summed from scratch (zero entries left out)."""
    out = Aggregates()
    for f in facts:
        c = contributions(f)
        for (bucket, name), value in c.sums.items():
            out.buckets[bucket][name] += value
        for (key, member), score in c.ranked.items():
            out.ranked[key][member] = score
    for counter in out.buckets.values():
        for name in [n for n, v in counter.items() if not v]:
            del counter[name]
    return out.nonempty()


def days_of(buckets: Iterable[str]) -> set[int]:
    """The days that have day buckets."""
    return {int(b.split(":")[1]) for b in buckets if b[:2] in ("d:", "c:")}


class MemoryKpiStore:
    """Per customer the latest facts and their version (written by the worker) and the facts
    last aggregated; `catch_up` brings the aggregates to the latest facts."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.pending: dict[str, Facts | None] = {}
        self.aggregated: dict[str, Facts] = {}
        self.aggregates = Aggregates()

    @property
    def facts(self) -> dict[str, Facts]:
        """The latest facts of every live journey."""
        latest = dict(self.aggregated)
        for customer_id, facts in self.pending.items():
            if facts is None:
                latest.pop(customer_id, None)
            else:
                latest[customer_id] = facts
        return latest

    def write(self, customer_id: str, version: int, facts: Facts | None) -> bool:
        """Keep a journey's new facts (None: it moved away) if `version` is newer than the
        stored one (a drop also at an equal version); True when kept."""
        current = self.versions.get(customer_id)
        if current is not None and (current > version or (current == version and facts)):
            return False
        self.versions[customer_id] = version
        self.pending[customer_id] = facts
        return True

    def catch_up(self, limit: int | None = None) -> int:
        """Aggregate the changes of up to `limit` journeys (all: None); how many."""
        ids = list(self.pending)[:limit]
        for customer_id in ids:
            facts = self.pending.pop(customer_id)
            old = contributions(self.aggregated.get(customer_id))
            self.aggregates.apply(delta(old, contributions(facts)))
            if facts is None:
                self.aggregated.pop(customer_id, None)
            else:
                self.aggregated[customer_id] = facts
        return len(ids)

    def snapshot(self) -> Aggregates:
        """The non-empty aggregates, as of the last catch-up."""
        return self.aggregates.nonempty()

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
        """The report of a day-aligned window, from the aggregates, after a catch-up."""
        self.catch_up()
        q = AggregateQuery.of(
            now=now, since=since, until=until, by=by, currency=currency, daily=daily
        )
        answer = q.answer(days_of(self.aggregates.buckets), self.aggregates.buckets)
        ranked = self.aggregates.ranked
        return answer.report({m.slot: select(m, ranked) for m in answer.medians})
