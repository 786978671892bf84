"""Operations endpoints: ``GET /metrics`` (Prometheus) and ``GET /readyz`` (readiness).

``/healthz`` (in `streams.api`) says the process serves requests; ``/readyz`` says it can do
its work: 200 once Kafka and Redis both answer, 503 (with what failed) while either does not.
Both dependencies are asked again on every call, so a load balancer sees an outage too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.metrics import ApiMetrics
from streams.settings import Settings

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 3.0
"""How long /readyz waits for each dependency before calling it unavailable."""


async def kafka_answers(bootstrap: str) -> None:
    """Raise unless a Kafka broker at `bootstrap` answers a metadata request."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(client.bootstrap(), READY_TIMEOUT_S)
    finally:
        await client.close()


async def redis_answers(url: str) -> None:
    """Raise unless Redis at `url` answers PING."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=READY_TIMEOUT_S)
    try:
        await asyncio.wait_for(client.ping(), READY_TIMEOUT_S)
    finally:
        await client.aclose()


async def _check(name: str, probe: Awaitable[None], metrics: ApiMetrics) -> str:
    try:
        await probe
    except Exception as exc:
        metrics.dependency_up.labels(dependency=name).set(0)
        (metrics.kafka_errors if name == "kafka" else metrics.redis_errors).labels(
            operation="readyz"
        ).inc()
        return f"unavailable: {type(exc).__name__}: {exc}".strip()
    metrics.dependency_up.labels(dependency=name).set(1)
    return "ok"


@router.get(
    "/readyz",
    summary="Readiness: Kafka and Redis answer",
    responses={503: {"description": "Kafka or Redis does not answer"}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when Kafka and Redis both answer now; 503 naming the one that does not."""
    settings: Settings = request.app.state.settings
    metrics: ApiMetrics = request.app.state.metrics
    kafka, redis = await asyncio.gather(
        _check("kafka", kafka_answers(settings.kafka_bootstrap), metrics),
        _check("redis", redis_answers(settings.redis_url), metrics),
    )
    ready = kafka == "ok" and redis == "ok"
    body = {"status": "ready" if ready else "unavailable", "kafka": kafka, "redis": redis}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """The API's metrics in Prometheus' text format (docs/operations.md lists them)."""
    registry = request.app.state.metrics.registry
    # Collecting `tandem_journeys` asks Redis (blocking client): off the event loop.
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class CountRequests:
    """ASGI middleware counting every request by method, route template (not the raw path,
    which may name a person) and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router names the matched route in the scope it was given.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


def count_requests(app: FastAPI) -> None:
    """Count the app's requests in ``app.state.metrics`` (see `CountRequests`)."""
    app.add_middleware(CountRequests, metrics=app.state.metrics)


__all__ = ["CountRequests", "count_requests", "kafka_answers", "redis_answers", "router"]
