"""The derived journey (`JourneyView`) and the published snapshot (`JourneySnapshot`).

Both are pure functions of a record and a playbook. Scores are as of the latest touchpoint's
event time, never the wall clock; `snapshot(..., as_of=...)` only stamps when it was taken.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from schemas.journey import (
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
    UnmatchedResponse,
)
from schemas.playbook import Playbook
from streams.journey.account import account_of
from streams.journey.breakdown import breakdown_json
from streams.journey.fold import summarize
from streams.journey.memo import NO_CURRENCY
from streams.journey.record import derive, totals

RECENT_IN_SNAPSHOT = 20
__all__ = ["NO_CURRENCY", "JourneyView", "snapshot", "snapshot_json", "view"]


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
    unmatched_responses: list[UnmatchedResponse]
    playbook_version: str


def view(record: JourneyRecord, playbook: Playbook, listed: bool = True) -> JourneyView:
    """The journey derived from its touchpoints under `playbook` (not `listed`: without the
    engagement breakdown's items)."""
    state = derive(record, playbook)
    tally = totals(record, playbook)
    first = tally.first
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
    return JourneyView(
        customer_id=record.customer_id,
        identifiers=list(record.identifiers),
        stage=state.stage or Stage.VISITOR,
        cycle=state.cycle,
        stage_history=list(state.history),
        outbound=state.outbound,
        engagement=state.engagement_score(state.last_at, again=True, listed=listed),
        fit=state.fit(),
        firmographics=state.firmographics(),
        open_objections=state.open_objections(),
        campaigns=list(state.campaigns),
        messages=list(state.messages),
        last_marketing=[summarize(t) for t in state.last_marketing],
        last_sales=[summarize(t) for t in state.last_sales],
        unsubscribed=state.unsubscribed,
        revenue=dict(sorted(tally.revenue.items())),
        spend=dict(sorted(tally.spend.items())),
        counts_by_type=dict(sorted(tally.counts.items())),
        touchpoint_count=tally.count,
        first_touch=first_touch,
        last_touch_at=tally.last_at,
        term_started_at=state.term_started_at,
        triggers=list(state.triggers),
        unmatched_responses=list(state.unmatched),
        playbook_version=playbook.version,
    )


def snapshot(
    record: JourneyRecord, playbook: Playbook, as_of: datetime | None = None
) -> JourneySnapshot:
    """The published picture of a journey; `as_of` defaults to its latest touchpoint's time."""
    return _snapshot(record, playbook, as_of, listed=True)


def snapshot_json(record: JourneyRecord, playbook: Playbook) -> tuple[JourneySnapshot, str]:
    """`snapshot(record, playbook)` without its engagement breakdown's items, and the whole
    snapshot's JSON, byte for byte `snapshot(record, playbook).model_dump_json()`.

    A snapshot lists up to the retention cap of breakdown items, published on every change:
    their JSON is kept per item with the journey's fold state (`breakdown_json`), and only
    the rest is built and written by pydantic.
    """
    bare = _snapshot(record, playbook, None, listed=False)
    state = derive(record, playbook)
    at = state.last_at
    if at is None or not state.items:
        return bare, snapshot(record, playbook).model_dump_json()
    written, engagement = bare.model_dump_json(), bare.scores.engagement.model_dump_json()
    # The breakdown is the engagement's last field, and a key's unescaped quote is never inside
    # a JSON string: one occurrence of the marker is the breakdown's place.
    marker = '"scores":{"engagement":' + engagement
    if not engagement.endswith(_EMPTY_LAST) or written.count(marker) != 1:
        return bare, snapshot(record, playbook).model_dump_json()
    half_life = state.playbook.scoring.half_life_days
    items = breakdown_json(state.listed_items(), at, half_life, state.score_items)
    filled = marker[: -len(_EMPTY_LAST)] + '"breakdown":' + items + "}"
    return bare, written.replace(marker, filled, 1)


_EMPTY_LAST = '"breakdown":[]}'


def _snapshot(
    record: JourneyRecord, playbook: Playbook, as_of: datetime | None, listed: bool
) -> JourneySnapshot:
    v = view(record, playbook, listed)
    ledger = sorted(record.signal_ledger.values(), key=lambda e: (e.occurred_at, e.signal_id))
    return JourneySnapshot(
        customer_id=record.customer_id,
        version=record.version,
        identities=list(record.identifiers),
        account_id=account_of(record, playbook),
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
        unmatched_responses=v.unmatched_responses,
        counts=Counts(
            touchpoints=v.touchpoint_count,
            retained=len(record.touchpoints),
            by_type=v.counts_by_type,
        ),
        playbook_version=playbook.version,
        first_touch=v.first_touch,
        last_touch_at=v.last_touch_at,
        as_of=as_of or v.last_touch_at,
    )
