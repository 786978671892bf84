"""``GET /v1/kpis``: the shared KPIs over HTTP, with the filters of ``tandem kpis``.

``GET /v1/kpis/snapshot`` returns the dashboard's all-time report with the daily series,
computed on demand from the per-day aggregates.

**No API key.** The API keys of `streams.api.auth` are publishing credentials of tools; a
dashboard reading aggregates must not hold one. The report carries aggregates only — counts,
sums, rates, campaign / channel / persona names — never a person's identifiers; deployments
that treat revenue figures as confidential put this route behind their reverse proxy's auth.
Definitions: docs/kpis.md.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response

from schemas.kpis import GroupBy, KpiReport
from streams import kpi_service
from streams.projection import JourneyProjection
from streams.settings import Settings

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])


def _projection(request: Request) -> JourneyProjection:
    settings: Settings = request.app.state.settings
    return JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)


@router.get(
    "",
    response_model=KpiReport,
    summary="Shared KPIs for an event-time window",
    responses={422: {"description": "bad filter"}, 503: {"description": "Redis unavailable"}},
)
async def get_kpis(
    request: Request,
    since: Annotated[date | None, Query(description="first day, YYYY-MM-DD (UTC)")] = None,
    until: Annotated[date | None, Query(description="last day, YYYY-MM-DD, inclusive")] = None,
    by: Annotated[GroupBy | None, Query(description="slice by this dimension")] = None,
    currency: Annotated[
        str | None, Query(pattern=r"^[A-Z]{3}$", description="default: the most used one")
    ] = None,
    daily: Annotated[bool, Query(description="add the counts per event-time day")] = False,
) -> Response:
    """The same report as ``tandem kpis --json`` (docs/kpis.md), from the per-day aggregates
    of the window: exact for any window, late events in their event-time day."""
    try:
        start, end = kpi_service.day_window(since, until)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    projection = _projection(request)
    try:
        report = await kpi_service.report(
            projection, since=start, until=end, by=by, currency=currency, daily=daily
        )
    except (ConnectionError, OSError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Redis: {exc}") from None
    finally:
        await projection.close()
    # Serialised once by the model itself (FastAPI would validate the report a second time).
    return Response(report.model_dump_json(), media_type="application/json")


@router.get(
    "/snapshot",
    response_model=KpiReport,
    summary="The dashboard's all-time KPI snapshot",
    responses={503: {"description": "Redis unavailable"}},
)
async def get_kpi_snapshot(request: Request) -> Response:
    """The all-time report with the daily series, from the aggregates (always current)."""
    projection = _projection(request)
    try:
        report = await kpi_service.report(projection, daily=True)
    except (ConnectionError, OSError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Redis: {exc}") from None
    finally:
        await projection.close()
    return Response(report.model_dump_json(), media_type="application/json")
