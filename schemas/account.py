"""An account (a company) as Tandem shows it: the buying group rolled up from its people.

Derived on read from the member journeys' snapshots by `streams.journey.account`; nothing here
is stored. Persons join an account through `identity.account_id` on their touchpoints (or, when
the playbook says so, their company email domain): see docs/accounts.md.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.journey import Stage, TouchpointSummary
from schemas.playbook import AccountHandoffRule


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuyingGroupMember(_Model):
    """One person of the account, as of the account's latest touch."""

    customer_id: str
    identities: list[str]
    stage: Stage
    persona: str | None = Field(None, description="best-fit persona (null: none fits)")
    job_title: str | None = None
    engagement: float = Field(description="engagement decayed to the account's as_of, 2 decimals")
    fit: float
    last_touch_at: AwareDatetime | None = None
    last_touch: TouchpointSummary | None = Field(
        None, description="the latest marketing or sales touch"
    )
    engaged: bool = Field(description="counts towards the account hand-off rule")


class AccountEngagement(_Model):
    """The account's engagement: the sum and the maximum of its people's (decayed)."""

    total: float
    max: float
    engaged_people: int = Field(ge=0)


class AccountHandoff(_Model):
    """The account-level hand-off: whether the playbook's rule holds, and why."""

    signal_id: str = Field(description="deterministic: derived from the account id")
    ready: bool
    reason: str
    engaged: list[str] = Field(description="customer ids of the engaged people, sorted")
    rule: AccountHandoffRule


class AccountView(_Model):
    """An account: its buying group, engagement, stage and hand-off (docs/accounts.md)."""

    account_id: str
    as_of: AwareDatetime | None = Field(
        None, description="the latest touch of any member (event time): scores are as of it"
    )
    stage: Stage = Field(description="the furthest stage any member reached (see the docs)")
    people: int = Field(ge=0)
    engagement: AccountEngagement
    buying_group: list[BuyingGroupMember] = Field(description="sorted by customer id")
    handoff: AccountHandoff | None = Field(None, description="null: the playbook has no rule")
    playbook_version: str
