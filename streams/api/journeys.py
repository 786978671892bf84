"""``GET /v1/journeys``: the journeys Tandem has built, read from the Redis read model.

``GET /v1/journeys/{reference}`` returns one journey snapshot (`schemas.journey.JourneySnapshot`,
the same document as ``tandem journey ID --json``) for a customer id or any identifier, following
journeys that moved to another customer id (identity merges). ``GET /v1/journeys`` lists compact
rows, most recently touched first, optionally only those of some stages.

**A read key.** Journeys carry personal identifiers (emails, names, CRM contact ids): every
route here needs an API key with the ``read`` scope (401 without a key, 403 without the scope;
`streams.api.auth`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from schemas.journey import JourneySnapshot, Stage
from streams.api.auth import AUTH_RESPONSES, require_scope
from streams.journey.identity import LEDGER_CUSTOMER
from streams.projection import JourneyProjection
from streams.settings import Settings

MAX_LIMIT = 500
"""The most rows ``GET /v1/journeys`` returns at once."""

STATE_KEY = "journey_projection"
"""Where the lifespan keeps the shared read model on ``app.state``."""


@asynccontextmanager
async def projection_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One Redis connection pool for every journeys request, closed at shutdown."""
    settings: Settings = app.state.settings
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    setattr(app.state, STATE_KEY, projection)
    try:
        yield
    finally:
        delattr(app.state, STATE_KEY)
        await projection.close()


router = APIRouter(
    prefix="/v1/journeys",
    tags=["journeys"],
    lifespan=projection_lifespan,
    dependencies=[Depends(require_scope("read"))],
    responses=AUTH_RESPONSES,
)


@asynccontextmanager
async def _read_model(request: Request) -> AsyncIterator[JourneyProjection]:
    """The lifespan's read model; a short-lived one when the app runs without its lifespan
    (e.g. a `TestClient` outside ``with``, whose requests may each run on a new event loop, so
    a shared pool would be bound to a dead loop). Redis failures become 503."""
    shared: JourneyProjection | None = getattr(request.app.state, STATE_KEY, None)
    own = shared is None
    if shared is None:
        settings: Settings = request.app.state.settings
        projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    else:
        projection = shared
    try:
        yield projection
    except (RedisError, OSError) as exc:  # redis' ConnectionError is not the builtin one
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Redis: {exc}") from None
    finally:
        if own:
            await projection.close()


class JourneyRow(BaseModel):
    """One journey in a few fields: enough for a list, the rest is one click away."""

    customer_id: str
    identities: list[str] = Field(description="strongest first (contact, email, anonymous)")
    stage: Stage
    stage_entered_at: str | None = Field(None, description="when the current stage began")
    engagement: float = Field(description="engagement score (decayed)")
    fit: float = Field(description="fit score against the best-matching persona")
    persona: str | None = None
    company: str | None = None
    last_touch_at: str | None = Field(None, description="event time of the latest touchpoint")
    last_touch_type: str | None = None
    last_touch_channel: str | None = None
    touchpoints: int = 0
    open_objections: int = 0

    @classmethod
    def of(cls, snapshot: dict[str, Any]) -> JourneyRow:
        """The row of a stored snapshot (read as JSON: no full validation, lists stay cheap)."""
        scores = snapshot.get("scores") or {}
        history = snapshot.get("stage_history") or []
        recent = snapshot.get("recent_touchpoints") or []
        last = recent[-1] if recent else {}
        return cls(
            customer_id=snapshot["customer_id"],
            identities=snapshot.get("identities") or [],
            stage=snapshot["stage"],
            stage_entered_at=history[-1]["entered_at"] if history else None,
            engagement=(scores.get("engagement") or {}).get("score", 0.0),
            fit=(scores.get("fit") or {}).get("score", 0.0),
            persona=(scores.get("fit") or {}).get("persona"),
            company=(snapshot.get("firmographics") or {}).get("company"),
            last_touch_at=snapshot.get("last_touch_at"),
            last_touch_type=last.get("type"),
            last_touch_channel=last.get("channel"),
            touchpoints=(snapshot.get("counts") or {}).get("touchpoints", 0),
            open_objections=len(snapshot.get("open_objections") or []),
        )


def _recency(row: JourneyRow) -> tuple[str, str]:
    # RFC 3339 UTC strings of one format sort as time; no touch at all sorts last.
    return (row.last_touch_at or "", row.customer_id)


async def _live_stages(projection: JourneyProjection) -> dict[str, str]:
    """Each live journey's stage from its hash field (cheap: no snapshot parsing)."""
    ids = sorted(await projection.customer_ids())
    pipe = projection.redis.pipeline(transaction=False)
    for customer_id in ids:
        pipe.hget(projection._journey_key(customer_id), "stage")
    stages = await pipe.execute()
    return {cid: stage for cid, stage in zip(ids, stages, strict=True) if stage}


@router.get(
    "",
    response_model=list[JourneyRow],
    summary="Journeys, most recently touched first",
    responses={
        200: {"headers": {"X-Total-Count": {"description": "rows matching, before `limit`"}}},
        503: {"description": "Redis unavailable"},
    },
)
async def list_journeys(
    request: Request,
    stage: Annotated[
        list[Stage] | None, Query(description="only these stages (repeat for several)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many rows")] = 50,
) -> Response:
    """Compact rows of the live journeys (not those absorbed by a merge), newest touch first.

    The spend ledger (customer id ``ledger``: campaign spend and sales cost, not a person) is
    left out. ``X-Total-Count`` tells how many journeys matched before `limit`.
    """
    wanted = {s.value for s in stage} if stage else None
    async with _read_model(request) as projection:
        stages = await _live_stages(projection)
        ids = [
            cid
            for cid, current in stages.items()
            if cid != LEDGER_CUSTOMER and (wanted is None or current in wanted)
        ]
        pipe = projection.redis.pipeline(transaction=False)
        for customer_id in ids:
            pipe.hget(projection._journey_key(customer_id), "snapshot")
        raws = await pipe.execute()
    # A journey moved between the two reads has no snapshot any more: skip it.
    rows = [JourneyRow.of(json.loads(raw)) for raw in raws if raw]
    rows.sort(key=_recency, reverse=True)
    body = json.dumps([row.model_dump(mode="json") for row in rows[:limit]])
    return Response(body, media_type="application/json", headers={"X-Total-Count": str(len(rows))})


@router.get(
    "/{reference}",
    response_model=JourneySnapshot,
    summary="One customer's journey, by customer id or any identifier",
    responses={
        404: {"description": "no journey for this reference"},
        503: {"description": "Redis unavailable"},
    },
)
async def get_journey(request: Request, reference: str) -> Response:
    """The journey snapshot of a customer id (``cus_…``) or any identifier: ``email:…``,
    ``contact:…``, ``anon:…`` or a bare email / contact id / anonymous id.

    A journey absorbed into another by an identity merge is followed to the journey that
    absorbed it; ``X-Customer-Id`` names the customer id actually returned.
    """
    async with _read_model(request) as projection:
        customer_id = await projection.resolve(reference)
        raw = None
        if customer_id is not None:
            raw = await projection.redis.hget(projection._journey_key(customer_id), "snapshot")
    if customer_id is None or not raw:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no journey for {reference!r}: not a known customer id or identifier "
            "(has the worker seen this person yet?)",
        )
    # The stored JSON is served as is: it was validated when the worker wrote it.
    return Response(raw, media_type="application/json", headers={"X-Customer-Id": customer_id})


__all__ = ["MAX_LIMIT", "JourneyRow", "projection_lifespan", "router"]
