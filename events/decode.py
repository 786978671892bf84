"""From raw message bytes to a touchpoint, or to a rejection with a machine-readable reason.

This is the door every input passes: nothing is dropped silently, everything that is not a
valid touchpoint becomes a `Rejection` the stream dead-letters with its original bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError

from events.envelope import Domain
from events.vocabulary import TOUCHPOINT, TYPE_NAMES, Touchpoint

MAX_MESSAGE_BYTES = 256 * 1024


class ReasonCode(StrEnum):
    """Why an input was rejected (stable, machine-readable)."""

    TOO_LARGE = "too_large"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID = "invalid"
    WRONG_TOPIC = "wrong_topic"


@dataclass(frozen=True)
class Rejection:
    """An input that is not a valid touchpoint, and why."""

    code: ReasonCode
    message: str
    errors: list[str] = field(default_factory=list)
    event_id: str | None = None
    type: str | None = None


def _error_lines(error: ValidationError, type_name: str | None = None) -> list[str]:
    """One ``location: message`` line per error, locations relative to the document.

    The discriminated union puts the type name first in every location
    (``sales.demo_held.occurred_at``); that tag is dropped so lines read ``occurred_at: …``.
    """
    lines = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        if type_name is not None and loc and loc[0] == type_name:
            loc = loc[1:]
        where = ".".join(str(part) for part in loc) or "(document)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines


def decode_touchpoint(raw: bytes, domain: Domain | None = None) -> Touchpoint | Rejection:
    """Decode one message value; `domain` is the domain of the topic it arrived on, if any."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(
            ReasonCode.TOO_LARGE, f"{len(raw)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(ReasonCode.BAD_UTF8, f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection(
            ReasonCode.BAD_JSON, f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        )
    return validate_document(document, domain)


def validate_document(document: object, domain: Domain | None = None) -> Touchpoint | Rejection:
    """Validate an already-parsed JSON document as a touchpoint."""
    if not isinstance(document, dict):
        return Rejection(ReasonCode.NOT_AN_OBJECT, "a touchpoint is a JSON object")
    event_id = document.get("event_id") if isinstance(document.get("event_id"), str) else None
    type_name = document.get("type")
    if not isinstance(type_name, str) or type_name not in TYPE_NAMES:
        known = "marketing.<name> or sales.<name> from the vocabulary"
        return Rejection(
            ReasonCode.UNKNOWN_TYPE,
            f"unknown type {type_name!r}; expected {known}",
            event_id=event_id,
        )
    version = document.get("schema_version", 1)
    if version != 1:
        return Rejection(
            ReasonCode.UNSUPPORTED_VERSION,
            f"schema_version {version!r} is not supported (supported: 1)",
            event_id=event_id,
            type=type_name,
        )
    type_domain = type_name.split(".", 1)[0]
    if domain is not None and type_domain != domain:
        return Rejection(
            ReasonCode.WRONG_TOPIC,
            f"{type_name} is a {type_domain} event but arrived on the {domain} topic",
            event_id=event_id,
            type=type_name,
        )
    try:
        return TOUCHPOINT.validate_python(document)
    except ValidationError as exc:
        lines = _error_lines(exc, type_name)
        return Rejection(
            ReasonCode.INVALID,
            f"{type_name} failed validation: {lines[0]}"
            + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""),
            errors=lines,
            event_id=event_id,
            type=type_name,
        )
