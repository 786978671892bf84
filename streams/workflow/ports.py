"""The ports the workflow's handlers work on, and what they hold.

Each port has an in-memory implementation (`streams.workflow.memory`, for `tandem replay` and
the unit tests) and a Faust/Redis one (`streams.adapters`, for the worker). Handlers never see
which.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from schemas.journey import JourneyRecord
from streams.journey.forget import Erasure
from streams.journey.identity import IdentityDecision, IdentityStore


class MovedJourney(BaseModel):
    """What stays at a customer id whose journey moved to another one (a merge or rename).

    Kept, not deleted, so that anything still on its way to the old id — a touchpoint, an
    absorb, a split — follows the move to the journey's current owner instead of starting a
    phantom journey there.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    moved_to: str
    version: int = Field(ge=0, description="the moved journey's version + 1 (stale-write guard)")
    reclaimed: bool = Field(
        False,
        description="an unmerge gave this id back: forward nothing, start newer than `version`",
    )


class ForgottenJourney(BaseModel):
    """What stays at a customer id whose person was forgotten: no personal data, only that.

    Kept, not deleted, so that anything still on its way to the id — a touchpoint resolved
    before the forget, an absorb of a journey that was moving, a redriven dead letter — is
    dropped instead of starting the journey again (docs/privacy.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    forgotten: bool = True
    version: int = Field(ge=0, description="the erased journey's version + 1 (stale-write guard)")
    request_id: str = Field(description="the forget request that erased it (the audit trail)")


StoredJourney = JourneyRecord | MovedJourney | ForgottenJourney


class JourneyStore(Protocol):
    """Customer id → its journey, or the pointer it left when it moved."""

    def get(self, customer_id: str) -> StoredJourney | None:
        """The stored journey (or pointer) of a customer id, if any."""
        ...

    def put(self, customer_id: str, journey: StoredJourney) -> None:
        """Store a journey (or pointer) under a customer id."""
        ...


class IdentityPort(IdentityStore, Protocol):
    """The resolver's store, writable: the identity sequencer's table."""

    def apply(self, decision: IdentityDecision) -> None:
        """Store a decision's writes."""
        ...

    def is_suppressed(self, digest: str) -> bool:
        """Whether an identifier with this suppression digest was forgotten."""
        ...

    def erase(self, erasure: Erasure, request_id: str) -> None:
        """Remove a forgotten person's entries and keep their suppression digests."""
        ...
