"""Accounts: which account a journey belongs to, and an account's view from its people.

Membership is a function of one journey: the `identity.account_id` of its latest touchpoint
that names one (event time, then event id), else — when the playbook's
`accounts.domain_fallback` is on — ``domain:<company>`` from its strongest email whose domain
is not a free-mail provider and which is not blocklisted. The account view is a function of
the members' snapshots and the playbook only: members are sorted before anything is summed, so
the order they are read in never changes it. Time is the members' own event time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from schemas.account import AccountEngagement, AccountHandoff, AccountView, BuyingGroupMember
from schemas.journey import (
    JourneyRecord,
    JourneySnapshot,
    Stage,
    TouchpointSummary,
)
from schemas.playbook import AccountHandoffRule, AccountRules, Playbook
from schemas.signals import AccountHandoffSignal
from streams.journey import memo
from streams.journey.identity import signal_id

DOMAIN_PREFIX = "domain:"
ACCOUNT_HANDOFF_RULE = "account_handoff"

_FUNNEL = (Stage.VISITOR, Stage.SUBSCRIBER, Stage.LEAD, Stage.MQL, Stage.SAL, Stage.SQL,
           Stage.OPPORTUNITY, Stage.CUSTOMER)  # fmt: skip
# Side exits count only when no member is in the funnel: churned says most about the account.
_SIDE_EXITS = (Stage.DISQUALIFIED, Stage.RECYCLED, Stage.CHURNED)


def _prefix_named(
    record: JourneyRecord, entry: memo.Derived
) -> tuple[tuple[datetime, str], str] | None:
    # Kept with the journey's memo entry and handed on while the prefix object stays (it
    # changes once per compaction chunk): walking its summaries on every change made the
    # snapshot and the KPI facts cost O(journey length). Kept per journey, not per prefix
    # object, so a superseded prefix is never held alive.
    if not entry.prefix_named_known and record.compacted is not None:
        entry.prefix_named = memo.latest_named(record.compacted.touchpoints)
        entry.prefix_named_known = True
    return entry.prefix_named


def _latest_named(
    record: JourneyRecord, playbook: Playbook, entry: memo.Derived | None = None
) -> str | None:
    # Retained touchpoints are sorted by order key; compacted summaries too, and all of them
    # come before (or tie with) the retained ones only mostly: compare keys, not positions.
    # The fold of the retained touchpoints (kept with the journey) knows their latest one.
    best: tuple[tuple[datetime, str], str] | None = None
    entry = memo.lookup(record, playbook) if entry is None else entry
    tp = entry.state.named
    if tp is not None and tp.identity is not None and tp.identity.account_id is not None:
        best = (tp.order_key, tp.identity.account_id)
    if record.compacted is not None:
        named = _prefix_named(record, entry)
        if named is not None and (best is None or named[0] > best[0]):
            best = named
    return None if best is None else best[1]


def company_domain(
    identifiers: Iterable[str], rules: AccountRules, blocklist: Iterable[str]
) -> str | None:
    """The company domain of the strongest usable email, or None (free mail, blocklisted)."""
    blocked = tuple(blocklist)
    for identifier in identifiers:
        kind, _, email = identifier.partition(":")
        if kind != "email" or "@" not in email:
            continue
        if any(identifier == b or fnmatchcase(identifier, b) for b in blocked):
            continue
        domain = email.rsplit("@", 1)[1].strip().lower()
        if domain and not any(fnmatchcase(domain, free) for free in rules.free_email_domains):
            return domain
    return None


def account_of(
    record: JourneyRecord, playbook: Playbook, entry: memo.Derived | None = None
) -> str | None:
    """The account a journey belongs to (see the module doc), or None (`entry`: the record's
    `memo.lookup`, if the caller has it)."""
    named = _latest_named(record, playbook, entry)
    if named is not None or not playbook.accounts.domain_fallback:
        return named
    domain = company_domain(record.identifiers, playbook.accounts, playbook.identity.blocklist)
    return None if domain is None else DOMAIN_PREFIX + domain


def _decayed(member: JourneySnapshot, as_of: datetime | None) -> float:
    engagement = member.scores.engagement
    if as_of is None or engagement.as_of is None or engagement.as_of >= as_of:
        return engagement.score
    age_days = (as_of - engagement.as_of) / timedelta(days=1)
    factor: float = 0.5 ** (age_days / engagement.half_life_days)
    return round(engagement.score * factor, 2)


def _last_touch(member: JourneySnapshot) -> TouchpointSummary | None:
    touches = [t for t in (member.last_marketing, member.last_sales) if t is not None]
    return max(touches, key=lambda t: (t.occurred_at, t.event_id), default=None)


def _member(
    member: JourneySnapshot, as_of: datetime | None, rule: AccountHandoffRule | None
) -> BuyingGroupMember:
    score = _decayed(member, as_of)
    recent = (
        as_of is not None
        and member.last_touch_at is not None
        and as_of - member.last_touch_at <= timedelta(days=rule.within_days)
        if rule is not None
        else False
    )
    return BuyingGroupMember(
        customer_id=member.customer_id,
        identities=list(member.identities),
        stage=member.stage,
        persona=member.scores.fit.persona,
        job_title=member.firmographics.job_title,
        engagement=score,
        fit=member.scores.fit.score,
        last_touch_at=member.last_touch_at,
        last_touch=_last_touch(member),
        engaged=rule is not None and recent and score >= rule.min_score,
    )


def account_stage(stages: Iterable[Stage]) -> Stage:
    """The furthest funnel stage any member reached; with none in the funnel, the most telling
    side exit (churned, then recycled, then disqualified); visitor for no members."""
    present = set(stages)
    in_funnel = [s for s in _FUNNEL if s in present]
    if in_funnel:
        return in_funnel[-1]
    exits = [s for s in _SIDE_EXITS if s in present]
    return exits[-1] if exits else Stage.VISITOR


def _handoff(
    account_id: str, stage: Stage, group: list[BuyingGroupMember], rule: AccountHandoffRule
) -> AccountHandoff:
    engaged = [m.customer_id for m in group if m.engaged]
    enough = len(engaged) >= rule.min_engaged_people
    customer = stage == Stage.CUSTOMER
    if customer:
        reason = "the account is already a customer (upsell and renewal nurture apply)"
    else:
        reason = (
            f"{len(engaged)} of {rule.min_engaged_people} people needed are engaged "
            f"(score ≥ {rule.min_score:g}, last touch within {rule.within_days:g} days)"
        )
    return AccountHandoff(
        signal_id=account_signal_id(account_id),
        ready=enough and not customer,
        reason=reason,
        engaged=engaged,
        rule=rule,
    )


def account_signal_id(account_id: str) -> str:
    """The account hand-off's id: one per account, the same however often it is computed."""
    return signal_id(account_customer_id(account_id), ACCOUNT_HANDOFF_RULE, "1")


def account_view(
    account_id: str, members: Iterable[JourneySnapshot], playbook: Playbook
) -> AccountView:
    """The account from its members' snapshots; independent of their order (module doc)."""
    unique = {m.customer_id: m for m in members}
    ordered = [unique[cid] for cid in sorted(unique)]
    touches = [m.last_touch_at for m in ordered if m.last_touch_at is not None]
    as_of = max(touches, default=None)
    rule = playbook.accounts.handoff
    group = [_member(m, as_of, rule) for m in ordered]
    stage = account_stage(m.stage for m in group)
    scores = [m.engagement for m in group]
    return AccountView(
        account_id=account_id,
        as_of=as_of,
        stage=stage,
        people=len(group),
        engagement=AccountEngagement(
            total=round(sum(scores), 2),
            max=max(scores, default=0.0),
            engaged_people=sum(m.engaged for m in group),
        ),
        buying_group=group,
        handoff=None if rule is None else _handoff(account_id, stage, group, rule),
        playbook_version=playbook.version,
    )


def account_customer_id(account_id: str) -> str:
    """The `customer_id` an account's signals carry (they are about no single person)."""
    return f"account:{account_id}"


def account_handoff_signal(view: AccountView) -> AccountHandoffSignal | None:
    """The account hand-off when the view says the rule holds (else None), as of the
    account's latest touch."""
    if view.handoff is None or not view.handoff.ready or view.as_of is None:
        return None
    return AccountHandoffSignal(
        signal_id=view.handoff.signal_id,
        customer_id=account_customer_id(view.account_id),
        identities=[],
        occurred_at=view.as_of,
        playbook_version=view.playbook_version,
        account_id=view.account_id,
        stage=view.stage,
        reason=view.handoff.reason,
        engaged_people=view.engagement.engaged_people,
        engagement_total=view.engagement.total,
        buying_group=list(view.buying_group),
    )
