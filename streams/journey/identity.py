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

Quarantine (merge storms): an email or anonymous id seen on touchpoints with more than
`max_links_per_identifier` other strong identities (contact ids, emails) — a shared mailbox, a
kiosk cookie — is *quarantined*: from that touchpoint on it links nothing (it is left out like
a blocklisted one), and the decision names it in `quarantined` so the sequencer raises an
alert. What it linked before stays linked; `tandem unmerge` splits it. The identities each one
was seen with are kept (`link_writes`, at most limit + 1 of them), so the store stays bounded.
The identity sequencer is serial, so the replay of the same input quarantines at the same
touchpoint. Contact ids are the CRM's own records: they count, but are never quarantined.

Unmerge: `unmerge_identity` splits identifiers off a customer into a customer of their own and
records *separations* — identifiers that must never link again. `resolve` refuses a link that
would join separated identifiers (the refusal is in `refused`, like the cap's), and the event
goes to the component of its strongest identifier.

Spend and cost records (`LEDGER_TYPES`) may have no identity at all; they go to the fixed
customer id `LEDGER_CUSTOMER` ("ledger"), a journey that only carries aggregates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Protocol

from events.envelope import IDENTIFIER_KINDS
from schemas.playbook import Playbook
from schemas.signals import IdentityQuarantinedSignal

LEDGER_CUSTOMER = "ledger"
"""The customer id of spend and cost records that name no person."""


def customer_id_for(identifier: str) -> str:
    """The customer id of a component whose strongest identifier is `identifier`."""
    return "cus_" + hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=65_536)
def signal_id(customer_id: str, rule: str, key: str) -> str:
    """The deterministic id of a rule's signal for a customer: the same inputs, the same id."""
    digest = hashlib.sha256(f"{customer_id}|{rule}|{key}".encode()).hexdigest()
    return "sig_" + digest[:20]


@lru_cache(maxsize=65_536)
def strength(identifier: str) -> tuple[int, str]:
    """Sort key: stronger identifiers first (contact < email < anon, then the value)."""
    # Cached (like `_blocked`): every sort of a journey's identifiers asks again.
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

    def get_separations(self, identifier: str) -> frozenset[str]:
        """The identifiers this one must never link with (written by an unmerge)."""
        ...

    def get_links(self, identifier: str) -> tuple[str, ...]:
        """The strong identities this one was seen with (at most the quarantine limit + 1)."""
        ...


STRONG_KINDS = ("contact", "email")
"""Identifier kinds that name a person (anonymous ids name a device)."""

QUARANTINABLE_KINDS = ("email", "anon")
"""Identifier kinds that can be shared by strangers (contact ids are the CRM's records)."""


def _kind(identifier: str) -> str:
    return identifier.partition(":")[0]


@dataclass(frozen=True)
class IdentityGuards:
    """Linking limits, from the playbook's ``identity`` section."""

    blocklist: tuple[str, ...] = ()
    max_identifiers_per_customer: int = 50
    max_links_per_identifier: int = 3
    playbook_version: str = ""

    @classmethod
    def from_playbook(cls, playbook: Playbook) -> IdentityGuards:
        """The guards a playbook defines."""
        rules = playbook.identity
        return cls(
            tuple(rules.blocklist),
            rules.max_identifiers_per_customer,
            rules.max_links_per_identifier,
            playbook.version,
        )

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
    to move; `refused`: why a link was not made; `ignored`: blocklisted identifiers;
    `separation_writes`: identifier → every identifier it must never link with (an unmerge);
    `link_writes`: identifier → the strong identities it has been seen with; `quarantined`:
    identifiers quarantined by this touchpoint (each raises one alert).
    """

    customer_id: str
    writes: dict[str, str] = field(default_factory=dict)
    member_writes: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    separation_writes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    link_writes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Links:
    """What a touchpoint teaches about who its identifiers were seen with."""

    writes: dict[str, tuple[str, ...]]
    quarantined: set[str]
    newly: list[str]


def _links(store: IdentityStore, candidates: list[str], guards: IdentityGuards) -> _Links:
    """Count each shareable identifier's strong companions; quarantine the promiscuous ones."""
    limit = guards.max_links_per_identifier
    strong = [i for i in candidates if _kind(i) in STRONG_KINDS]
    writes: dict[str, tuple[str, ...]] = {}
    quarantined: set[str] = set()
    newly: list[str] = []
    for identifier in candidates:
        if _kind(identifier) not in QUARANTINABLE_KINDS:
            continue
        seen = store.get_links(identifier)
        if len(seen) > limit:
            quarantined.add(identifier)
            continue
        new = [i for i in strong if i != identifier and i not in seen]
        if not new:
            continue
        # Bounded: once past the limit nothing more is recorded (or needed).
        updated = tuple(by_strength({*seen, *new})[: limit + 1])
        writes[identifier] = updated
        if len(updated) > limit:
            quarantined.add(identifier)
            newly.append(identifier)
    return _Links(writes, quarantined, newly)


def resolve(
    store: IdentityStore,
    identifiers: tuple[str, ...],
    guards: IdentityGuards,
    event_id: str,
) -> IdentityDecision:
    """Decide the customer id of a touchpoint carrying `identifiers`, and what changes."""
    if not identifiers:
        raise ValueError("a touchpoint with no identifiers goes to LEDGER_CUSTOMER, not here")
    candidates = guards.linkable(identifiers)
    links = _links(store, candidates, guards)
    linkable = [i for i in candidates if i not in links.quarantined]
    ignored = [i for i in by_strength(identifiers) if guards.is_blocked(i)]
    if linkable:
        decision = _link(store, linkable, ignored, guards, event_id)
    else:
        # Blocked identifiers are shared (info@…): never stored, so they link nobody; a
        # quarantined one links nobody any more. The touchpoint still needs a home.
        home = by_strength(links.quarantined)[0] if links.quarantined else ignored[0]
        decision = IdentityDecision(customer_id_for(home), ignored=ignored)
    if links.writes:
        decision.link_writes.update(links.writes)
        decision.quarantined.extend(links.newly)
    return decision


def _link(
    store: IdentityStore,
    linkable: list[str],
    ignored: list[str],
    guards: IdentityGuards,
    event_id: str,
) -> IdentityDecision:
    """Link the touchpoint's linkable identifiers (within the guards)."""
    existing = _sorted_ids({store.get(i) for i in linkable} - {None})
    members: set[str] = set(linkable)
    for customer in existing:
        members.update(store.get_members(customer))

    refused: list[str] = []
    separated = _separated(store, existing)
    if separated is not None:
        refused.append(
            f"linking {', '.join(linkable)} would join {separated[0]} and {separated[1]}, "
            f"separated by an unmerge; kept with {linkable[0]}"
        )
    elif len(members) > guards.max_identifiers_per_customer:
        refused.append(
            f"linking {', '.join(linkable)} would give {len(members)} identifiers "
            f"(max {guards.max_identifiers_per_customer}); kept with {linkable[0]}"
        )
    if refused:
        strongest = linkable[0]
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


def quarantine_alert(
    store: IdentityStore,
    identifier: str,
    decision: IdentityDecision,
    guards: IdentityGuards,
    event_id: str,
    occurred_at: datetime,
) -> IdentityQuarantinedSignal:
    """The alert for an identifier `decision` quarantined (read the store after applying it)."""
    customer = store.get(identifier) or customer_id_for(identifier)
    linked = list(decision.link_writes.get(identifier, ()))
    limit = guards.max_links_per_identifier
    return IdentityQuarantinedSignal(
        signal_id=_signal_id(identifier),
        customer_id=customer,
        identities=by_strength(store.get_members(customer)) or [identifier],
        occurred_at=occurred_at,
        playbook_version=guards.playbook_version,
        identifier=identifier,
        linked=linked,
        limit=limit,
        trigger_event_id=event_id,
        reason=f"{identifier} was seen with more than {limit} strong identities "
        f"({', '.join(linked)}): it links nothing further",
    )


def _signal_id(identifier: str) -> str:
    # One alert per identifier, whichever customer it belongs to.
    digest = hashlib.sha256(f"identity|identity.quarantined|{identifier}".encode()).hexdigest()
    return "sig_" + digest[:20]


def _separated(store: IdentityStore, customers: list[str]) -> tuple[str, str] | None:
    """A pair of separated identifiers the link of these components would join, if any.

    Separated identifiers always live in different components (that is what the refusal keeps
    true), so only a link joining two or more existing components can violate a separation.
    """
    if len(customers) < 2:
        return None
    owner = {i: c for c in customers for i in store.get_members(c)}
    for identifier in by_strength(owner):
        for other in by_strength(store.get_separations(identifier)):
            if other in owner and owner[other] != owner[identifier]:
                return identifier, other
    return None


class UnmergeError(ValueError):
    """An unmerge request that cannot be carried out (unknown customer or identifiers)."""


@dataclass(frozen=True)
class UnmergeDecision:
    """What `unmerge_identity` decided: two customers where there was one.

    `remaining` / `split` are the identifiers of each side (strongest first), named
    `remaining_customer_id` / `split_customer_id` after their strongest identifier. One of the
    two ids is `customer_id` (the side holding the former strongest identifier keeps it).
    `identity` holds the store writes (identifiers, members, separations both ways).
    """

    customer_id: str
    remaining_customer_id: str
    split_customer_id: str
    remaining: tuple[str, ...]
    split: tuple[str, ...]
    identity: IdentityDecision


def unmerge_identity(
    store: IdentityStore, customer_id: str, identifiers_to_split: Iterable[str]
) -> UnmergeDecision:
    """Split `identifiers_to_split` off `customer_id` into a customer of their own, for good.

    Every split identifier is separated from every remaining one (and vice versa), so no later
    touchpoint links them again. Raises `UnmergeError` when the customer is unknown, an
    identifier is not one of its members, or the split would leave either side empty.
    """
    members = by_strength(store.get_members(customer_id))
    if not members:
        raise UnmergeError(f"unknown customer {customer_id!r} (no identifiers)")
    split = by_strength(identifiers_to_split)
    if not split:
        raise UnmergeError("nothing to split: name at least one identifier")
    foreign = [i for i in split if i not in members]
    if foreign:
        raise UnmergeError(f"{', '.join(foreign)} not identifier(s) of {customer_id}")
    remaining = [i for i in members if i not in set(split)]
    if not remaining:
        raise UnmergeError(f"splitting every identifier of {customer_id} would leave nothing")
    remaining_id, split_id = customer_id_for(remaining[0]), customer_id_for(split[0])
    writes = {i: remaining_id for i in remaining if store.get(i) != remaining_id}
    writes.update({i: split_id for i in split if store.get(i) != split_id})
    member_writes: dict[str, tuple[str, ...] | None] = {
        remaining_id: tuple(remaining),
        split_id: tuple(split),
    }
    if customer_id not in (remaining_id, split_id):
        member_writes[customer_id] = None  # an inconsistent name: both sides are renamed
    separation_writes = {
        i: tuple(by_strength({*store.get_separations(i), *other}))
        for side, other in ((remaining, split), (split, remaining))
        for i in side
    }
    decision = IdentityDecision(
        customer_id, writes, member_writes, separation_writes=separation_writes
    )
    return UnmergeDecision(
        customer_id, remaining_id, split_id, tuple(remaining), tuple(split), decision
    )


def _sorted_ids(customer_ids: Iterable[str | None]) -> list[str]:
    # Sorted so that the moves of one decision come in a deterministic order.
    return sorted(c for c in customer_ids if c is not None)


class InMemoryIdentityStore:
    """A dict-backed identity store for tests and `tandem replay`."""

    def __init__(self) -> None:
        self.customers: dict[str, str] = {}
        self.members: dict[str, tuple[str, ...]] = {}
        self.separations: dict[str, frozenset[str]] = {}
        self.links: dict[str, tuple[str, ...]] = {}

    def get(self, identifier: str) -> str | None:
        """The customer id the identifier belongs to, if it was seen."""
        return self.customers.get(identifier)

    def get_members(self, customer_id: str) -> tuple[str, ...]:
        """The identifiers of a customer (empty if unknown)."""
        return self.members.get(customer_id, ())

    def get_separations(self, identifier: str) -> frozenset[str]:
        """The identifiers this one must never link with (written by an unmerge)."""
        return self.separations.get(identifier, frozenset())

    def get_links(self, identifier: str) -> tuple[str, ...]:
        """The strong identities this one was seen with (at most the quarantine limit + 1)."""
        return self.links.get(identifier, ())

    def apply(self, decision: IdentityDecision) -> None:
        """Store a decision's writes (what the identity agent does with its table)."""
        self.customers.update(decision.writes)
        for customer_id, members in decision.member_writes.items():
            if members is None:
                self.members.pop(customer_id, None)
            else:
                self.members[customer_id] = tuple(members)
        for identifier, separated in decision.separation_writes.items():
            self.separations[identifier] = frozenset(separated)
        self.links.update(decision.link_writes)

    def components(self) -> dict[str, tuple[str, ...]]:
        """Every customer id with its identifiers."""
        return dict(self.members)
