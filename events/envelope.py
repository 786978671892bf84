"""The envelope every touchpoint travels in: who, when, where from, in what context.

Every rule here is one a JSON Schema validator can check too: string rules are regular
expressions published as the schema's ``pattern`` and tested with ``re.search`` exactly as
Python's `jsonschema` does; numbers and booleans are never coerced from other JSON types. So
the models accept exactly what the generated schemas in ``schemas/json/`` accept. The one rule
that needs a clock (event time at most a day ahead) is the decoder's (`events.decode`).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

IDENTIFIER_KINDS = ("contact", "email", "anon")
"""Identifier kinds in order of strength: a CRM contact id beats an email beats a cookie."""

END = r"(?![\s\S])"
"""End of the string in every regex dialect (Python's ``$`` also matches before a final
newline, so ``"EUR\\n"`` would pass ``^[A-Z]{3}$`` with `re.search`)."""

CONTROL_OR_FORMAT = (
    r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
"""Unicode categories Cc and Cf (controls, zero-width and bidi marks, tags) as a regex class
body: BMP characters as escapes, the rest literally (no escape works in every dialect)."""

MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, regex_engine="python-re")
"""Closed models; patterns run on Python's `re` (search semantics, as JSON Schema's)."""

_CHAR = f"[^{CONTROL_OR_FORMAT}]"
_SOLID = rf"[^{CONTROL_OR_FORMAT}\s]"
_IDENTIFIER = rf"^\s*{_SOLID}({_CHAR}*{_SOLID})?\s*{END}"
_EMAIL_PART = rf"[^@\s{CONTROL_OR_FORMAT}]+"
_EMAIL = rf"^\s*{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}\s*{END}"
_IDENTIFIER_RE = re.compile(_IDENTIFIER)
_NOT_AN_IDENTIFIER = "blank, or contains a control or format character (Unicode Cc/Cf)"
_EMAIL_RE = re.compile(_EMAIL)


def _normalised(limit: int, *, lower: bool = False) -> Any:
    """Trim, (lower-case,) NFC; refuse a value that normalisation makes longer than `limit`.

    A few characters grow (NFC decomposes U+FB2C into 3, ``"İ".lower()`` is 2): the stored
    value must pass the same model again downstream. Only such values, at the very edge of the
    length limit, are refused here although the schema (which counts what was sent) accepts them.
    """

    def normalise(value: str) -> str:
        value = value.strip().lower() if lower else value.strip()
        value = unicodedata.normalize("NFC", value)
        if len(value) > limit:
            raise PydanticCustomError(
                "string_too_long",
                "longer than {limit} characters once normalised (NFC)",
                {"limit": limit},
            )
        return value

    return normalise


def _matching(pattern: re.Pattern[str], message: str) -> Any:
    """A check that `pattern` is found, reported as `message` (constraints run on the value as
    sent, before normalisation, as a JSON Schema validator sees it)."""

    def check(value: str) -> str:
        if pattern.search(value) is None:
            raise PydanticCustomError("string_pattern_mismatch", message)
        return value

    return check


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=256, json_schema_extra={"pattern": _IDENTIFIER}),
    AfterValidator(_matching(_IDENTIFIER_RE, _NOT_AN_IDENTIFIER)),
    AfterValidator(_normalised(256)),
]
"""A person or company id: trimmed, NFC; no control or format characters, not blank."""
Email = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"pattern": _EMAIL}),
    AfterValidator(_matching(_EMAIL_RE, "not an email address (or it has control characters)")),
    AfterValidator(_normalised(320, lower=True)),
]
"""An email address: trimmed, lower-cased, NFC; no control or format characters."""
Slug = Annotated[str, Field(min_length=1, max_length=128)]
Channel = Annotated[
    str,
    Field(
        pattern=rf"^[a-z][a-z0-9_]{{0,63}}{END}",
        description="Acquisition channel, e.g. organic_search, paid_search, email, social, "
        "referral, direct_traffic, display, event, outbound.",
        examples=["organic_search", "paid_search", "email", "outbound"],
    ),
]

_YEAR = "[2-9][0-9]{3}"
_LEAP_YEAR = "([2-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[3579][26])00)"
_DATE = (
    f"({_YEAR}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    f"|{_YEAR}-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    f"|{_YEAR}-02-(0[1-9]|1[0-9]|2[0-8])"
    f"|{_LEAP_YEAR}-02-29)"
)
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
_OFFSET = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DATE_TIME_PATTERN = f"^{_DATE}T{_TIME}{_OFFSET}{END}"
"""RFC 3339 date-time with an offset (``T`` and ``Z`` upper-case, no leap second), a real
calendar date, the year 2000 or later (as written)."""
_DATE_TIME_RE = re.compile(DATE_TIME_PATTERN)
_BEFORE_2000_RE = re.compile(rf"^[01][0-9]{{3}}-[0-9]{{2}}-[0-9]{{2}}T{_TIME}{_OFFSET}{END}")
EARLIEST_YEAR = 2000


def _date_time(value: object) -> datetime:
    """Parse an RFC 3339 string; numbers (epoch seconds) and other forms are refused."""
    if isinstance(value, datetime) and value.tzinfo is not None:  # from Python, not JSON
        if value.year < EARLIEST_YEAR:
            raise PydanticCustomError(
                "out_of_range",
                "{value} is before {year}-01-01",
                {"value": str(value), "year": EARLIEST_YEAR},
            )
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_time_type", "should be an RFC 3339 date-time string")
    if _DATE_TIME_RE.search(value) is None:
        if _BEFORE_2000_RE.search(value) is not None:
            raise PydanticCustomError(
                "out_of_range",
                "{value} is before {year}-01-01",
                {"value": value, "year": EARLIEST_YEAR},
            )
        raise PydanticCustomError(
            "date_time_format",
            "should be an RFC 3339 date-time with an offset, e.g. 2025-03-04T09:15:00+01:00",
        )
    return datetime.fromisoformat(value)


DateTime = Annotated[
    datetime,
    BeforeValidator(_date_time),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}),
]
"""An event-time instant as JSON Schema can check it: a string, see `DATE_TIME_PATTERN`."""


def _json_integer(value: object) -> object:
    """JSON Schema's ``integer``: 5 and 5.0, never ``true`` or ``"5"``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, float) and not value.is_integer():
        raise PydanticCustomError("int_from_float", "Input should be a valid integer")
    return int(value)


JSON_INTEGER = BeforeValidator(_json_integer)
"""Makes an ``int`` field JSON Schema's ``integer``; put it after the field's bounds
(``Annotated[int, Field(ge=0), JSON_INTEGER]``) so they still reach the schema."""


class Identity(BaseModel):
    """Who the touchpoint is about. At least one person identifier is required."""

    model_config = ConfigDict(
        **MODEL_CONFIG,
        # The "at least one person identifier" rule, for JSON Schema validators too.
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("anonymous_id", "email", "contact_id")
            ]
        },
    )

    anonymous_id: Identifier | None = Field(None, description="cookie / device id")
    email: Email | None = Field(None, description="normalised: trimmed, lower-cased, NFC")
    contact_id: Identifier | None = Field(None, description="CRM contact id")
    account_id: Identifier | None = Field(None, description="the company (not a person id)")

    @model_validator(mode="after")
    def _has_a_person(self) -> Identity:
        if not (self.anonymous_id or self.email or self.contact_id):
            raise ValueError("identity needs at least one of anonymous_id, email, contact_id")
        return self

    def identifiers(self) -> tuple[str, ...]:
        """The person identifiers as ``kind:value`` strings, strongest first."""
        found: list[str] = []
        if self.contact_id:
            found.append(f"contact:{self.contact_id}")
        if self.email:
            found.append(f"email:{self.email}")
        if self.anonymous_id:
            found.append(f"anon:{self.anonymous_id}")
        return tuple(found)


class Context(BaseModel):
    """Where the touchpoint came from: campaign, channel, content, message shown, UTM tags."""

    model_config = MODEL_CONFIG

    campaign_id: Slug | None = None
    channel: Channel | None = None
    content_id: Slug | None = None
    message_id: Slug | None = Field(None, description="the message or offer shown")
    # UTM parameters as marketing tools send them; attribution falls back on them when
    # campaign_id / channel are absent (`events.attribution`).
    utm_source: Slug | None = Field(None, description="utm_source, e.g. google, newsletter")
    utm_medium: Slug | None = Field(None, description="utm_medium, e.g. cpc, email, social")
    utm_campaign: Slug | None = Field(None, description="utm_campaign: the campaign id")
    utm_term: Slug | None = Field(None, description="utm_term: the paid search keyword")
    utm_content: Slug | None = Field(None, description="utm_content: the ad or link variant")


Domain = Literal["marketing", "sales"]


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1")
    return value


class Envelope(BaseModel):
    """Fields common to every touchpoint; each event type narrows `type` and `properties`."""

    model_config = MODEL_CONFIG

    event_id: str = Field(
        min_length=1,
        max_length=128,
        description="Idempotency key: the same id is the same event, however often it is sent.",
    )
    type: str
    occurred_at: DateTime = Field(
        description="RFC 3339 with an offset, not before 2000 and at most 24 h after receipt; "
        "event time orders"
    )
    source: Slug = Field(description="the publishing system, e.g. website, hubspot, salesforce")
    identity: Identity
    context: Context = Field(default_factory=Context)
    schema_version: Annotated[Literal[1], BeforeValidator(_not_a_boolean)] = 1

    @property
    def domain(self) -> Domain:
        """`marketing` or `sales`, from the type's prefix."""
        return "marketing" if self.type.startswith("marketing.") else "sales"

    @property
    def name(self) -> str:
        """The type without its domain prefix, e.g. ``form_submitted``."""
        return self.type.split(".", 1)[1]

    @property
    def order_key(self) -> tuple[datetime, str]:
        """The total order of touchpoints: event time, then event id."""
        return (self.occurred_at, self.event_id)
