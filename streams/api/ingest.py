"""``POST /v1/events``: touchpoints over HTTP, validated at the door, published all-or-nothing.

A request carries one touchpoint (a JSON object) or a batch (a JSON array of up to 500). Every
event is validated exactly as the stream worker validates Kafka input. If **any** event is
invalid, nothing is published and the answer is 422 with a result per event; otherwise every
event is published (and acknowledged by Kafka) before the answer, 202 with a result per event.
Retrying a request is always safe: Tandem deduplicates on ``event_id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from events.decode import (
    MAX_MESSAGE_BYTES,
    ReasonCode,
    Rejection,
    load_json_bytes,
    validate_document,
)
from events.envelope import Envelope
from events.topics import domain_of
from events.vocabulary import Touchpoint
from streams.api.auth import ApiClient, Client

log = logging.getLogger("tandem.api")

MAX_BATCH = 500
"""Most events in one request (more: 413)."""
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest request body (more: 413). A single event is at most 256 KiB."""


class IngestPublisher(Protocol):
    """What the ingest endpoint needs from a publisher (`events.publisher` provides it)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish_batch(self, touchpoints: Sequence[Envelope]) -> list[Any]: ...


class PublisherUnavailable(RuntimeError):
    """The publisher could not connect to Kafka."""


class PublisherHolder:
    """Starts the publisher on first use (and again after a failed start), stops it once."""

    def __init__(self, factory: Callable[[], IngestPublisher]) -> None:
        self._factory = factory
        self._publisher: IngestPublisher | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> IngestPublisher:
        """The started publisher; raises `PublisherUnavailable` if it cannot start."""
        if self._publisher is not None:
            return self._publisher
        async with self._lock:
            if self._publisher is None:
                publisher = self._factory()
                try:
                    await publisher.start()
                except Exception as exc:
                    try:
                        await publisher.stop()
                    except Exception:  # a half-started producer: nothing more to do
                        log.debug("stopping a publisher that failed to start", exc_info=True)
                    raise PublisherUnavailable(str(exc) or type(exc).__name__) from exc
                self._publisher = publisher
            return self._publisher

    async def close(self) -> None:
        """Stop the publisher (if started), delivering what is pending."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            try:
                await publisher.stop()
            except Exception:
                log.exception("stopping the publisher failed")


# --- the wire format -------------------------------------------------------------------


class EventResult(BaseModel):
    """The outcome of one event of the request."""

    index: int = Field(description="position in the request (0 for a single event)")
    event_id: str | None = Field(description="the event's id, if it has a readable one")
    type: str | None = Field(None, description="the event's type, if it is a known type")
    status: Literal["accepted", "rejected"]
    reason_code: ReasonCode | None = Field(
        None, description="why it was rejected (see docs/contract.md); null when accepted"
    )
    errors: list[str] = Field(
        default_factory=list,
        description="human-readable problems, `location: message` for validation errors",
    )


class IngestResponse(BaseModel):
    """Per-event results. On 202 every event was published; on 422 none was."""

    published: bool = Field(description="true: every event was published; false: none was")
    accepted: int = Field(description="events that passed validation")
    rejected: int = Field(description="events that failed validation")
    results: list[EventResult]


class ErrorResponse(BaseModel):
    """A request-level error (authentication, size, malformed body, Kafka unavailable)."""

    detail: str
    reason_code: str | None = None


class ForbiddenResponse(BaseModel):
    """The API key may not publish some of the events' domains; nothing was published."""

    detail: str
    forbidden: list[int] = Field(description="indexes of the events outside the key's domains")


def _result(index: int, outcome: Touchpoint | Rejection) -> EventResult:
    if isinstance(outcome, Rejection):
        return EventResult(
            index=index,
            event_id=outcome.event_id,
            type=outcome.type,
            status="rejected",
            reason_code=outcome.code,
            errors=list(outcome.errors) or [outcome.message],
        )
    return EventResult(index=index, event_id=outcome.event_id, type=outcome.type, status="accepted")


def validate_event(document: object, *, now: datetime) -> Touchpoint | Rejection:
    """Validate one decoded event received at `now` as the worker would (including the size
    limit)."""
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_MESSAGE_BYTES:
        event_id = document.get("event_id") if isinstance(document, dict) else None
        return Rejection(
            ReasonCode.TOO_LARGE,
            f"{size} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
            event_id=event_id if isinstance(event_id, str) else None,
        )
    return validate_document(document, now=now)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"request body over the {MAX_BODY_BYTES}-byte limit; send smaller batches",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"request body over the {MAX_BODY_BYTES}-byte limit; send smaller batches",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _require_json(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json``, any parameters)."""
    declared = request.headers.get("content-type", "")
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the events as Content-Type: application/json (got {declared[:80]!r})",
        )


def _bad_body(code: ReasonCode, detail: str) -> JSONResponse:
    return JSONResponse(
        ErrorResponse(detail=detail, reason_code=code.value).model_dump(),
        status_code=status.HTTP_400_BAD_REQUEST,
    )


def _batch_of(parsed: object) -> list[object]:
    """The request's events: one object, or an array of 1 to `MAX_BATCH` (else 422/413)."""
    documents: list[object] = parsed if isinstance(parsed, list) else [parsed]
    if not documents:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the batch is empty")
    if len(documents) > MAX_BATCH:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(documents)} events is over the {MAX_BATCH}-event limit of one request",
        )
    return documents


def _refused_domains(documents: list[object], client: ApiClient) -> JSONResponse | None:
    """403 naming the events of a domain the key may not publish (checked before the events
    are validated); None when the key may publish them all."""
    forbidden = [
        index
        for index, document in enumerate(documents)
        if isinstance(document, dict)
        and isinstance(document.get("type"), str)
        and (domain := domain_of(document["type"])) is not None
        and not client.may_publish(domain)
    ]
    if not forbidden:
        return None
    allowed = ", ".join(sorted(client.domains))
    return JSONResponse(
        ForbiddenResponse(
            detail=f"the API key of {client.tool} may publish {allowed} events only; "
            f"{len(forbidden)} event(s) are outside that; nothing was published",
            forbidden=forbidden,
        ).model_dump(),
        status_code=status.HTTP_403_FORBIDDEN,
    )


async def _publish(
    holder: PublisherHolder, touchpoints: list[Touchpoint], client: ApiClient
) -> JSONResponse | None:
    """Publish the batch; a 503 (retry: safe) if Kafka did not take all of it, else None."""
    try:
        publisher = await holder.get()
        await publisher.publish_batch(touchpoints)
    except Exception as exc:
        log.warning("publishing %d events for %s failed: %s", len(touchpoints), client.tool, exc)
        return kafka_unavailable(
            "Kafka is unavailable, the events may not all be published; retry the request "
            "(safe: Tandem deduplicates on event_id)"
        )
    return None


def kafka_unavailable(detail: str) -> JSONResponse:
    """A 503 that asks the sender to retry in 5 s (retrying is safe: ids deduplicate)."""
    return JSONResponse(
        ErrorResponse(detail=detail).model_dump(),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


REQUEST_BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"$ref": "#/components/schemas/Touchpoint"},
        {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Touchpoint"},
            "minItems": 1,
            "maxItems": MAX_BATCH,
        },
    ]
}

router = APIRouter(prefix="/v1", tags=["ingest"])


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResponse,
    summary="Publish touchpoints (one, or a batch of up to 500)",
    responses={
        202: {"description": "Every event is valid and was published (acknowledged by Kafka)."},
        400: {
            "model": ErrorResponse,
            "description": "The body is not UTF-8 I-JSON (`reason_code`: bad_utf8, bad_json, "
            "duplicate_key, bad_unicode, too_deep, out_of_range).",
        },
        401: {"model": ErrorResponse, "description": "Missing or unknown API key."},
        403: {
            "model": ForbiddenResponse,
            "description": "The key may not publish some events' domain; nothing published.",
        },
        413: {
            "model": ErrorResponse,
            "description": f"More than {MAX_BATCH} events or a body over {MAX_BODY_BYTES} bytes.",
        },
        415: {"model": ErrorResponse, "description": "The body is not `application/json`."},
        422: {
            "model": IngestResponse,
            "description": "At least one event is invalid; nothing was published. "
            "`results` says which and why.",
        },
        503: {
            "model": ErrorResponse,
            "description": "Kafka is unavailable; retry (safe: Tandem deduplicates on event_id).",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One touchpoint, or a JSON array of 1 to 500 touchpoints.",
            "content": {"application/json": {"schema": REQUEST_BODY_SCHEMA}},
        }
    },
)
async def post_events(request: Request, client: Client) -> Any:
    """Validate touchpoints and publish them to Kafka: all of them, or none.

    Each event is checked exactly as Tandem's stream worker checks Kafka input (envelope,
    vocabulary, properties, 256 KiB size limit). If any event is invalid the answer is 422
    with a result per event and **nothing** is published; fix the rejected events and resend
    the whole request. On 202 every event has been acknowledged by Kafka. Resending a request
    is always safe: Tandem keeps each `event_id` once.
    """
    _require_json(request)
    body = await _read_body(request)
    parsed = load_json_bytes(body)
    if isinstance(parsed, Rejection):
        return _bad_body(parsed.code, parsed.message)
    documents = _batch_of(parsed)
    refused = _refused_domains(documents, client)
    if refused is not None:
        return refused

    received = datetime.now(UTC)
    outcomes = [validate_event(document, now=received) for document in documents]
    results = [_result(index, outcome) for index, outcome in enumerate(outcomes)]
    rejected = sum(1 for r in results if r.status == "rejected")
    if rejected:
        response = IngestResponse(
            published=False, accepted=len(results) - rejected, rejected=rejected, results=results
        )
        return JSONResponse(
            response.model_dump(mode="json"), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )

    touchpoints = [o for o in outcomes if not isinstance(o, Rejection)]
    unavailable = await _publish(request.app.state.publisher, touchpoints, client)
    if unavailable is not None:
        return unavailable
    return IngestResponse(published=True, accepted=len(results), rejected=0, results=results)


# --- the contract, for tool authors ----------------------------------------------------

schemas_router = APIRouter(prefix="/v1/schemas", tags=["contract"])


@schemas_router.get("", summary="List the JSON Schema documents")
async def list_schemas() -> list[dict[str, str]]:
    """The names of Tandem's JSON Schema documents (touchpoint types, dead letters, …)."""
    from schemas.registry import DOCUMENTS

    return [{"name": d.name, "title": d.title, "description": d.description} for d in DOCUMENTS]


@schemas_router.get(
    "/{name}",
    summary="One JSON Schema document",
    responses={404: {"model": ErrorResponse, "description": "No such document."}},
)
async def get_schema(name: str) -> dict[str, Any]:
    """A JSON Schema (Draft 2020-12) document, e.g. `touchpoint` or `touchpoint.sales.deal_won`."""
    from schemas.registry import get

    try:
        return get(name.removesuffix(".schema.json")).json_schema()
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schema document {name!r}") from None
