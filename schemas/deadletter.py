"""Dead letters: rejected input, kept with its exact original bytes, origin and reason.

Nothing Tandem receives is dropped silently. The worker turns every `Rejection` into a
`DeadLetter` (with `dead_letter_for`) and produces its JSON to ``touchpoints.deadletter``, keyed
by `DeadLetter.dead_letter_id`; `tandem deadletter list|redrive` reads them back.

The id is deterministic, so a message dead-lettered twice (at-least-once redelivery) yields
the same id twice and readers can deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.decode import MAX_MESSAGE_BYTES, ReasonCode, Rejection


class Origin(BaseModel):
    """Where a rejected message was read: topic (without the deployment prefix), position, key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(description="the topic it arrived on, without the deployment's prefix")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = Field(None, description="the message key, UTF-8 decoded (None: no key)")


class DeadLetter(BaseModel):
    """A rejected input: why, where it came from, and its exact original bytes."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="Dead letter",
    )

    dead_letter_id: str = Field(
        description="Deterministic: `<topic>/<partition>/<offset>` of the origin, or "
        "`sha256:<hex>` of the original bytes when there is no origin.",
        examples=["touchpoints.marketing/2/1041"],
    )
    reason_code: ReasonCode = Field(description="machine-readable reason (see the contract)")
    reason: str = Field(description="human-readable explanation")
    errors: list[str] = Field(
        default_factory=list, description="one `location: message` line per validation error"
    )
    origin: Origin | None = Field(None, description="where the message was read, if anywhere")
    original_b64: str = Field(description="the exact original bytes, base64 (RFC 4648)")
    original_text: str | None = Field(
        None,
        description="the original bytes decoded as UTF-8; None when they are not UTF-8 or "
        "larger than the message size limit (see original_b64)",
    )
    event_id: str | None = Field(None, description="the event id, if one could be read")
    type: str | None = Field(None, description="the touchpoint type, if it is known")
    rejected_at: AwareDatetime = Field(description="when the input was rejected")

    def original_bytes(self) -> bytes:
        """The exact bytes that were rejected."""
        return base64.b64decode(self.original_b64, validate=True)

    def original_key(self) -> bytes | None:
        """The original message key as bytes (None if it had none or there is no origin)."""
        if self.origin is None or self.origin.key is None:
            return None
        return self.origin.key.encode("utf-8")


def dead_letter_id(raw: bytes, origin: Origin | None) -> str:
    """The deterministic id of a dead letter: its origin position, else its content hash."""
    if origin is not None:
        return f"{origin.topic}/{origin.partition}/{origin.offset}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def _text(raw: bytes) -> str | None:
    if len(raw) > MAX_MESSAGE_BYTES:
        return None  # keep dead letters of oversized input from doubling in size
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dead_letter_for(
    rejection: Rejection, raw: bytes, origin: Origin | None, rejected_at: datetime
) -> DeadLetter:
    """The dead letter of a rejected input (pure: same arguments, same dead letter).

    `rejected_at` must carry a timezone (the caller reads the clock, not this function).
    """
    return DeadLetter(
        dead_letter_id=dead_letter_id(raw, origin),
        reason_code=rejection.code,
        reason=rejection.message,
        errors=list(rejection.errors),
        origin=origin,
        original_b64=base64.b64encode(raw).decode("ascii"),
        original_text=_text(raw),
        event_id=rejection.event_id,
        type=rejection.type,
        rejected_at=rejected_at,
    )
