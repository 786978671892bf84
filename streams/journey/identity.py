"""Identity resolution: which customer a touchpoint belongs to, and which journeys must merge.

Identifiers (``contact:…``, ``email:…``, ``anon:…``) that appear on the same touchpoint are
linked; a *component* of linked identifiers is one customer. Its customer id is derived from
its strongest identifier (contact beats email beats anon, then the lexically smallest value),
so the id depends only on the final set of identifiers, never on the order they arrived in.

`resolve` is pure: it reads an `IdentityStore` and returns an `IdentityDecision` — the writes
the caller (the identity agent, serial on one partition) applies to its store, and the moves
it sends to the journey agent ("move journey X into Y"). When a stronger identifier joins a
component its customer id changes: that rename is a move too.

Guards from the playbook: a blocklisted identifier never links (an event that carries only
blocklisted identifiers still gets a journey of its own under its strongest one), and a link
that would give a customer more than `max_identifiers_per_customer` identifiers is refused —
the event then stays with the component of its strongest identifier.

Spend and cost records (`LEDGER_TYPES`) may have no identity at all; they go to the fixed
customer id `LEDGER_CUSTOMER` ("ledger"), a journey that only carries aggregates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Protocol

from events.envelope import IDENTIFIER_KINDS
from schemas.playbook import Playbook

LEDGER_CUSTOMER = "ledger"
"""The customer id of spend and cost records that name no person."""


def customer_id_for(identifier: str) -> str:
    """The customer id of a component whose strongest identifier is `identifier`."""
    return "cus_" + hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:16]


def strength(identifier: str) -> tuple[int, str]:
    """Sort key: stronger identifiers first (contact < email < anon, then the value)."""
    kind, _, value = identifier.partition(":")
    rank = IDENTIFIER_KINDS.index(kind) if kind in IDENTIFIER_KINDS else len(IDENTIFIER_KINDS)
    return (rank, value)


def by_strength(identifiers: Iterable[str]) -> list[str]:
    """Unique identifiers, strongest first."""
    return sorted(set(identifiers), key=strength)


@lru_cache(maxsize=65_536)
def _blocked(identifier: str, blocklist: tuple[str, ...]) -> bool:
    # Cached: the fold asks about the same few identifiers for every touchpoint.
    return any(identifier == entry or fnmatchcase(identifier, entry) for entry in blocklist)


@lru_cache(maxsize=65_536)
def _linkable(identifiers: tuple[str, ...], blocklist: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(by_strength(i for i in identifiers if not _blocked(i, blocklist)))


class IdentityStore(Protocol):
    """What the resolver reads: identifier → customer id, customer id → its identifiers."""

    def get(self, identifier: str) -> str | None:
        """The customer id the identifier belongs to, if it was seen."""
        ...

    def get_members(self, customer_id: str) -> tuple[str, ...]:
        """The identifiers of a customer (empty if unknown)."""
        ...


@dataclass(frozen=True)
class IdentityGuards:
    """Linking limits, from the playbook's ``identity`` section."""

    blocklist: tuple[str, ...] = ()
    max_identifiers_per_customer: int = 50

    @classmethod
    def from_playbook(cls, playbook: Playbook) -> IdentityGuards:
        """The guards a playbook defines."""
        rules = playbook.identity
        return cls(tuple(rules.blocklist), rules.max_identifiers_per_customer)

    def is_blocked(self, identifier: str) -> bool:
        """Whether the identifier matches a blocklist entry (exact or fnmatch pattern)."""
        return _blocked(identifier, self.blocklist)

    def linkable(self, identifiers: Iterable[str]) -> list[str]:
        """The identifiers that may link, strongest first."""
        return list(_linkable(tuple(identifiers), self.blocklist))


@dataclass(frozen=True)
class Move:
    """Move the journey of `from_customer` into `to_customer` (merge, or rename)."""

    from_customer: str
    to_customer: str
    cause_event_id: str


@dataclass(frozen=True)
class IdentityDecision:
    """The outcome of resolving one touchpoint's identifiers.

    `writes`: identifier → customer id to store; `member_writes`: customer id → its full
    identifier list, or None to delete (a customer id that no longer exists); `moves`: journeys
    to move; `refused`: why a link was not made; `ignored`: blocklisted identifiers.
    """

    customer_id: str
    writes: dict[str, str] = field(default_factory=dict)
    member_writes: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def resolve(
    store: IdentityStore,
    identifiers: tuple[str, ...],
    guards: IdentityGuards,
    event_id: str,
) -> IdentityDecision:
    """Decide the customer id of a touchpoint carrying `identifiers`, and what changes."""
    if not identifiers:
        raise ValueError("a touchpoint with no identifiers goes to LEDGER_CUSTOMER, not here")
    linkable = guards.linkable(identifiers)
    ignored = [i for i in by_strength(identifiers) if guards.is_blocked(i)]
    if not linkable:
        # Blocked identifiers are shared (info@…): never stored, so they link nobody, but the
        # touchpoint still needs a home.
        return IdentityDecision(customer_id_for(ignored[0]), ignored=ignored)

    existing = _sorted_ids({store.get(i) for i in linkable} - {None})
    members: set[str] = set(linkable)
    for customer in existing:
        members.update(store.get_members(customer))

    refused: list[str] = []
    if len(members) > guards.max_identifiers_per_customer:
        strongest = linkable[0]
        refused.append(
            f"linking {', '.join(linkable)} would give {len(members)} identifiers "
            f"(max {guards.max_identifiers_per_customer}); kept with {strongest}"
        )
        home = store.get(strongest)
        if home is not None:
            return IdentityDecision(home, refused=refused, ignored=ignored)
        # The strongest identifier is new: it starts a component of its own.
        existing, members = [], {strongest}

    ordered = by_strength(members)
    target = customer_id_for(ordered[0])
    writes = {i: target for i in ordered if store.get(i) != target}
    member_writes: dict[str, tuple[str, ...] | None] = {}
    if writes or target not in existing:
        member_writes[target] = tuple(ordered)
    for customer in existing:
        if customer != target:
            member_writes[customer] = None
    moves = [Move(customer, target, event_id) for customer in existing if customer != target]
    return IdentityDecision(target, writes, member_writes, moves, refused, ignored)


def _sorted_ids(customer_ids: Iterable[str | None]) -> list[str]:
    # Sorted so that the moves of one decision come in a deterministic order.
    return sorted(c for c in customer_ids if c is not None)


class InMemoryIdentityStore:
    """A dict-backed identity store for tests and `tandem replay`."""

    def __init__(self) -> None:
        self.customers: dict[str, str] = {}
        self.members: dict[str, tuple[str, ...]] = {}

    def get(self, identifier: str) -> str | None:
        """The customer id the identifier belongs to, if it was seen."""
        return self.customers.get(identifier)

    def get_members(self, customer_id: str) -> tuple[str, ...]:
        """The identifiers of a customer (empty if unknown)."""
        return self.members.get(customer_id, ())

    def apply(self, decision: IdentityDecision) -> None:
        """Store a decision's writes (what the identity agent does with its table)."""
        self.customers.update(decision.writes)
        for customer_id, members in decision.member_writes.items():
            if members is None:
                self.members.pop(customer_id, None)
            else:
                self.members[customer_id] = tuple(members)

    def components(self) -> dict[str, tuple[str, ...]]:
        """Every customer id with its identifiers."""
        return dict(self.members)
