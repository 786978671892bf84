"""``DELETE /v1/people/{reference}``: forget a person for good (an ``admin`` key).

The route publishes the same forget request as ``tandem forget`` to the identity sequencer
(`touchpoints.accepted`, key ``cmd:forget``) and answers ``202`` once Kafka has it: the worker
then erases the person's journey everywhere Tandem keeps it and suppresses their identifiers
(docs/privacy.md). The request is audited: the API logs the request id, the key's name and the
SHA-256 of the reference (never the reference), and the worker emits a ``person_forgotten``
alert on `signals.alerts`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from streams.api.auth import AUTH_RESPONSES, Admin
from streams.api.ingest import PublisherHolder
from streams.settings import Settings
from streams.workflow.messages import ForgetRequest

log = logging.getLogger("tandem.api")

router = APIRouter(prefix="/v1/people", tags=["people"], responses=AUTH_RESPONSES)


@runtime_checkable
class RawPublisher(Protocol):
    """What forgetting needs from the publisher (`events.publisher.TouchpointPublisher`)."""

    async def publish_raw(self, value: bytes, topic: str, key: bytes | str | None) -> Any: ...

    async def flush(self) -> None: ...


class ForgetAccepted(BaseModel):
    """A forget request on its way to the worker."""

    request_id: str
    reference_sha256: str = Field(description="SHA-256 (hex) of the reference, as audited")
    requested_by: str
    requested_at: datetime


@router.delete(
    "/{reference}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Forget a person for good",
    responses={503: {"description": "Kafka is unavailable: nothing was sent, retry"}},
)
async def forget_person(reference: str, request: Request, client: Admin) -> ForgetAccepted:
    """Erase the journey of whoever `reference` names (a customer id, an identifier
    ``kind:value`` or a bare email) from the tables, ``journeys.state`` and Redis, and keep a
    SHA-256 digest of each of their identifiers so that none of their touchpoints is processed
    again. ``202``: the request is on Kafka; the worker carries it out in order with the
    touchpoints. Needs an API key with the ``admin`` scope."""
    from streams.app import FORGET_KEY, forget_request
    from streams.topics import ACCEPTED, full_name

    settings: Settings = request.app.state.settings
    forget = ForgetRequest.for_reference(reference, f"api:{client.label}", datetime.now(UTC))
    if not forget.identifiers and forget.customer_id is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "name a person")
    holder: PublisherHolder = request.app.state.publisher
    try:
        publisher = await holder.get()
        if not isinstance(publisher, RawPublisher):
            raise TypeError("this publisher cannot send forget requests")
        topic = full_name(ACCEPTED, settings.topic_prefix)
        await publisher.publish_raw(forget_request(forget), topic, FORGET_KEY)
        await publisher.flush()
    except Exception as exc:
        log.warning("forget request %s could not be sent: %s", forget.request_id, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Kafka is unavailable: the forget request was not sent; retry",
            headers={"Retry-After": "5"},
        ) from None
    log.warning("forget %s requested by %s: reference sha256 %s", forget.request_id,
                forget.requested_by, forget.reference_sha256)  # fmt: skip
    return ForgetAccepted(
        request_id=forget.request_id,
        reference_sha256=forget.reference_sha256,
        requested_by=forget.requested_by,
        requested_at=forget.requested_at,
    )
