"""Tandem's HTTP API (FastAPI): touchpoint ingest today; journeys and KPIs plug in as routers.

    app = create_app(get_settings())
    uvicorn.run(app, host="0.0.0.0", port=settings.api_port)

`create_app` is composable: it includes every router of `ROUTERS` (or those it is given) and
enters every extra lifespan, so another module adds endpoints with::

    from streams.api import ROUTERS
    ROUTERS.append(journeys.router)

Routes find what they need on ``request.app.state``: ``settings``, ``api_keys`` and
``publisher`` (a `PublisherHolder`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from events.vocabulary import TOUCHPOINT
from streams.api.access_log import redacted_access_log
from streams.api.accounts import router as accounts_router
from streams.api.auth import (
    DEFAULT_KEYS_FILE,
    ENV_KEYS,
    ENV_KEYS_FILE,
    ApiClient,
    KeyStore,
    hashed,
    load_api_keys,
)
from streams.api.dashboard import router as dashboard_router
from streams.api.ingest import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    IngestPublisher,
    PublisherHolder,
    schemas_router,
)
from streams.api.ingest import (
    router as ingest_router,
)
from streams.api.journeys import router as journeys_router
from streams.api.kpis import router as kpis_router
from streams.api.operations import count_requests
from streams.api.operations import router as operations_router
from streams.api.people import router as people_router
from streams.api.segment import router as segment_router
from streams.metrics import ApiMetrics
from streams.settings import Settings, get_settings

log = logging.getLogger("tandem.api")

ROUTERS: list[APIRouter] = [ingest_router, schemas_router, kpis_router]
"""The routers every app includes (append yours)."""
ROUTERS += [journeys_router, accounts_router, people_router, dashboard_router, segment_router]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DESCRIPTION = f"""
Tandem builds one journey per customer from marketing and sales touchpoints.

**Publishing touchpoints.** `POST /v1/events` takes one touchpoint or a JSON array of up to
{MAX_BATCH} (body at most {MAX_BODY_BYTES // (1024 * 1024)} MiB, each event at most 256 KiB).
It is **all-or-nothing**: if any event is invalid the answer is `422` with a result per event
and nothing is published; otherwise every event is published to Kafka before the `202`.
Resending a request is always safe: Tandem keeps each `event_id` once.

**Segment-compatible ingest.** `POST /v1/segment/track`, `/identify`, `/page` and `/batch` take
Segment spec calls (the key as the HTTP Basic user name, as Segment libraries send it), map them
onto touchpoints and answer `200` (`success: true`) with a result per call; calls that cannot be
mapped or are invalid are dead-lettered with the reason (`docs/segment.md`).

**Authentication.** Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`
(`tandem keys create` makes one; Tandem stores only its SHA-256 digest). A key has scopes:
`publish` (`POST /v1/events`, for the `marketing` and/or `sales` domains of its tool),
`read` (person-level data: `GET /v1/journeys`, `GET /v1/journeys/{{reference}}`) and `admin`
(operations on people: `DELETE /v1/people/{{reference}}` forgets a person for good). No key or
an unknown one is `401`; a key without the scope a route
needs is `403`. The aggregate KPIs (`GET /v1/kpis`, `/v1/kpis/snapshot`) need a `read` key
too, unless the deployment makes them public (`TANDEM_PUBLIC_KPIS=true`). The dashboard at `/`
is a static page: it asks for a `read` key and sends it with its requests.

**The contract.** The envelope, the 30 touchpoint types, the rejection reason codes and the
evolution rules are in `docs/contract.md`; the JSON Schemas are served under `/v1/schemas`.
"""

TAGS = [
    {"name": "ingest", "description": "Publish touchpoints into Tandem."},
    {"name": "journeys", "description": "Read journeys (an API key with the `read` scope)."},
    {"name": "people", "description": "Forget a person (an API key with the `admin` scope)."},
    {"name": "segment", "description": "Segment-compatible ingest (docs/segment.md)."},
    {"name": "contract", "description": "The JSON Schema documents of Tandem's contract."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
]


def _package_version() -> str:
    try:
        return version("tandem-journeys")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0"


def default_publisher_factory(settings: Settings) -> IngestPublisher:
    """The Kafka publisher of these settings (`events.publisher.TouchpointPublisher`)."""
    from events.publisher import TouchpointPublisher

    return TouchpointPublisher(
        settings.kafka_bootstrap, settings.topic_prefix, client_id="tandem-api"
    )


def _api_keys(settings: Settings) -> KeyStore:
    """The keys of ``Settings.api_keys`` and ``api_keys_file`` (default
    ``<data_dir>/api-keys.json``, read if it exists), by digest; the file is read again when
    it changes."""
    environ: dict[str, str] = {}
    if settings.api_keys_file is not None:
        environ[ENV_KEYS_FILE] = str(settings.api_keys_file)
    if settings.api_keys:
        environ[ENV_KEYS] = json.dumps(settings.api_keys)
    default_file = settings.data_dir / DEFAULT_KEYS_FILE
    path = settings.api_keys_file or default_file
    return KeyStore(lambda: load_api_keys(environ, default_file=default_file), path)


def create_app(
    settings: Settings | None = None,
    *,
    publisher_factory: Callable[[Settings], IngestPublisher] | None = None,
    api_keys: Mapping[str, ApiClient] | None = None,
    routers: Sequence[APIRouter] | None = None,
    lifespans: Sequence[Lifespan] = (),
) -> FastAPI:
    """The FastAPI app.

    `publisher_factory` makes the publisher (default: Kafka, from `settings`); it is started
    on the first publish and stopped at shutdown. `api_keys` default to the configured ones
    (``TANDEM_API_KEYS`` / ``TANDEM_API_KEYS_FILE``, see `streams.api.auth`); given here, they
    may be plain keys (hashed in memory) or digests. `routers`
    default to `ROUTERS`; `lifespans` are entered at startup, in order, and left at shutdown.
    """
    settings = settings or get_settings()
    factory = publisher_factory or default_publisher_factory
    keys: Mapping[str, ApiClient] = (
        hashed(api_keys) if api_keys is not None else _api_keys(settings)
    )
    if not keys:
        log.warning("no API keys configured (`tandem keys create`): ingest and journeys answer 401")
    holder = PublisherHolder(lambda: factory(settings))
    app = FastAPI(
        title="Tandem API",
        version=_package_version(),
        summary="One customer journey for marketing and sales, built from touchpoints.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan(holder, lifespans),
    )
    app.state.settings = settings
    app.state.api_keys = keys
    app.state.publisher = holder
    app.state.metrics = ApiMetrics(settings.redis_url, settings.redis_prefix)
    count_requests(app)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        """200 while the process serves requests (Kafka is not checked)."""
        return {"status": "ok"}

    app.include_router(operations_router)
    for router in ROUTERS if routers is None else routers:
        app.include_router(router)

    _document_touchpoints(app)
    return app


def _lifespan(holder: PublisherHolder, lifespans: Sequence[Lifespan]) -> Lifespan:
    """The app's lifespan: the redacted access log, then every extra lifespan in order; the
    publisher is closed last so requests still draining at shutdown can publish."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(redacted_access_log(app))
            for extra in lifespans:
                await stack.enter_async_context(extra(app))
            try:
                yield
            finally:
                await holder.close()

    return lifespan


def _document_touchpoints(app: FastAPI) -> None:
    """Replace the app's OpenAPI builder with one that also documents the `Touchpoint` union,
    which no route declares as a model (ingest reads the raw body to answer per event)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            touchpoint = TOUCHPOINT.json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in touchpoint.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components["Touchpoint"] = {
                **touchpoint,
                "title": "Touchpoint",
                "description": "Any touchpoint of the vocabulary (discriminated on `type`).",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["ROUTERS", "PublisherHolder", "create_app", "default_publisher_factory"]
