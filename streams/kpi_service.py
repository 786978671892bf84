"""KPIs at the edge: answer a question from the per-day aggregates in Redis.

The aggregates are kept exact and incremental by the worker's facts writes
(`streams.kpi_store`); the formulas are pure (`streams.journey.kpis`); see docs/kpis.md.
Used by ``tandem kpis``, ``GET /v1/kpis`` and the dashboard's snapshot.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time

from schemas.kpis import GroupBy, KpiReport
from streams.projection import JourneyProjection


def day_window(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """Event-time bounds for dates: from the start of `since` to the end of `until` (UTC).

    Both dates are inclusive, as people read "--since 2024-03-01 --until 2024-03-31".
    """
    start = None if since is None else datetime.combine(since, clock_time(), tzinfo=UTC)
    end = None
    if until is not None:
        if until >= date.max:  # the day after it does not exist
            raise ValueError(f"--until {until} is past the last day Tandem can count")
        end = datetime.combine(until + timedelta(days=1), clock_time(), tzinfo=UTC)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"--since {since} is after --until {until}")
    return start, end


def utcnow() -> datetime:
    """The wall clock (only the hand-off SLA "pending or breached" depends on it)."""
    return datetime.now(UTC)


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
    """The KPI report of every live journey for the whole-day window [since, until), read
    from the aggregates of the window's days (not from every journey's facts)."""
    return await projection.kpis.report(
        now=now or utcnow(), since=since, until=until, by=by, currency=currency, daily=daily
    )
