"""The workflow's ports on Faust tables.

Faust decides a table write's changelog partition, and a RocksDB read's partition, from the
*current event*. A batch (`stream.take_events`) holds events of several partitions, so before
touching a customer's entry the agent names one of that customer's events (`in_partition_of`).
"""

from __future__ import annotations

import json
import weakref
from collections import OrderedDict
from typing import Any

from faust.streams import _current_event  # Faust's own context variable (see module doc)
from faust.types import EventT

from streams.journey.forget import Erasure
from streams.journey.identity import IdentityDecision
from streams.workflow.codec import (
    JourneyEntries,
    decode_journey,
    journey_entries,
    segment_digests,
    segment_key,
)
from streams.workflow.ports import StoredJourney

DECODED_CACHE_SIZE = 20_000
"""Decoded journeys kept per worker, so a busy customer's record is not parsed per batch."""


def in_partition_of(event: EventT[Any]) -> None:
    """Make `event` Faust's current event: table reads and writes go to its partition."""
    _current_event.set(weakref.ref(event))


class TableJourneyStore:
    """Customer id → journey (or pointer), on the journeys table, with a decoded cache.

    A long journey is a head entry plus segments (`streams.workflow.codec`): they are written
    first, the head after, and segments the head no longer lists are deleted last, all in the
    customer's partition. The cache holds the head bytes it decoded: an entry counts only
    while the table still holds the same bytes, so state recovered from the changelog after a
    rebalance is never shadowed.
    """

    def __init__(self, table: Any, cache_size: int = DECODED_CACHE_SIZE) -> None:
        self.table = table
        self.cache_size = cache_size
        self._decoded: OrderedDict[str, tuple[bytes, StoredJourney]] = OrderedDict()

    def get(self, customer_id: str) -> StoredJourney | None:
        """The stored journey (or pointer) of a customer id, if any."""
        raw = self.table.get(customer_id.encode())
        if raw is None:
            return None
        cached = self._decoded.get(customer_id)
        if cached is not None and (cached[0] is raw or cached[0] == raw):
            self._decoded.move_to_end(customer_id)
            return cached[1]
        journey = decode_journey(
            raw, lambda digest: self.table.get(segment_key(customer_id, digest))
        )
        self._remember(customer_id, raw, journey)
        return journey

    def put(
        self, customer_id: str, journey: StoredJourney, entries: JourneyEntries | None = None
    ) -> None:
        """Write a journey (or pointer), as `entries` if the caller encoded it already; the
        caller has named one of the customer's events."""
        if entries is None:
            entries = journey_entries(journey)
        key = customer_id.encode()
        before = self.table.get(key)
        held = set(segment_digests(before)) if before is not None else set()
        for segment in entries.segments:
            if segment.digest not in held:
                self.table[segment_key(customer_id, segment.digest)] = segment.entry()
        self.table[key] = entries.head
        for digest in held.difference(s.digest for s in entries.segments):
            del self.table[segment_key(customer_id, digest)]
        self._remember(customer_id, entries.head, journey)

    def _remember(self, customer_id: str, raw: bytes, journey: StoredJourney) -> None:
        self._decoded[customer_id] = (raw, journey)
        self._decoded.move_to_end(customer_id)
        while len(self._decoded) > self.cache_size:
            self._decoded.popitem(last=False)


JOURNAL_KEY = b"journal:identity-batch"
"""The identity table key holding the batch being written (see `TableIdentityStore.flush`)."""

SUPPRESSED = b"suppressed:"
"""The prefix of a suppression digest's key in a batch (and in the identity table, before the
suppressions had a table of their own)."""


class TableIdentityStore:
    """The identity table as the resolver's store; writes wait in a batch until `flush`.

    The sequencer sends a batch's moves and touchpoints, waits until the broker has them, and
    only then writes the table: a crash in between repeats the decisions (the journeys ignore
    a repeated move or absorb) instead of losing moves whose identity writes had survived.

    Suppression digests go to `suppressions` (digest → forget request id), a table whose
    changelog is the app-independent ``privacy.suppressions`` topic: a worker rebuilding under a
    fresh app id restores them before its first touchpoint (docs/privacy.md). Without it (tests)
    they stay in the identity table, under ``suppressed:<digest>``.
    """

    def __init__(self, table: Any, suppressions: Any | None = None) -> None:
        self.table = table
        self.suppressions = suppressions
        self._pending: dict[bytes, bytes | None] = {}

    def _read(self, key: bytes) -> bytes | None:
        if key in self._pending:
            return self._pending[key]
        value = self.table.get(key)
        return value if isinstance(value, bytes) else None

    def get(self, identifier: str) -> str | None:
        """The customer id the identifier belongs to, if it was seen."""
        raw = self._read(identifier.encode())
        return raw.decode() if raw else None

    def get_members(self, customer_id: str) -> tuple[str, ...]:
        """The identifiers of a customer (empty if unknown)."""
        raw = self._read(f"members:{customer_id}".encode())
        return tuple(json.loads(raw)) if raw else ()

    def get_separations(self, identifier: str) -> frozenset[str]:
        """The identifiers this one must never link with (written by an unmerge)."""
        raw = self._read(f"separations:{identifier}".encode())
        return frozenset(json.loads(raw)) if raw else frozenset()

    def get_links(self, identifier: str) -> tuple[str, ...]:
        """The strong identities this one was seen with (at most the quarantine limit + 1)."""
        raw = self._read(f"links:{identifier}".encode())
        return tuple(json.loads(raw)) if raw else ()

    def apply(self, decision: IdentityDecision) -> None:
        """Queue a decision's writes (read back at once; written to the table by `flush`)."""
        pending = self._pending
        for identifier, customer_id in decision.writes.items():
            pending[identifier.encode()] = customer_id.encode()
        for customer_id, members in decision.member_writes.items():
            key = f"members:{customer_id}".encode()
            pending[key] = None if members is None else json.dumps(sorted(members)).encode()
        for identifier, separated in decision.separation_writes.items():
            key = f"separations:{identifier}".encode()
            pending[key] = json.dumps(sorted(separated)).encode()
        for identifier, linked in decision.link_writes.items():
            pending[f"links:{identifier}".encode()] = json.dumps(list(linked)).encode()

    def is_suppressed(self, digest: str) -> bool:
        """Whether an identifier with this suppression digest was forgotten."""
        if self._read(SUPPRESSED + digest.encode()) is not None:
            return True  # queued in this batch, or kept in the identity table (before)
        return self.suppressions is not None and self.suppressions.get(digest.encode()) is not None

    def erase(self, erasure: Erasure, request_id: str) -> None:
        """Queue a forgotten person's removal (tombstones) and suppression digests."""
        pending = self._pending
        for identifier in erasure.identifiers:
            pending[identifier.encode()] = None
        if erasure.customer_id is not None:
            pending[f"members:{erasure.customer_id}".encode()] = None
        for identifier, kept in erasure.separation_writes.items():
            key = f"separations:{identifier}".encode()
            pending[key] = None if kept is None else json.dumps(sorted(kept)).encode()
        for digest in erasure.suppressions:
            if not self.is_suppressed(digest):
                pending[SUPPRESSED + digest.encode()] = request_id.encode()

    def discard(self) -> None:
        """Forget queued writes (their batch could not be sent)."""
        self._pending.clear()

    def flush(self) -> int:
        """Write the queued writes to the table; the caller has named an event. Returns how
        many keys were written.

        The batch goes first as one record (`JOURNAL_KEY`), then key by key, then the record
        is deleted. A crash part-way leaves a prefix of these changelog writes (one partition,
        in order): either no key of the batch, or its journal, which the next batch completes
        (`complete_interrupted`) — never an identifier's pointer without its members entry.
        """
        if not self._pending:
            return 0
        journal = {
            key.decode(): None if v is None else v.decode() for key, v in self._pending.items()
        }
        self.table[JOURNAL_KEY] = json.dumps(journal).encode()
        self._write(self._pending)
        del self.table[JOURNAL_KEY]
        written = len(self._pending)
        self._pending.clear()
        return written

    def complete_interrupted(self) -> int:
        """Finish a batch whose writes a crash cut short (its journal survived); the caller has
        named an event. Returns how many keys were written."""
        raw = self.table.get(JOURNAL_KEY)
        if not isinstance(raw, bytes):
            return 0
        journal: dict[str, str | None] = json.loads(raw)
        writes = {k.encode(): None if v is None else v.encode() for k, v in journal.items()}
        self._write(writes)
        del self.table[JOURNAL_KEY]
        return len(writes)

    def _write(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if self.suppressions is not None and key.startswith(SUPPRESSED) and value:
                self.suppressions[key.removeprefix(SUPPRESSED)] = value
            elif value is not None:
                self.table[key] = value
            elif self.table.get(key) is not None:
                del self.table[key]
