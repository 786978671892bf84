"""Accounts at the edge: an account's view, computed on read from its members' snapshots.

The worker keeps only the index (`JourneyProjection`: account → member customer ids, written
with each snapshot); the view itself is the pure `streams.journey.account.account_view` over
the members' stored snapshots — cheap for buying groups of tens of people, and always as of
what the read model holds. Used by ``tandem account``, ``GET /v1/accounts/{id}`` and by the
worker after each batch's Redis write, to send an account hand-off the first time its rule
holds.
"""

from __future__ import annotations

from schemas.account import AccountView
from schemas.journey import JourneySnapshot
from schemas.playbook import Playbook
from schemas.signals import AccountHandoffSignal
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


async def due_account_handoffs(
    projection: JourneyProjection, account_ids: list[str], playbook: Playbook
) -> list[AccountHandoffSignal]:
    """The account hand-offs to send now: accounts whose rule holds in the read model and whose
    hand-off was not sent yet (the worker sends them, then marks them sent)."""
    if playbook.accounts.handoff is None:
        return []
    sent = await projection.account_handoffs_sent(account_ids)
    due: list[AccountHandoffSignal] = []
    for account_id in account_ids:
        if account_id in sent:
            continue
        view = await read_account(projection, account_id, playbook)
        signal = None if view is None else core.account_handoff_signal(view)
        if signal is not None:
            due.append(signal)
    return due


async def read_account(
    projection: JourneyProjection, account_id: str, playbook: Playbook
) -> AccountView | None:
    """The account's view from its members' snapshots; None when it has no live member."""
    stored = await projection.account_snapshots(account_id)
    if not stored:
        return None
    members = [JourneySnapshot.model_validate(s) for s in stored]
    return core.account_view(account_id, members, playbook)
