"""The envelope every touchpoint travels in: who, when, where from, in what context."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

IDENTIFIER_KINDS = ("contact", "email", "anon")
"""Identifier kinds in order of strength: a CRM contact id beats an email beats a cookie."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _strip(value: str) -> str:
    return value.strip()


def _normalise_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError("not an email address")
    return email


Identifier = Annotated[str, AfterValidator(_strip), Field(min_length=1, max_length=256)]
Email = Annotated[str, AfterValidator(_normalise_email), Field(max_length=320)]
Slug = Annotated[str, Field(min_length=1, max_length=128)]
Channel = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Acquisition channel, e.g. organic_search, paid_search, email, social, "
        "referral, direct_traffic, display, event, outbound.",
        examples=["organic_search", "paid_search", "email", "outbound"],
    ),
]


class Identity(BaseModel):
    """Who the touchpoint is about. At least one person identifier is required."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # The "at least one person identifier" rule, for JSON Schema validators too.
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("anonymous_id", "email", "contact_id")
            ]
        },
    )

    anonymous_id: Identifier | None = Field(None, description="cookie / device id")
    email: Email | None = Field(None, description="normalised: trimmed, lower-cased")
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
    """Where the touchpoint came from: campaign, channel, content and message shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: Slug | None = None
    channel: Channel | None = None
    content_id: Slug | None = None
    message_id: Slug | None = Field(None, description="the message or offer shown")


Domain = Literal["marketing", "sales"]


class Envelope(BaseModel):
    """Fields common to every touchpoint; each event type narrows `type` and `properties`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(
        min_length=1,
        max_length=128,
        description="Idempotency key: the same id is the same event, however often it is sent.",
    )
    type: str
    occurred_at: AwareDatetime = Field(description="RFC 3339 with an offset; event time orders")
    source: Slug = Field(description="the publishing system, e.g. website, hubspot, salesforce")
    identity: Identity
    context: Context = Field(default_factory=Context)
    schema_version: Literal[1] = 1

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
