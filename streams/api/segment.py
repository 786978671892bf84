"""``POST /v1/segment/{track,identify,page,batch}``: Segment-compatible ingest.

A site or server using a Segment library (analytics.js, analytics-node, …) points its API host
at Tandem. Each call is mapped onto a touchpoint by `events.segment` and validated exactly as
any input; the valid ones are published, the others are **dead-lettered** (with the reason and
the call's bytes, a ``writeKey`` removed) to ``touchpoints.deadletter``, as the worker does with
bad Kafka input.

Segment's HTTP semantics, which its libraries rely on: ``200`` with ``{"success": true}`` once
every call is published or dead-lettered (a library retries anything else, so a bad call must
not be answered with an error it would resend forever); the body also holds a result per call.
Request-level problems keep the API's rules: 400 (not JSON), 401/403 (key), 413 (size), 415
(content type), 503 (Kafka; retrying is safe, ids are deterministic). The short paths
analytics.js uses (``/t``, ``/i``, ``/p``, ``/b``) are aliases.

The key: ``Authorization: Basic`` with the key as user name (Segment's write key), or
``Authorization: Bearer`` / ``X-API-Key``, or a ``writeKey`` in the body (analytics.js).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from events.decode import ReasonCode, Rejection, load_json_bytes
from events.envelope import Envelope
from events.segment import SegmentOutcome, calls_of, map_call
from events.topics import domain_of
from schemas.deadletter import dead_letter_for
from streams.api.auth import ApiClient, authenticate
from streams.api.ingest import (
    MAX_BATCH,
    ErrorResponse,
    PublisherHolder,
    _bad_body,
    _read_body,
    kafka_unavailable,
)
from streams.topics import DEADLETTER, full_name

log = logging.getLogger("tandem.api")

SEGMENT_MEDIA_TYPES = ("application/json", "text/plain")
"""analytics.js posts ``text/plain`` (no CORS preflight); server libraries post JSON."""


class SegmentPublisher(Protocol):
    """What Segment ingest needs: touchpoints, and raw bytes for the dead-letter topic."""

    async def publish_batch(self, touchpoints: Sequence[Envelope]) -> list[Any]: ...
    async def publish_raw(
        self, value: bytes, topic: str, key: bytes | str | None
    ) -> Awaitable[Any]: ...


class SegmentResult(BaseModel):
    """What became of one Segment call."""

    index: int = Field(description="position in the batch (0 for a single call)")
    message_id: str | None = Field(description="the call's messageId, if it had one")
    event_id: str | None = Field(description="the touchpoint's id: segment-<messageId>")
    type: str | None = Field(None, description="the Tandem type it was mapped to")
    status: Literal["published", "dead_lettered"]
    reason_code: ReasonCode | None = Field(None, description="why it was dead-lettered")
    errors: list[str] = Field(default_factory=list)


class SegmentResponse(BaseModel):
    """Segment's answer (``success``), with a result per call."""

    success: Literal[True] = True
    published: int
    dead_lettered: int
    results: list[SegmentResult]


def _presented_keys(request: Request, document: object) -> list[str]:
    """Every key the request presents: Basic user name, Bearer, X-API-Key, body writeKey."""
    found: list[str] = []
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        found.append(decoded.partition(":")[0])
    elif scheme.lower() == "bearer":
        found.append(credentials.strip())
    found.append(request.headers.get("x-api-key", ""))
    # analytics.js puts the write key in the body: on the call, or on each item of a batch.
    bodies = [document]
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        bodies += document["batch"][:1]
    found += [
        b["writeKey"] for b in bodies if isinstance(b, dict) and isinstance(b.get("writeKey"), str)
    ]
    return [key for key in found if key]


def _client(request: Request, document: object) -> ApiClient:
    """The publishing client of the request: 401 without a known key, 403 without publish."""
    keys = request.app.state.api_keys
    for presented in _presented_keys(request, document):
        client = authenticate(keys, presented)
        if client is None:
            continue
        if not client.has("publish"):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key ({client.label}) lacks `publish`"
            )
        return client
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or unknown API key: send it as the Basic user name (Segment's write key), "
        "`Authorization: Bearer <key>`, `X-API-Key: <key>` or `writeKey` in the body",
        headers={"WWW-Authenticate": 'Basic realm="tandem"'},
    )


def _require_segment_media(request: Request) -> None:
    declared = request.headers.get("content-type", "")
    if declared.split(";", 1)[0].strip().lower() not in SEGMENT_MEDIA_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send Segment calls as application/json or text/plain (got {declared[:80]!r})",
        )


def _result(index: int, item: SegmentOutcome) -> SegmentResult:
    outcome = item.outcome
    if isinstance(outcome, Rejection):
        return SegmentResult(
            index=index,
            message_id=item.message_id,
            event_id=outcome.event_id,
            type=outcome.type,
            status="dead_lettered",
            reason_code=outcome.code,
            errors=list(outcome.errors) or [outcome.message],
        )
    return SegmentResult(
        index=index,
        message_id=item.message_id,
        event_id=outcome.event_id,
        type=outcome.type,
        status="published",
    )


async def _deliver(request: Request, outcomes: list[SegmentOutcome], received: datetime) -> None:
    """Publish the touchpoints and dead-letter the rest; raises if Kafka does not ack."""
    holder: PublisherHolder = request.app.state.publisher
    publisher: SegmentPublisher = await holder.get()  # type: ignore[assignment]
    touchpoints = [o.outcome for o in outcomes if not isinstance(o.outcome, Rejection)]
    if touchpoints:
        await publisher.publish_batch(touchpoints)
    topic = full_name(DEADLETTER, request.app.state.settings.topic_prefix)
    for item in outcomes:
        if isinstance(item.outcome, Rejection):
            letter = dead_letter_for(item.outcome, item.original, None, received)
            future = await publisher.publish_raw(
                letter.model_dump_json().encode(), topic, letter.dead_letter_id
            )
            await future
            log.warning("dead-lettered Segment call %s: %s", letter.dead_letter_id, letter.reason)


def _forbidden(client: ApiClient, outcomes: list[SegmentOutcome]) -> JSONResponse | None:
    domains = {
        domain
        for o in outcomes
        if not isinstance(o.outcome, Rejection) and (domain := domain_of(o.outcome.type))
    }
    refused = sorted(d for d in domains if not client.may_publish(d))
    if not refused:
        return None
    detail = (
        f"the API key of {client.tool} may not publish {', '.join(refused)} events; "
        "nothing was published"
    )
    return JSONResponse(ErrorResponse(detail=detail).model_dump(), status_code=403)


async def ingest(request: Request, kind: str | None) -> Any:
    """One Segment request: a call of `kind`, or a batch (``kind=None``)."""
    # A key in the headers is checked before the body is read; analytics.js sends it in the body.
    client = _client(request, None) if _presented_keys(request, None) else None
    _require_segment_media(request)
    body = await _read_body(request)
    document = load_json_bytes(body)
    if isinstance(document, Rejection):
        return _bad_body(document.code, document.message)
    client = client or _client(request, document)
    calls = calls_of(document, kind)
    if isinstance(calls, str):
        return _bad_body(ReasonCode.NOT_AN_OBJECT, calls)
    if len(calls) > MAX_BATCH:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"{len(calls)} calls is over the {MAX_BATCH} limit"
        )
    received = datetime.now(UTC)
    source = client.tool or "segment"
    outcomes = [map_call(k, call, source=source, now=received) for k, call in calls]
    if (refused := _forbidden(client, outcomes)) is not None:
        return refused
    try:
        await _deliver(request, outcomes, received)
    except Exception as exc:
        log.warning("Segment ingest of %d calls for %s failed: %s", len(calls), client.tool, exc)
        return kafka_unavailable(
            "Kafka is unavailable; retry the request (safe: the ids come from messageId, "
            "Tandem keeps each event once)"
        )
    results = [_result(index, item) for index, item in enumerate(outcomes)]
    dead = sum(1 for r in results if r.status == "dead_lettered")
    return SegmentResponse(published=len(results) - dead, dead_lettered=dead, results=results)


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every call was published or dead-lettered (Segment's `success`)."},
    400: {"model": ErrorResponse, "description": "The body is not UTF-8 I-JSON, or no batch."},
    401: {"model": ErrorResponse, "description": "Missing or unknown key."},
    403: {"model": ErrorResponse, "description": "The key may not publish; nothing published."},
    413: {"model": ErrorResponse, "description": f"More than {MAX_BATCH} calls, or too large."},
    415: {"model": ErrorResponse, "description": "Not application/json or text/plain."},
    503: {"model": ErrorResponse, "description": "Kafka is unavailable; retry."},
}

router = APIRouter(prefix="/v1/segment", tags=["segment"])


def _route(kind: str | None) -> Callable[[Request], Awaitable[Any]]:
    async def endpoint(request: Request) -> Any:
        return await ingest(request, kind)

    endpoint.__name__ = f"segment_{kind or 'batch'}"
    endpoint.__doc__ = (
        f"A Segment `{kind}` call, mapped onto a touchpoint (docs/segment.md)."
        if kind
        else 'A Segment batch (`{"batch": [...]}`): each item mapped onto a touchpoint.'
    )
    return endpoint


for _kind, _short in (("track", "t"), ("identify", "i"), ("page", "p"), (None, "b")):
    _path = _kind or "batch"
    router.add_api_route(
        f"/{_path}",
        _route(_kind),
        methods=["POST"],
        response_model=SegmentResponse,
        responses=RESPONSES,
        summary=f"Segment {_path}",
    )
    router.add_api_route(
        f"/{_short}",
        _route(_kind),
        methods=["POST"],
        response_model=SegmentResponse,
        include_in_schema=False,
    )
