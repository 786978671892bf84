"""Forgetting a person: which identity entries go, which suppression hashes stay.

`forget_identity` is pure, like `resolve`: it reads an `IdentityStore` and returns an
`Erasure` — the identity entries to remove (every identifier of the person, their member list,
their separations), the customer ids whose journeys (or moved-journey pointers) must be erased,
and the *suppression digests* to keep for good. A later touchpoint carrying any identifier
whose digest is suppressed is dropped before it is resolved (see docs/privacy.md), so replaying
the topics, redriving dead letters or republishing old files never brings the person back.

A digest is ``sha256("tandem:suppress:" + identifier)`` in hex: the identifier itself is not
kept, only a way to recognise it when it comes again. The prefix keeps the digest apart from
the customer id, which is also derived from the identifier's SHA-256 (`customer_id_for`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from events.envelope import IDENTIFIER_KINDS
from streams.journey.identity import IdentityStore, by_strength, customer_id_for

SUPPRESSION_PREFIX = "tandem:suppress:"


@lru_cache(maxsize=65_536)
def suppression_digest(identifier: str) -> str:
    """The digest kept for a forgotten identifier (``kind:value``, normalised)."""
    return hashlib.sha256((SUPPRESSION_PREFIX + identifier).encode("utf-8")).hexdigest()


def normalise_identifier(identifier: str) -> str:
    """``kind:value`` as touchpoints carry it (trimmed, NFC; emails lower-cased)."""
    kind, _, value = identifier.partition(":")
    value = value.strip().lower() if kind == "email" else value.strip()
    return f"{kind}:{unicodedata.normalize('NFC', value)}"


def reference_identifiers(reference: str) -> tuple[str, ...]:
    """The identifiers a reference may name, normalised: ``kind:value`` names one; a bare
    value with an ``@`` is an email; any other bare value may be a contact or anonymous id."""
    text = reference.strip()
    kind, sep, _ = text.partition(":")
    if sep and kind in IDENTIFIER_KINDS:
        return (normalise_identifier(text),)
    if "@" in text:
        return (normalise_identifier(f"email:{text}"),)
    return tuple(normalise_identifier(f"{k}:{text}") for k in ("contact", "anon"))


@dataclass(frozen=True)
class Erasure:
    """What forgetting a person changes in the identity store, and where their journeys were.

    `customer_id`: the person's customer id (None: the identifiers were never seen);
    `identifiers`: every identifier of the person (their pointers are removed);
    `customer_ids`: every customer id a journey of theirs may live at or have left a pointer at
    (the current one and one per identifier), strongest first;
    `separation_writes`: identifiers of other people whose separations named the person, with
    what remains (None: nothing, remove the entry); `suppressions`: digests to keep forever.
    """

    customer_id: str | None
    identifiers: tuple[str, ...]
    customer_ids: tuple[str, ...]
    separation_writes: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    suppressions: tuple[str, ...] = ()


def forget_identity(
    store: IdentityStore, candidates: Iterable[str], customer_id: str | None = None
) -> Erasure:
    """Decide what forgetting the person named by `customer_id` or any of `candidates` erases.

    A known customer id, else the first candidate the store knows, names the person: all
    identifiers of their customer go. If nothing is known, the candidates themselves are
    suppressed (the person is forgotten before Tandem ever saw them); nothing else changes.
    """
    named = by_strength(normalise_identifier(c) for c in candidates)
    if customer_id is None or not store.get_members(customer_id):
        customer_id = next((found for c in named if (found := store.get(c)) is not None), None)
    members = by_strength(store.get_members(customer_id)) if customer_id is not None else []
    identifiers = tuple(members) if members else tuple(named)
    gone = set(identifiers)
    separation_writes: dict[str, tuple[str, ...] | None] = {}
    for identifier in identifiers:
        for other in store.get_separations(identifier):
            if other in gone or other in separation_writes:
                continue
            kept = tuple(by_strength(store.get_separations(other) - gone))
            separation_writes[other] = kept or None
    for identifier in identifiers:
        if store.get_separations(identifier):
            separation_writes[identifier] = None
    ids = [customer_id] if customer_id is not None else []
    ids += [customer_id_for(i) for i in identifiers if customer_id_for(i) not in ids]
    suppressions = tuple(sorted({suppression_digest(i) for i in (*identifiers, *named)}))
    return Erasure(customer_id, identifiers, tuple(ids), separation_writes, suppressions)
