"""In-memory ports: what `tandem replay` and the handlers' unit tests run on."""

from __future__ import annotations

from streams.journey import identity
from streams.journey.forget import Erasure
from streams.workflow.ports import StoredJourney

__all__ = ["InMemoryIdentityPort", "InMemoryIdentityStore", "InMemoryJourneyStore"]


class InMemoryIdentityPort(identity.InMemoryIdentityStore):
    """The identity sequencer's store in dicts, with the suppression digests of forgotten
    people (digest → the forget request that suppressed it)."""

    def __init__(self) -> None:
        super().__init__()
        self.suppressed: dict[str, str] = {}

    def is_suppressed(self, digest: str) -> bool:
        """Whether an identifier with this suppression digest was forgotten."""
        return digest in self.suppressed

    def erase(self, erasure: Erasure, request_id: str) -> None:
        """Remove a forgotten person's entries and keep their suppression digests."""
        for identifier in erasure.identifiers:
            self.customers.pop(identifier, None)
        if erasure.customer_id is not None:
            self.members.pop(erasure.customer_id, None)
        for identifier, kept in erasure.separation_writes.items():
            if kept is None:
                self.separations.pop(identifier, None)
            else:
                self.separations[identifier] = frozenset(kept)
        for digest in erasure.suppressions:
            self.suppressed.setdefault(digest, request_id)


InMemoryIdentityStore = InMemoryIdentityPort
"""The workflow's in-memory identity store is the whole port (suppression included)."""


class InMemoryJourneyStore:
    """Customer id → journey (or moved-journey pointer), in a dict."""

    def __init__(self) -> None:
        self.journeys: dict[str, StoredJourney] = {}

    def get(self, customer_id: str) -> StoredJourney | None:
        """The stored journey (or pointer) of a customer id, if any."""
        return self.journeys.get(customer_id)

    def put(self, customer_id: str, journey: StoredJourney) -> None:
        """Store a journey (or pointer) under a customer id."""
        self.journeys[customer_id] = journey
