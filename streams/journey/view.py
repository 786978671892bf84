"""The derived journey (`JourneyView`) and the published snapshot (`JourneySnapshot`).

Both are pure functions of a record and a playbook. Scores are as of the latest touchpoint's
event time, never the wall clock; `snapshot(..., as_of=...)` only stamps when it was taken.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from events.vocabulary import LEDGER_TYPES
from schemas.journey import (
    CompactedTouchpoint,
    Counts,
    EngagementScore,
    Firmographics,
    FirstTouch,
    FitScore,
    JourneyRecord,
    JourneySnapshot,
    Objection,
    Scores,
    SignalRef,
    SignalTrigger,
    Stage,
    StageChange,
    TouchpointSummary,
)
from schemas.playbook import Playbook
from streams.journey.fold import summarize
from streams.journey.record import compact_summary, derive

RECENT_IN_SNAPSHOT = 20
NO_CURRENCY = "XXX"
"""ISO 4217's code for "no currency": renewals that name none are counted under it."""


class JourneyView(BaseModel):
    """Everything derived from a journey's touchpoints under a playbook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: str
    identifiers: list[str]
    stage: Stage
    cycle: int
    stage_history: list[StageChange]
    outbound: bool
    engagement: EngagementScore
    fit: FitScore
    firmographics: Firmographics
    open_objections: list[Objection]
    campaigns: list[str]
    messages: list[str]
    last_marketing: list[TouchpointSummary]
    last_sales: list[TouchpointSummary]
    unsubscribed: bool
    revenue: dict[str, Decimal]
    spend: dict[str, Decimal]
    counts_by_type: dict[str, int]
    touchpoint_count: int
    first_touch: FirstTouch | None
    last_touch_at: datetime | None
    term_started_at: datetime | None
    triggers: list[SignalTrigger]
    playbook_version: str


def _all_summaries(record: JourneyRecord) -> list[CompactedTouchpoint]:
    compacted = record.compacted.touchpoints if record.compacted else []
    return [*compacted, *map(compact_summary, record.touchpoints)]


def _aggregates(
    summaries: list[CompactedTouchpoint],
) -> tuple[dict[str, Decimal], dict[str, Decimal], dict[str, int], FirstTouch | None]:
    # Set functions over every touchpoint ever seen (compacted too): exact, order-free.
    revenue: dict[str, Decimal] = {}
    spend: dict[str, Decimal] = {}
    for s in summaries:
        if s.amount is None:
            continue
        if s.type in ("sales.deal_won", "sales.renewed"):
            currency = s.currency or NO_CURRENCY
            revenue[currency] = revenue.get(currency, Decimal(0)) + s.amount
        elif s.type in LEDGER_TYPES:
            key = f"{s.campaign_id or '-'}|{s.currency or NO_CURRENCY}"
            spend[key] = spend.get(key, Decimal(0)) + s.amount
    counts = dict(sorted(Counter(s.type for s in summaries).items()))
    people = [s for s in summaries if s.type not in LEDGER_TYPES]
    first = min(people, key=lambda s: (s.occurred_at, s.event_id), default=None)
    first_touch = (
        None
        if first is None
        else FirstTouch(
            event_id=first.event_id,
            type=first.type,
            at=first.occurred_at,
            channel=first.channel,
            campaign_id=first.campaign_id,
        )
    )
    return dict(sorted(revenue.items())), dict(sorted(spend.items())), counts, first_touch


def view(record: JourneyRecord, playbook: Playbook) -> JourneyView:
    """The journey derived from its touchpoints under `playbook`."""
    state = derive(record, playbook)
    summaries = _all_summaries(record)
    revenue, spend, counts, first_touch = _aggregates(summaries)
    last_at = max((s.occurred_at for s in summaries), default=None)
    return JourneyView(
        customer_id=record.customer_id,
        identifiers=list(record.identifiers),
        stage=state.stage or Stage.VISITOR,
        cycle=state.cycle,
        stage_history=list(state.history),
        outbound=state.outbound,
        engagement=state.engagement_score(state.last_at),
        fit=state.fit(),
        firmographics=state.firmographics(),
        open_objections=state.open_objections(),
        campaigns=list(state.campaigns),
        messages=list(state.messages),
        last_marketing=[summarize(t) for t in state.last_marketing],
        last_sales=[summarize(t) for t in state.last_sales],
        unsubscribed=state.unsubscribed,
        revenue=revenue,
        spend=spend,
        counts_by_type=counts,
        touchpoint_count=len(summaries),
        first_touch=first_touch,
        last_touch_at=last_at,
        term_started_at=state.term_started_at,
        triggers=list(state.triggers),
        playbook_version=playbook.version,
    )


def snapshot(
    record: JourneyRecord, playbook: Playbook, as_of: datetime | None = None
) -> JourneySnapshot:
    """The published picture of a journey; `as_of` defaults to its latest touchpoint's time."""
    v = view(record, playbook)
    ledger = sorted(record.signal_ledger.values(), key=lambda e: (e.occurred_at, e.signal_id))
    return JourneySnapshot(
        customer_id=record.customer_id,
        version=record.version,
        identities=list(record.identifiers),
        stage=v.stage,
        cycle=v.cycle,
        stage_history=v.stage_history,
        scores=Scores(engagement=v.engagement, fit=v.fit),
        firmographics=v.firmographics,
        open_objections=v.open_objections,
        campaigns=v.campaigns,
        messages=v.messages,
        unsubscribed=v.unsubscribed,
        revenue=v.revenue,
        spend=v.spend,
        recent_touchpoints=[summarize(t) for t in record.touchpoints[-RECENT_IN_SNAPSHOT:]],
        last_marketing=v.last_marketing[-1] if v.last_marketing else None,
        last_sales=v.last_sales[-1] if v.last_sales else None,
        merges=list(record.merges),
        signals=[
            SignalRef(
                signal_id=e.signal_id,
                signal_type=e.signal_type,
                rule=e.rule,
                version=e.version,
                status=e.status,
                occurred_at=e.occurred_at,
            )
            for e in ledger
        ],
        counts=Counts(
            touchpoints=v.touchpoint_count,
            retained=len(record.touchpoints),
            duplicates=record.duplicates,
            by_type=v.counts_by_type,
        ),
        playbook_version=playbook.version,
        first_touch=v.first_touch,
        last_touch_at=v.last_touch_at,
        as_of=as_of or v.last_touch_at,
    )
