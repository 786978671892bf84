"""``GET /v1/accounts`` and ``GET /v1/accounts/{reference}``: accounts and their buying groups.

An account's view (`schemas.account.AccountView`, the same document as ``tandem account ID
--json``) is computed on read from its members' journey snapshots under the configured
playbook (docs/accounts.md). It lists people with their identifiers: like the journeys, every
route needs an API key with the ``read`` scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from schemas.account import AccountView
from schemas.journey import Stage
from schemas.playbook import Playbook
from streams.account_service import find_account, read_account
from streams.api.auth import AUTH_RESPONSES, require_scope
from streams.api.journeys import _read_model
from streams.playbooks import load_configured_playbook
from streams.settings import Settings

router = APIRouter(
    prefix="/v1/accounts",
    tags=["journeys"],
    dependencies=[Depends(require_scope("read"))],
    responses=AUTH_RESPONSES,
)


def _playbook(request: Request) -> Playbook:
    """The configured playbook, loaded once per app (the worker's rules, so the same view)."""
    found: Playbook | None = getattr(request.app.state, "account_playbook", None)
    if found is None:
        settings: Settings = request.app.state.settings
        found = load_configured_playbook(settings)
        request.app.state.account_playbook = found
    return found


class AccountRow(BaseModel):
    """One account in a few fields."""

    account_id: str
    people: int
    stage: Stage
    engagement: float = Field(description="sum of the people's engagement (decayed)")
    engaged_people: int
    handoff_ready: bool
    as_of: str | None = None


@router.get("", response_model=list[AccountRow], summary="Accounts, largest buying group first")
async def list_accounts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many")] = 50,
) -> list[AccountRow]:
    """The accounts with live members, largest buying group first (then by id)."""
    playbook = _playbook(request)
    rows: list[AccountRow] = []
    async with _read_model(request) as projection:
        ids = sorted(await projection.account_ids())
        pipe = projection.redis.pipeline(transaction=False)
        for account_id in ids:
            pipe.scard(f"{projection.prefix}account:{account_id}")
        sizes = await pipe.execute()
        ranked = sorted(zip(ids, sizes, strict=True), key=lambda p: (-int(p[1]), p[0]))
        for account_id, _ in ranked[:limit]:
            view = await read_account(projection, account_id, playbook)
            if view is not None:
                rows.append(_row(view))
    return rows


def _row(view: AccountView) -> AccountRow:
    return AccountRow(
        account_id=view.account_id,
        people=view.people,
        stage=view.stage,
        engagement=view.engagement.total,
        engaged_people=view.engagement.engaged_people,
        handoff_ready=view.handoff is not None and view.handoff.ready,
        as_of=None if view.as_of is None else view.as_of.isoformat(),
    )


@router.get(
    "/{reference}",
    response_model=AccountView,
    summary="One account: its buying group, engagement, stage and hand-off",
    responses={404: {"description": "no account for this reference"},
               503: {"description": "Redis unavailable"}},
)  # fmt: skip
async def get_account(request: Request, reference: str) -> AccountView:
    """The account `reference` names: an account id (``acct-…``, ``domain:acme.example``), or
    a person (customer id or identifier), whose account is shown."""
    playbook = _playbook(request)
    async with _read_model(request) as projection:
        account_id = await find_account(projection, reference)
        view = None if account_id is None else await read_account(projection, account_id, playbook)
    if view is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no account for {reference!r}: no journey names it in identity.account_id",
        )
    return view


__all__ = ["AccountRow", "router"]
