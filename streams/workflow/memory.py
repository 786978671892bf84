"""In-memory ports: what `tandem replay` and the handlers' unit tests run on."""

from __future__ import annotations

from streams.journey.identity import InMemoryIdentityStore
from streams.workflow.ports import StoredJourney

__all__ = ["InMemoryIdentityStore", "InMemoryJourneyStore"]


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
