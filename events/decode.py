"""From raw message bytes to a touchpoint, or to a rejection with a machine-readable reason.

This is the door every input passes: nothing is dropped silently, everything that is not a
valid touchpoint becomes a `Rejection` the stream dead-letters with its original bytes. It never
raises, whatever the bytes: a touchpoint is an I-JSON document (RFC 7493: no duplicate names,
no lone surrogates, numbers a double can hold) of bounded depth, and its event time lies in a
window around the time it was received (`now`, passed in: the contract never reads a clock).
An event sent in an earlier `schema_version` of its type is validated as sent, then upcast to
the current version (`events.upcast`): what comes out is always the current version.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from events.envelope import Domain
from events.upcast import supported_versions
from events.vocabulary import TOUCHPOINT, TYPE_NAMES, Touchpoint

MAX_MESSAGE_BYTES = 256 * 1024
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects (a touchpoint needs 3)."""
MAX_SAFE_INTEGER = 2**53 - 1
"""I-JSON's interoperable integer range is +-(2**53 - 1)."""
MAX_FUTURE = timedelta(hours=24)
"""How far after its receipt an event may have happened (clock skew between systems)."""


class ReasonCode(StrEnum):
    """Why an input was rejected (stable, machine-readable)."""

    TOO_LARGE = "too_large"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    DUPLICATE_KEY = "duplicate_key"
    BAD_UNICODE = "bad_unicode"
    TOO_DEEP = "too_deep"
    OUT_OF_RANGE = "out_of_range"
    INVALID = "invalid"
    WRONG_TOPIC = "wrong_topic"
    PROCESSING_FAILED = "processing_failed"
    """A valid input the worker could not apply (a defect); the reason names the step."""
    UNMAPPED_SEGMENT_EVENT = "unmapped_segment_event"


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

    The discriminated union puts the member's tag first in every location
    (``sales.demo_held.occurred_at``, ``sales.lead_qualified@1.properties``); that tag is dropped
    so lines read ``occurred_at: …``.
    """
    lines = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        if type_name is not None and loc and str(loc[0]).split("@", 1)[0] == type_name:
            loc = loc[1:]  # the union member's tag: the type, or ``type@version``
        where = ".".join(str(part) for part in loc) or "(document)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines


class _NotIJson(ValueError):
    """The JSON text parses, but not to an interoperable document."""

    def __init__(self, code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _NotIJson(ReasonCode.DUPLICATE_KEY, f"duplicate key {key[:64]!r}")
            seen.add(key)
    return document


def _integer(text: str) -> int:
    # Checked on the text: int() of thousands of digits raises ValueError (and is slow).
    if len(text.lstrip("-")) > 16 or abs(value := int(text)) > MAX_SAFE_INTEGER:
        raise _NotIJson(
            ReasonCode.OUT_OF_RANGE,
            f"the integer {text[:24]}{'…' if len(text) > 24 else ''} is outside "
            f"±{MAX_SAFE_INTEGER} (I-JSON)",
        )
    return value


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotIJson(
            ReasonCode.OUT_OF_RANGE, f"the number {text[:24]} is too large for a double"
        )
    return value


def _constant(text: str) -> float:
    raise _NotIJson(ReasonCode.BAD_JSON, f"not JSON: {text} is not a JSON value")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_shape(document: object) -> None:
    """Depth and lone surrogates, without recursion (the document may be deeply nested)."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise _NotIJson(
                    ReasonCode.BAD_UNICODE, "a string holds a lone surrogate (not Unicode text)"
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise _NotIJson(ReasonCode.TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels")
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children)


def load_json(text: str) -> object | Rejection:
    """Parse an I-JSON document of bounded depth, or say why it is not one."""
    try:
        document: object = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_number,
            parse_constant=_constant,
        )
        _check_shape(document)
    except _NotIJson as exc:
        return Rejection(exc.code, exc.message)
    except json.JSONDecodeError as exc:
        return Rejection(
            ReasonCode.BAD_JSON, f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        )
    except RecursionError:
        return Rejection(ReasonCode.TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels")
    return document


def load_json_bytes(raw: bytes) -> object | Rejection:
    """`load_json` of UTF-8 bytes, or why they are not a document (`bad_utf8` first)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(ReasonCode.BAD_UTF8, f"not UTF-8: {exc.reason} at byte {exc.start}")
    return load_json(text)


def decode_touchpoint(
    raw: bytes, domain: Domain | None = None, *, now: datetime
) -> Touchpoint | Rejection:
    """Decode one message value received at `now`; `domain` is the domain of the topic it
    arrived on, if any. Never raises."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(
            ReasonCode.TOO_LARGE, f"{len(raw)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"
        )
    document = load_json_bytes(raw)
    if isinstance(document, Rejection):
        return document
    return validate_document(document, domain, now=now)


def _latest(now: datetime) -> datetime:
    if now.tzinfo is None:  # a naive clock reading is taken as UTC
        now = now.replace(tzinfo=UTC)
    try:
        return now + MAX_FUTURE
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _error_code(error: ValidationError) -> ReasonCode:
    """`out_of_range` when every problem is a value outside its range, else `invalid`."""
    kinds = {item["type"] for item in error.errors(include_url=False)}
    return ReasonCode.OUT_OF_RANGE if kinds == {"out_of_range"} else ReasonCode.INVALID


def validate_document(
    document: object, domain: Domain | None = None, *, now: datetime
) -> Touchpoint | Rejection:
    """Validate an already-parsed JSON document as a touchpoint received at `now`."""
    outcome = validate_structure(document, domain)
    return outcome if isinstance(outcome, Rejection) else _within_the_clock(outcome, now)


def validate_structure(document: object, domain: Domain | None = None) -> Touchpoint | Rejection:
    """Everything but the clock: exactly what the JSON Schemas check, and the topic's domain.

    Use `validate_document` for input; this is the verdict a schema validator can reproduce.
    """
    if not isinstance(document, dict):
        return Rejection(ReasonCode.NOT_AN_OBJECT, "a touchpoint is a JSON object")
    event_id = document.get("event_id") if isinstance(document.get("event_id"), str) else None
    type_name = document.get("type")
    if not isinstance(type_name, str) or type_name not in TYPE_NAMES:
        known = "marketing.<name> or sales.<name> from the vocabulary"
        return Rejection(
            ReasonCode.UNKNOWN_TYPE,
            f"unknown type {type_name!r:.80}; expected {known}",
            event_id=event_id,
        )
    version = document.get("schema_version", 1)
    supported = supported_versions(type_name)
    if (
        isinstance(version, bool)
        or not isinstance(version, int | float)
        or version not in supported
    ):
        return Rejection(
            ReasonCode.UNSUPPORTED_VERSION,
            f"schema_version {version!r:.40} is not supported for {type_name} "
            f"(supported: {', '.join(map(str, supported))})",
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
            _error_code(exc),
            f"{type_name} failed validation: {lines[0]}"
            + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""),
            errors=lines,
            event_id=event_id,
            type=type_name,
        )


def _within_the_clock(touchpoint: Touchpoint, now: datetime) -> Touchpoint | Rejection:
    """The one rule a schema cannot check: the event happened at most a day after `now`."""
    latest = _latest(now)
    if touchpoint.occurred_at <= latest:
        return touchpoint
    line = (
        f"occurred_at: {touchpoint.occurred_at.isoformat()} is more than "
        f"{MAX_FUTURE.total_seconds() / 3600:.0f} h after its receipt ({now.isoformat()})"
    )
    return Rejection(
        ReasonCode.OUT_OF_RANGE,
        f"{touchpoint.type} failed validation: {line}",
        errors=[line],
        event_id=touchpoint.event_id,
        type=touchpoint.type,
    )
