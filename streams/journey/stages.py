"""Lifecycle stage rules, as a table: which touchpoint moves a journey from which stages to which.

The fold walks the touchpoints in event-time order and, for each, takes the first rule of its
type whose ``from`` set contains the current stage and whose condition holds. After that the
MQL rule is checked (engagement and fit as of that touchpoint, see `streams.journey.fold`).

    visitor      first touch, anonymous
    subscriber   first known touch (email or CRM contact) that is not a lead-maker, e.g. an
                 email open or a newsletter form without firmographics
    lead         form submitted / content downloaded by a known person; sales.prospect_added
                 (outbound enters at lead)
    mql          engagement ≥ mql_rule.min_engagement and fit ≥ mql_rule.min_fit (from lead,
                 or from recycled in a new cycle)
    sal          sales.handoff_accepted; for outbound prospects sales.meeting_booked (and a
                 positive sales.reply_received if the playbook says so)
    sql          sales.lead_qualified unless a BANT answer the playbook requires is "no"
                 (an unknown answer does not block: sales qualified the lead)
    opportunity  sales.demo_held or sales.proposal_sent
    customer     sales.deal_won or sales.renewed (a renewal after churn re-enters customer)
    churned      sales.churned (customers only)
    disqualified sales.lead_disqualified (before the sale)
    recycled     sales.handoff_rejected (from mql/sal), sales.deal_lost (mql…opportunity); a
                 recycle starts a new qualification cycle

Stages move back as well as forward; a transition never fires to the stage the journey is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from events.envelope import Envelope
from events.vocabulary import (
    FormSubmitted,
    LeadQualified,
    ReplyReceived,
)
from schemas.journey import Stage
from schemas.playbook import Playbook

S = Stage
AnyStage = Stage | None

BEFORE_LEAD: frozenset[AnyStage] = frozenset({None, S.VISITOR, S.SUBSCRIBER})
BEFORE_SAL: frozenset[AnyStage] = BEFORE_LEAD | {S.LEAD, S.MQL, S.RECYCLED}
BEFORE_SQL: frozenset[AnyStage] = BEFORE_SAL | {S.SAL, S.DISQUALIFIED}
BEFORE_OPPORTUNITY: frozenset[AnyStage] = BEFORE_SQL | {S.SQL}
BEFORE_SALE: frozenset[AnyStage] = BEFORE_OPPORTUNITY - {S.DISQUALIFIED} | {S.OPPORTUNITY}
NOT_CUSTOMER: frozenset[AnyStage] = frozenset({None, *Stage}) - {S.CUSTOMER}
MQL_FROM: frozenset[AnyStage] = frozenset({S.LEAD, S.RECYCLED})


@dataclass(frozen=True)
class Facts:
    """What a rule may look at besides the touchpoint: the journey as of this touchpoint."""

    known: bool
    outbound: bool


Condition = Callable[[Envelope, Facts, Playbook], bool]
Reason = Callable[[Envelope], str]


def _always(_tp: Envelope, _facts: Facts, _playbook: Playbook) -> bool:
    return True


def _known(_tp: Envelope, facts: Facts, _playbook: Playbook) -> bool:
    return facts.known


def _has_firmographics(tp: FormSubmitted) -> bool:
    p = tp.properties
    return any(v is not None for v in (p.job_title, p.company, p.company_size, p.industry))


def _lead_form(tp: Envelope, facts: Facts, playbook: Playbook) -> bool:
    assert isinstance(tp, FormSubmitted)
    subscriber_form = tp.properties.form_id in playbook.stages.subscriber_forms
    return facts.known and (not subscriber_form or _has_firmographics(tp))


def _subscriber_form(tp: Envelope, facts: Facts, playbook: Playbook) -> bool:
    return facts.known and not _lead_form(tp, facts, playbook)


def _outbound_meeting(_tp: Envelope, facts: Facts, playbook: Playbook) -> bool:
    return facts.outbound and playbook.stages.outbound_meeting_enters_sal


def _outbound_positive_reply(tp: Envelope, facts: Facts, playbook: Playbook) -> bool:
    assert isinstance(tp, ReplyReceived)
    return (
        facts.outbound
        and playbook.stages.outbound_positive_reply_enters_sal
        and tp.properties.sentiment == "positive"
    )


def _bant(tp: Envelope, _facts: Facts, playbook: Playbook) -> bool:
    # Sales qualified the lead: only a required answer known to be "no" overrules that; an
    # unknown one (a CRM that does not ask BANT) leaves the qualification standing.
    assert isinstance(tp, LeadQualified)
    bant = tp.properties.bant
    return all(getattr(bant, answer) != "no" for answer in playbook.stages.sql_requires)


def _qualified_reason(tp: Envelope) -> str:
    assert isinstance(tp, LeadQualified)
    bant = tp.properties.bant
    unknown = [
        q for q in ("budget", "authority", "need", "timeline") if getattr(bant, q) == "unknown"
    ]
    if not unknown:
        return "qualified (BANT)"
    return f"qualified by sales (BANT unknown: {', '.join(unknown)})"


def _fixed(text: str) -> Reason:
    return lambda _tp: text


def _because(prefix: str) -> Reason:
    # The rejecting / losing / disqualifying event says why; keep it in the history.
    def reason(tp: Envelope) -> str:
        properties = getattr(tp, "properties", None)
        return f"{prefix}: {getattr(properties, 'reason', None) or 'no reason given'}"

    return reason


def _form_reason(tp: Envelope) -> str:
    assert isinstance(tp, FormSubmitted)
    return f"form {tp.properties.form_id} submitted"


@dataclass(frozen=True)
class StageRule:
    """`event_type` moves a journey from any of `from_stages` to `to` when `condition` holds."""

    event_type: str
    to: Stage
    from_stages: frozenset[AnyStage]
    reason: Reason
    condition: Condition = _always


RULES: tuple[StageRule, ...] = (
    StageRule("marketing.form_submitted", S.LEAD, BEFORE_LEAD, _form_reason, _lead_form),
    StageRule("marketing.form_submitted", S.SUBSCRIBER, frozenset({None, S.VISITOR}),
              _form_reason, _subscriber_form),
    StageRule("marketing.content_downloaded", S.LEAD, BEFORE_LEAD,
              _fixed("content downloaded by a known person"), _known),
    StageRule("sales.prospect_added", S.LEAD, BEFORE_LEAD, _fixed("outbound prospect added")),
    StageRule("sales.meeting_booked", S.SAL, frozenset({S.LEAD, S.MQL, S.RECYCLED}),
              _fixed("meeting booked with an outbound prospect"), _outbound_meeting),
    StageRule("sales.reply_received", S.SAL, frozenset({S.LEAD, S.MQL, S.RECYCLED}),
              _fixed("positive reply from an outbound prospect"), _outbound_positive_reply),
    StageRule("sales.handoff_accepted", S.SAL, BEFORE_SAL, _fixed("hand-off accepted by sales")),
    StageRule("sales.handoff_rejected", S.RECYCLED, frozenset({S.MQL, S.SAL}),
              _because("hand-off rejected")),
    StageRule("sales.lead_qualified", S.SQL, BEFORE_SQL, _qualified_reason, _bant),
    StageRule("sales.lead_disqualified", S.DISQUALIFIED, BEFORE_SALE, _because("disqualified")),
    StageRule("sales.demo_held", S.OPPORTUNITY, BEFORE_OPPORTUNITY, _fixed("demo held")),
    StageRule("sales.proposal_sent", S.OPPORTUNITY, BEFORE_OPPORTUNITY, _fixed("proposal sent")),
    StageRule("sales.deal_won", S.CUSTOMER, NOT_CUSTOMER, _fixed("deal won")),
    StageRule("sales.renewed", S.CUSTOMER, NOT_CUSTOMER, _fixed("renewed")),
    StageRule("sales.deal_lost", S.RECYCLED, frozenset({S.MQL, S.SAL, S.SQL, S.OPPORTUNITY}),
              _because("deal lost")),
    StageRule("sales.churned", S.CHURNED, frozenset({S.CUSTOMER}), _because("churned")),
)  # fmt: skip

_BY_TYPE: dict[str, tuple[StageRule, ...]] = {}
for _rule in RULES:
    _BY_TYPE[_rule.event_type] = (*_BY_TYPE.get(_rule.event_type, ()), _rule)


def transition(
    stage: AnyStage, tp: Envelope, facts: Facts, playbook: Playbook
) -> tuple[Stage, str] | None:
    """The stage `tp` moves a journey in `stage` to, with the reason; None if it stays."""
    for rule in _BY_TYPE.get(tp.type, ()):
        if stage in rule.from_stages and rule.condition(tp, facts, playbook):
            return (rule.to, rule.reason(tp)) if rule.to != stage else None
    # No specific rule: the first touch makes a visitor, and the first known one a subscriber.
    if stage is None:
        if facts.known:
            return S.SUBSCRIBER, "first touch by a known person"
        return S.VISITOR, "first touch"
    if stage == S.VISITOR and facts.known:
        return S.SUBSCRIBER, "identified (email or CRM contact known)"
    return None
