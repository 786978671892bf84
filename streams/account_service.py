"""Accounts at the edge: an account's view, computed on read from its members' snapshots.

The worker keeps only the index (`JourneyProjection`: account → member customer ids, written
with each snapshot); the view itself is the pure `streams.journey.account.account_view` over
the members' stored snapshots — cheap for buying groups of tens of people, and always as of
what the read model holds. Used by ``tandem account`` and ``GET /v1/accounts/{id}``.
"""

from __future__ import annotations

from schemas.account import AccountView
from schemas.journey import JourneySnapshot
from schemas.playbook import Playbook
from streams import journey as core
from streams.projection import JourneyProjection


async def find_account(projection: JourneyProjection, reference: str) -> str | None:
    """The account id a reference names: an account id with members, else the account of the
    person a customer id or identifier resolves to."""
    if await projection.account_members(reference):
        return reference
    customer_id = await projection.resolve(reference)
    if customer_id is None:
        return None
    snapshot = await projection.snapshot(customer_id)
    account = None if snapshot is None else snapshot.get("account_id")
    return str(account) if account else None


async def read_account(
    projection: JourneyProjection, account_id: str, playbook: Playbook
) -> AccountView | None:
    """The account's view from its members' snapshots; None when it has no live member."""
    stored = await projection.account_snapshots(account_id)
    if not stored:
        return None
    members = [JourneySnapshot.model_validate(s) for s in stored]
    return core.account_view(account_id, members, playbook)
