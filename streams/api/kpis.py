"""``GET /v1/kpis``: the shared KPIs over HTTP, with the filters of ``tandem kpis``.

``GET /v1/kpis/snapshot`` returns the dashboard's all-time report with the daily series,
computed on demand from the per-day aggregates. Every answer first catches the aggregates up
with the journeys changed since (`streams.kpi_store`); while the app runs, a background task
does it every `CATCH_UP_INTERVAL_S` seconds too, so an answer rarely has anything to catch up.

**A read key, unless public.** The report carries aggregates only — counts, sums, rates,
campaign / channel / persona names — never a person's identifiers, but revenue and pipeline
figures are confidential in most companies: these routes need an API key with the ``read``
scope unless ``TANDEM_PUBLIC_KPIS=true`` opens them (`streams.api.auth.require_kpi_reader`).
Definitions: docs/kpis.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import Response
from redis.exceptions import RedisError

from schemas.kpis import GroupBy, KpiReport
from streams import kpi_service
from streams.api.auth import AUTH_RESPONSES, require_kpi_reader
from streams.projection import JourneyProjection
from streams.settings import Settings

log = logging.getLogger("tandem.api")

CATCH_UP_INTERVAL_S = 3.0
"""How often the API aggregates the journeys changed since the last catch-up."""


async def _catch_up_forever(settings: Settings) -> None:
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        while True:
            try:
                await projection.kpis.catch_up()
            except Exception:  # Redis away or a bad fact: retried on the next tick
                log.exception("KPI catch-up failed")
            await asyncio.sleep(CATCH_UP_INTERVAL_S)
    finally:
        await projection.close()


@asynccontextmanager
async def catch_up_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Keep the KPI aggregates caught up in the background while the app runs."""
    task = asyncio.create_task(_catch_up_forever(app.state.settings))
    try:
        yield
    finally:
        task.cancel()
        # Bounded: redis-py can swallow a cancel that lands mid-command (redis/redis-py#2028,
        # #2665), and a shutdown must never hang on the background catch-up.
        await asyncio.wait({task}, timeout=5.0)


router = APIRouter(
    prefix="/v1/kpis",
    tags=["kpis"],
    lifespan=catch_up_lifespan,
    dependencies=[Depends(require_kpi_reader)],
    responses=AUTH_RESPONSES,
)


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
    except (RedisError, OSError) as exc:  # redis' ConnectionError is not the builtin one
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
    """The all-time report with the daily series, from the aggregates (caught up first)."""
    projection = _projection(request)
    try:
        report = await kpi_service.report(projection, daily=True)
    except (RedisError, OSError) as exc:  # redis' ConnectionError is not the builtin one
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Redis: {exc}") from None
    finally:
        await projection.close()
    return Response(report.model_dump_json(), media_type="application/json")
