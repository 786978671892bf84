"""The messages between Tandem's agents: one typed union per hop, dispatched by `kind`.

Two hops carry messages (see `streams.workflow.handlers`):

* the identity sequencer's input (`touchpoints.accepted`, one partition): an accepted
  touchpoint, or an `UnmergeRequest` from `tandem unmerge`;
* the journeys' input (`touchpoints.resolved`, keyed by customer id): a touchpoint for its
  customer, a `Move` of a journey to another customer id, the `Absorb` that carries the moved
  journey there, `Split` / `SplitOff` (an unmerge), a timer `Tick`, and `Reevaluate` (a
  changed playbook).

A message that reaches a customer whose journey has moved on is forwarded to the journey's
current owner; `hops` counts those forwards, so a pointer cycle (only an unmerge could make
one) ends in a dead letter instead of a loop.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from events.vocabulary import Touchpoint
from schemas.journey import JourneyRecord

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


JourneyMessage = Annotated[
    TouchpointArrived | Move | Absorb | Split | SplitOff | Tick | Reevaluate | Reclaim,
    Field(discriminator="kind"),
]
"""What the journeys hop consumes (keyed by customer id)."""

JOURNEY_MESSAGE: TypeAdapter[JourneyMessage] = TypeAdapter(JourneyMessage)

Forwardable = TouchpointArrived | Absorb | Split
"""Messages that follow a moved journey to its current owner."""


def encode(message: _Message) -> bytes:
    """The wire form of a message (compact JSON)."""
    return message.model_dump_json(exclude_defaults=False).encode()


def decode_journey_message(raw: bytes) -> JourneyMessage:
    """A journeys-hop message from its wire form (raises pydantic's ValidationError)."""
    return JOURNEY_MESSAGE.validate_json(raw)
