"""KPIs at the edge: read every journey's facts from Redis, compute, and keep the dashboard's
snapshot fresh. The computing itself is pure (`streams.journey.kpis`); see docs/kpis.md.

Used by ``tandem kpis``, ``GET /v1/kpis`` and the worker's KPI snapshot timer.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from schemas.kpis import GroupBy, KpiReport
from streams.journey import kpis
from streams.projection import JourneyProjection

FactsDocument = dict[str, Any]
"""A journey's stored facts, decoded (the JSON shape of `JourneyFacts`)."""


def parse_facts(raw: list[str]) -> list[FactsDocument]:
    """Facts from their stored JSON texts, decoded without validation.

    The worker validated every facts record when it built it; re-validating ~10⁴ of them on
    each query would cost more than the whole rest of the query (see benchmarks/bench_kpis).
    """
    if not raw:
        return []
    # One decode of one document (a JSON array of every journey's facts): fewer calls.
    decoded: list[FactsDocument] = json.loads("[" + ",".join(raw) + "]")
    return decoded


def day_window(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """Event-time bounds for dates: from the start of `since` to the end of `until` (UTC).

    Both dates are inclusive, as people read "--since 2024-03-01 --until 2024-03-31".
    """
    start = None if since is None else datetime.combine(since, clock_time(), tzinfo=UTC)
    end = None
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), clock_time(), tzinfo=UTC)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"--since {since} is after --until {until}")
    return start, end


def utcnow() -> datetime:
    """The wall clock (only the hand-off SLA "pending or breached" depends on it)."""
    return datetime.now(UTC)


async def load_facts(projection: JourneyProjection) -> list[FactsDocument]:
    """Every live journey's facts, in one Redis round trip."""
    return parse_facts(await projection.all_facts())


async def report(
    projection: JourneyProjection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: GroupBy | None = None,
    currency: str | None = None,
    daily: bool = False,
    now: datetime | None = None,
) -> KpiReport:
    """The KPI report of every live journey for the window [since, until)."""
    with _gc_paused():
        facts = await load_facts(projection)
        return kpis.compute_kpis(
            facts,
            now=now or utcnow(),
            since=since,
            until=until,
            by=by,
            currency=currency,
            daily=daily,
        )


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Decoding and aggregating ~10⁴ journeys allocates a few hundred thousand objects that all
    # stay alive until the answer: the cyclic GC would rescan them over and over for nothing
    # (about a third of a query's time). Nothing here creates reference cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class KpiSnapshotter:
    """Keeps ``{prefix}kpi:snapshot`` (all-time report with the daily series) up to date.

    Recomputes when a journey's facts changed since the last snapshot, and at least every
    `max_age_s` (hand-offs turn from pending to breached with the wall clock alone).
    """

    def __init__(self, projection: JourneyProjection, max_age_s: float = 60.0) -> None:
        self.projection = projection
        self.max_age_s = max_age_s
        self._computed_at: float | None = None

    async def refresh(self, now: datetime | None = None) -> bool:
        """Recompute and store the snapshot if needed; True when written."""
        changes = await self.projection.facts_changes()
        fresh = (
            self._computed_at is not None and time.monotonic() - self._computed_at < self.max_age_s
        )
        if fresh and changes == await self.projection.kpi_snapshot_changes():
            return False
        # The counter is read before the facts: a write in between only causes another
        # refresh on the next tick, never a missed one.
        facts = await load_facts(self.projection)
        at = now or utcnow()
        # Off the event loop: the worker keeps consuming while the report is computed.
        result = await asyncio.to_thread(
            lambda: kpis.compute_kpis(facts, now=at, daily=True).model_dump_json()
        )
        await self.projection.write_kpi_snapshot(result, changes)
        self._computed_at = time.monotonic()
        return True
