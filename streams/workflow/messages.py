"""The messages between Tandem's agents: one typed union per hop, dispatched by `kind`.

Two hops carry messages (see `streams.workflow.handlers`):

* the identity sequencer's input (`touchpoints.accepted`, one partition): an accepted
  touchpoint, an `UnmergeRequest` from `tandem unmerge`, or a `ForgetRequest` from
  `tandem forget` / ``DELETE /v1/people/{ref}``;
* the journeys' input (`touchpoints.resolved`, keyed by customer id): a touchpoint for its
  customer, a `Move` of a journey to another customer id, the `Absorb` that carries the moved
  journey there, `Split` / `SplitOff` (an unmerge), a timer `Tick`, and `Reevaluate` (a
  changed playbook), and `Forget` (erase a forgotten person's journey).

A message that reaches a customer whose journey has moved on is forwarded to the journey's
current owner; `hops` counts those forwards, so a pointer cycle (only an unmerge could make
one) ends in a dead letter instead of a loop.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from events.vocabulary import Touchpoint, touchpoint_to_json
from schemas.journey import JourneyRecord
from streams.journey.forget import reference_identifiers

MAX_HOPS = 32
"""Forwards along moved-journey pointers before a message is given up as undeliverable."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnmergeRequest(_Message):
    """`tandem unmerge`: split `identifiers` off `customer_id` for good (identity hop)."""

    kind: Literal["unmerge"] = "unmerge"
    customer_id: str
    identifiers: list[str]
    request_id: str
    requested_at: AwareDatetime


class ForgetRequest(_Message):
    """`tandem forget` / ``DELETE /v1/people/{ref}``: erase a person for good (identity hop).

    `identifiers` are what the reference may name (normalised); `customer_id` when it named
    one. `reference_sha256` is the digest the audit trail shows instead of the reference.
    """

    kind: Literal["forget"] = "forget"
    identifiers: list[str]
    customer_id: str | None = None
    reference_sha256: str
    request_id: str
    requested_by: str
    requested_at: AwareDatetime

    @classmethod
    def for_reference(cls, reference: str, requested_by: str, at: datetime) -> ForgetRequest:
        """The request to forget whoever `reference` names: a customer id (``cus_…``), an
        identifier (``kind:value``) or a bare email / contact id / anonymous id."""
        text = reference.strip()
        customer_id = text if text.startswith("cus_") else None
        return cls(
            identifiers=[] if customer_id else list(reference_identifiers(text)),
            customer_id=customer_id,
            reference_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            request_id=f"forget-{uuid.uuid4().hex[:12]}",
            requested_by=requested_by,
            requested_at=at,
        )


class TouchpointArrived(_Message):
    """A resolved touchpoint for the journey of the message's key."""

    kind: Literal["touchpoint"] = "touchpoint"
    touchpoint: Touchpoint
    hops: int = 0


class Move(_Message):
    """The identity resolver moved this customer's journey to `to` (a merge or a rename)."""

    kind: Literal["move"] = "move"
    to: str
    cause_event_id: str
    at: AwareDatetime


class Absorb(_Message):
    """A moved journey arriving at its new customer id."""

    kind: Literal["absorb"] = "absorb"
    record: JourneyRecord
    cause_event_id: str
    at: AwareDatetime
    hops: int = 0


class Split(_Message):
    """Undo a wrong merge: split `identifiers` off this journey (from an unmerge)."""

    kind: Literal["split"] = "split"
    identifiers: list[str]
    remaining_customer_id: str
    split_customer_id: str
    cause_id: str
    at: AwareDatetime
    hops: int = 0


class SplitOff(_Message):
    """The split-off side of an unmerge arriving at its own customer id."""

    kind: Literal["split_off"] = "split_off"
    record: JourneyRecord
    at: AwareDatetime


class Tick(_Message):
    """Timers due: evaluate this journey's SLA and nurture timers as of `now`."""

    kind: Literal["tick"] = "tick"
    now: AwareDatetime


class Reclaim(_Message):
    """An unmerge names this customer id again: a pointer it left stops forwarding."""

    kind: Literal["reclaim"] = "reclaim"


class Reevaluate(_Message):
    """The playbook changed: re-derive this journey under it."""

    kind: Literal["reevaluate"] = "reevaluate"


class Forget(_Message):
    """Erase this customer id's journey (or pointer) for a forget request; `identifiers` are
    the person's, whose read-model pointers go too."""

    kind: Literal["forget"] = "forget"
    identifiers: list[str]
    request_id: str
    at: AwareDatetime


JourneyMessage = Annotated[
    TouchpointArrived | Move | Absorb | Split | SplitOff | Tick | Reevaluate | Reclaim | Forget,
    Field(discriminator="kind"),
]
"""What the journeys hop consumes (keyed by customer id)."""

JOURNEY_MESSAGE: TypeAdapter[JourneyMessage] = TypeAdapter(JourneyMessage)

Forwardable = TouchpointArrived | Absorb | Split
"""Messages that follow a moved journey to its current owner."""


def encode(message: _Message) -> bytes:
    """The wire form of a message (compact JSON).

    A touchpoint travels in its canonical form (`touchpoint_to_json`: no nulls), the form it
    was accepted in: half the bytes of every field written out, and half the time to read.
    """
    if isinstance(message, TouchpointArrived):
        canonical = touchpoint_to_json(message.touchpoint)
        return b'{"kind":"touchpoint","touchpoint":%b,"hops":%d}' % (canonical, message.hops)
    return message.model_dump_json(exclude_defaults=False).encode()


def decode_journey_message(raw: bytes) -> JourneyMessage:
    """A journeys-hop message from its wire form (raises pydantic's ValidationError)."""
    return JOURNEY_MESSAGE.validate_json(raw)
