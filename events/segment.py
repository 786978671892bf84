"""Segment spec calls (``track``, ``identify``, ``page``, ``batch``) as Tandem touchpoints.

A pure mapping: a Segment call (a decoded JSON object, https://segment.com/docs/connections/spec/)
becomes a touchpoint *document*, which then goes through the same door as every other input
(`events.decode.validate_document`); a call with no Tandem type becomes a `Rejection` with
reason ``unmapped_segment_event``. No clock: the time of receipt is an argument.

The mapping table (docs/segment.md shows it with the properties each row reads):

=========================================  =================================
Segment call / ``track`` event name          Tandem type
=========================================  =================================
``page``                                     ``marketing.page_viewed``
``identify``                                 ``marketing.identified``
``Form Submitted``, ``Signed Up``            ``marketing.form_submitted``
``Form Viewed``                              ``marketing.form_viewed``
``Email Opened``                             ``marketing.email_opened``
``Email Link Clicked``, ``Email Clicked``    ``marketing.email_clicked``
``Content Downloaded``                       ``marketing.content_downloaded``
``Webinar Attended``                         ``marketing.webinar_attended``
``Ad Clicked``                               ``marketing.ad_clicked``
``Event Attended``                           ``marketing.event_attended``
``Unsubscribed``                             ``marketing.unsubscribed``
a Tandem type name, or any event with        that type, ``properties`` passed as
``properties.tandem_type``                   they are (minus ``tandem_type``)
anything else, ``screen``/``group``/         rejected: ``unmapped_segment_event``
``alias``
=========================================  =================================

Event names match case-insensitively, ``_`` and ``-`` read as spaces. Identities:
``anonymousId`` → ``anonymous_id``, ``userId`` → ``contact_id``, ``traits.email`` (identify) or
``context.traits.email`` → ``email``. ``messageId`` → ``event_id`` (``segment-<messageId>``:
a retried call is a recognised duplicate). Event time: ``timestamp``, else
``originalTimestamp``, else ``receivedAt``, else the time of receipt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from events.decode import (
    MAX_MESSAGE_BYTES,
    ReasonCode,
    Rejection,
    load_json_bytes,
    validate_document,
)
from events.vocabulary import TYPE_NAMES, Touchpoint

Document = dict[str, Any]
Properties = Callable[[Mapping[str, Any], Mapping[str, Any]], Document]
"""Builds a type's properties from the call's ``properties`` and the person's traits."""

SEGMENT_CALLS: Final = ("track", "identify", "page")
"""The Segment calls Tandem maps (``screen``, ``group`` and ``alias`` are not mapped)."""
EVENT_ID_PREFIX: Final = "segment-"
MAX_EVENT_ID: Final = 128
UTM_FIELDS: Final = {
    "source": "utm_source",
    "medium": "utm_medium",
    "name": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
"""``context.campaign.<key>`` → the envelope's ``context.<utm field>``."""
_TIME_FIELDS: Final = ("timestamp", "originalTimestamp", "receivedAt")
_TRANSPORT_FIELDS: Final = frozenset({"sentAt", "writeKey", "receivedAt"})
"""Fields a retry may change (or that must never be stored): not part of the derived id."""


def _first(*candidates: object) -> Any:
    """The first candidate that is set (not None, not an empty string)."""
    return next((c for c in candidates if c is not None and c != ""), None)


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _company(traits: Mapping[str, Any]) -> Mapping[str, Any]:
    return _object(traits.get("company"))


def firmographics(properties: Mapping[str, Any], traits: Mapping[str, Any]) -> Document:
    """Job title, company, size, industry and pain points from properties, then traits
    (Segment's reserved traits ``title``, ``company.name``, ``company.employee_count``,
    ``company.industry``, ``industry``, ``employees``)."""
    sources = (properties, traits)
    company = _first(*(s.get("company") for s in sources if isinstance(s.get("company"), str)))
    found: Document = {
        "job_title": _first(*(v for s in sources for v in (s.get("job_title"), s.get("title")))),
        "company": company or _first(*(_company(s).get("name") for s in sources)),
        "company_size": _first(
            *(v for s in sources for v in (s.get("company_size"), s.get("employees"))),
            *(_company(s).get("employee_count") for s in sources),
        ),
        "industry": _first(
            *(s.get("industry") for s in sources), *(_company(s).get("industry") for s in sources)
        ),
        "pain_points": _first(*(s.get("pain_points") for s in sources)),
    }
    return {name: value for name, value in found.items() if value is not None}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:128] or "segment"


def _picked(**fields: object) -> Document:
    return {name: value for name, value in fields.items() if value is not None and value != ""}


def _form(name: str) -> Properties:
    def build(p: Mapping[str, Any], traits: Mapping[str, Any]) -> Document:
        form_id = _first(p.get("form_id"), p.get("formId"), p.get("form_name"), _slug(name))
        return {"form_id": form_id, **firmographics(p, traits)}

    return build


def _email_opened(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(email_id=_first(p.get("email_id"), p.get("campaign_id")))


def _email_clicked(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(
        email_id=_first(p.get("email_id"), p.get("campaign_id")),
        url=_first(p.get("link_url"), p.get("url")),
    )


def _content(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(content_id=_first(p.get("content_id"), p.get("contentId"), p.get("file_name")))


def _webinar(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(
        webinar_id=_first(p.get("webinar_id"), p.get("webinarId")),
        minutes=_first(p.get("minutes"), p.get("duration_minutes")),
    )


def _ad(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(ad_id=_first(p.get("ad_id"), p.get("adId")))


def _event(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(event_name=_first(p.get("event_name"), p.get("name")))


def _unsubscribed(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return _picked(list_id=_first(p.get("list_id"), p.get("listId")), reason=p.get("reason"))


def _form_viewed(p: Mapping[str, Any], _t: Mapping[str, Any]) -> Document:
    return {"form_id": _first(p.get("form_id"), p.get("formId"), p.get("form_name"))}


TRACK_EVENTS: Final[dict[str, tuple[str, Properties]]] = {
    "form submitted": ("marketing.form_submitted", _form("form submitted")),
    "signed up": ("marketing.form_submitted", _form("signed up")),
    "form viewed": ("marketing.form_viewed", _form_viewed),
    "email opened": ("marketing.email_opened", _email_opened),
    "email link clicked": ("marketing.email_clicked", _email_clicked),
    "email clicked": ("marketing.email_clicked", _email_clicked),
    "content downloaded": ("marketing.content_downloaded", _content),
    "webinar attended": ("marketing.webinar_attended", _webinar),
    "ad clicked": ("marketing.ad_clicked", _ad),
    "event attended": ("marketing.event_attended", _event),
    "unsubscribed": ("marketing.unsubscribed", _unsubscribed),
}
"""Segment ``track`` event names (normalised, see `normalised_event`) → type and properties."""


def normalised_event(name: str) -> str:
    """``"Form_Submitted "`` → ``"form submitted"``: how event names are matched."""
    return " ".join(re.sub(r"[_\-]", " ", name).lower().split())


def event_id_for(call: Mapping[str, Any]) -> str:
    """``segment-<messageId>``; without a usable messageId, a digest of the call minus what a
    retry changes (``sentAt``, ``receivedAt``, ``writeKey``): a retry is a recognised duplicate."""
    message_id = call.get("messageId")
    if isinstance(message_id, str) and message_id.strip():
        event_id = EVENT_ID_PREFIX + message_id.strip()
        if len(event_id) <= MAX_EVENT_ID:
            return event_id
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{EVENT_ID_PREFIX}sha256-{digest}"
    stable = {k: v for k, v in call.items() if k not in _TRANSPORT_FIELDS}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{EVENT_ID_PREFIX}sha256-{digest}"


def _identifier(value: object) -> object:
    # Segment ids may be numbers; Tandem's are strings (a bool is not an id: left to fail).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def identity_of(call: Mapping[str, Any], traits: Mapping[str, Any]) -> Document:
    """``anonymousId`` → anonymous_id, ``userId`` → contact_id, traits' email → email."""
    found = {
        "anonymous_id": _identifier(call.get("anonymousId")),
        "contact_id": _identifier(call.get("userId")),
        "email": traits.get("email"),
    }
    return {name: value for name, value in found.items() if value is not None and value != ""}


def campaign_utm(context: Mapping[str, Any]) -> Document:
    """``context.campaign.{source,medium,name,term,content}`` → ``utm_*`` (strings only)."""
    campaign = _object(context.get("campaign"))
    return {
        utm: campaign[key]
        for key, utm in UTM_FIELDS.items()
        if isinstance(campaign.get(key), str) and campaign[key]
    }


def envelope_context(context: Mapping[str, Any]) -> Document:
    """The touchpoint's ``context`` from Segment's: its campaign as the envelope's UTM fields
    (attribution reads them when `campaign_id` and `channel` are absent: docs/contract.md)."""
    return campaign_utm(context)


def _traits(call: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    context_traits = _object(_object(call.get("context")).get("traits"))
    if kind == "identify":
        return {**context_traits, **_object(call.get("traits"))}
    return context_traits


def _page(call: Mapping[str, Any]) -> tuple[str, Document]:
    p = _object(call.get("properties"))
    page = _object(_object(call.get("context")).get("page"))
    return "marketing.page_viewed", _picked(
        url=_first(p.get("url"), page.get("url")),
        title=_first(p.get("title"), page.get("title"), call.get("name")),
        referrer=_first(p.get("referrer"), page.get("referrer")),
    )


def _track(call: Mapping[str, Any], traits: Mapping[str, Any]) -> tuple[str, Document] | str:
    """(type, properties), or why the event has no Tandem type."""
    event = call.get("event")
    properties = _object(call.get("properties"))
    named = event if isinstance(event, str) and event in TYPE_NAMES else None
    passed = _first(properties.get("tandem_type"), named)
    if isinstance(passed, str):
        return passed, {k: v for k, v in properties.items() if k != "tandem_type"}
    if not isinstance(event, str) or not event.strip():
        return "a track call needs an `event` name"
    row = TRACK_EVENTS.get(normalised_event(event))
    if row is None:
        return (
            f"track event {event[:80]!r} has no Tandem type: use one of the mapped names "
            "(docs/segment.md), a Tandem type name, or properties.tandem_type"
        )
    type_name, build = row
    return type_name, build(properties, traits)


def touchpoint_document(
    call: Mapping[str, Any], *, kind: str, source: str, received_at: datetime
) -> Document | Rejection:
    """The touchpoint document of one Segment call of `kind` (track, identify, page), or an
    ``unmapped_segment_event`` rejection. The document is not validated yet."""
    event_id = event_id_for(call)
    traits = _traits(call, kind)
    if kind == "page":
        mapped: tuple[str, Document] | str = _page(call)
    elif kind == "identify":
        mapped = "marketing.identified", firmographics({}, traits)
    elif kind == "track":
        mapped = _track(call, traits)
    else:
        mapped = (
            f"Segment `{str(kind)[:40]}` calls are not mapped (only {', '.join(SEGMENT_CALLS)})"
        )
    if isinstance(mapped, str):
        return Rejection(ReasonCode.UNMAPPED_SEGMENT_EVENT, mapped, event_id=event_id)
    type_name, properties = mapped
    document: Document = {
        "event_id": event_id,
        "type": type_name,
        "occurred_at": _first(*(call.get(f) for f in _TIME_FIELDS), received_at.isoformat()),
        "source": source,
        "identity": identity_of(call, traits),
        "properties": properties,
    }
    context = envelope_context(_object(call.get("context")))
    if context:
        document["context"] = context
    return document


@dataclass(frozen=True)
class SegmentOutcome:
    """One Segment call: its bytes (without any ``writeKey``) and what it became."""

    original: bytes
    outcome: Touchpoint | Rejection
    message_id: str | None


def original_bytes(call: Mapping[str, Any]) -> bytes:
    """A call as compact JSON without its ``writeKey`` (dead letters never hold a key)."""
    kept = {k: v for k, v in call.items() if k != "writeKey"}
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")


def calls_of(document: object, kind: str | None) -> list[tuple[str, Mapping[str, Any]]] | str:
    """The (kind, call) pairs of a request body: one call of `kind`, or, for ``kind=None``, a
    ``{"batch": [...]}`` whose items name their ``type`` (its top-level ``context`` is under
    each item's) or one call naming its ``type``. A string says why the body is not a Segment
    request."""
    if not isinstance(document, dict):
        return "a Segment request is a JSON object"
    if kind is not None:
        return [(kind, document)]
    if "batch" not in document and isinstance(document.get("type"), str):
        return [(document["type"], document)]  # one call on its own (a line of a file)
    items = document.get("batch")
    if not isinstance(items, list):
        return "a Segment batch is an object with a `batch` array"
    shared = _object(document.get("context"))
    calls: list[tuple[str, Mapping[str, Any]]] = []
    for item in items:
        call = _object(item)
        if shared:
            call = {**call, "context": {**shared, **_object(call.get("context"))}}
        calls.append((str(call.get("type", "")), call))
    return calls


def map_call(kind: str, call: Mapping[str, Any], *, source: str, now: datetime) -> SegmentOutcome:
    """Map and validate one call received at `now`, exactly as any other input is validated."""
    message_id = call.get("messageId") if isinstance(call.get("messageId"), str) else None
    original = original_bytes(call)
    document = touchpoint_document(call, kind=kind, source=source, received_at=now)
    if isinstance(document, Rejection):
        return SegmentOutcome(original, document, message_id)
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_MESSAGE_BYTES:
        too_large = Rejection(
            ReasonCode.TOO_LARGE,
            f"the touchpoint is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit",
            event_id=document["event_id"],
        )
        return SegmentOutcome(original, too_large, message_id)
    return SegmentOutcome(original, validate_document(document, now=now), message_id)


def decode_segment(
    raw: bytes, kind: str | None = None, *, source: str, now: datetime
) -> list[SegmentOutcome] | Rejection:
    """Decode a Segment request body (one call of `kind`, or a batch for ``None``) received at
    `now`; a `Rejection` when the body itself is not a Segment request. Never raises."""
    document = load_json_bytes(raw)
    if isinstance(document, Rejection):
        return document
    calls = calls_of(document, kind)
    if isinstance(calls, str):
        return Rejection(ReasonCode.NOT_AN_OBJECT, calls)
    return [map_call(k, call, source=source, now=now) for k, call in calls]
