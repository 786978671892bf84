"""Journey → facts: the small, exact `JourneyFacts` record the KPIs need of one journey.

A journey is already deduplicated, merged and ordered by event time by the core; its facts
are therefore the same however often or in whatever order its touchpoints arrived.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from events.envelope import Envelope
from events.vocabulary import (
    LEDGER_TYPES,
    DealWon,
    FeedbackRecorded,
    FormSubmitted,
    ObjectionRaised,
    ProspectAdded,
)
from schemas.journey import CompactedTouchpoint, JourneyRecord, Stage, StageChange
from schemas.kpis import (
    Amount,
    HandoffFacts,
    JourneyFacts,
    LedgerItem,
    NpsResponse,
    PathSummary,
    Source,
    StageEntry,
    Voice,
    VoiceKind,
    WonDeal,
)
from schemas.playbook import Playbook
from streams.journey.kpis.units import micros
from streams.journey.record import compact_summary, derive
from streams.journey.view import NO_CURRENCY


def _summaries(record: JourneyRecord) -> list[CompactedTouchpoint]:
    # Every touchpoint ever seen, compacted or retained, in (event time, event id) order: the
    # counts, amounts and paths stay exact beyond the retention cap.
    compacted = record.compacted.touchpoints if record.compacted else []
    summaries = [*compacted, *map(compact_summary, record.touchpoints)]
    summaries.sort(key=lambda s: (s.occurred_at, s.event_id))
    return summaries


@dataclass
class _PathBuilder:
    first: str | None = None
    last: str | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, value: str | None) -> None:
        if value is None:
            return
        if self.first is None:
            self.first = value
        self.last = value
        self.counts[value] += 1

    def freeze(self) -> PathSummary:
        return PathSummary(
            first=self.first, last=self.last, counts=dict(sorted(self.counts.items()))
        )


def _stage_after(
    history: Sequence[StageChange], keys: Sequence[tuple[datetime, str]], key: tuple[datetime, str]
) -> Stage | None:
    # History entries are caused by touchpoints, in fold order: the stage right after a
    # touchpoint is that of the last entry whose cause is not after it.
    index = bisect.bisect_right(keys, key)
    return history[index - 1].stage if index else None


def _voices(
    touchpoints: Iterable[Envelope],
    history: Sequence[StageChange],
    keys: Sequence[tuple[datetime, str]],
) -> tuple[list[Voice], list[NpsResponse]]:
    voices: list[Voice] = []
    nps: list[NpsResponse] = []
    for tp in touchpoints:
        said: list[tuple[VoiceKind, str]] = []
        if isinstance(tp, FormSubmitted | ProspectAdded):
            said = [("pain_point", p) for p in tp.properties.pain_points]
        elif isinstance(tp, FeedbackRecorded):
            p = tp.properties
            said = [("pain_point", x) for x in p.pain_points]
            said += [("motivation", x) for x in p.motivations]
            if p.nps is not None:
                nps.append(NpsResponse(at=micros(tp.occurred_at), score=p.nps))
        elif isinstance(tp, ObjectionRaised):
            said = [("objection", tp.properties.category)]
        if not said:
            continue
        stage = _stage_after(history, keys, tp.order_key)
        # Normalised like the fold normalises pain points, so "Attribution " = "attribution".
        for kind, value in sorted({(k, v.strip().lower()) for k, v in said}):
            if value:
                voices.append(Voice(at=micros(tp.occurred_at), kind=kind, value=value, stage=stage))
    return voices, nps


def journey_facts(record: JourneyRecord, playbook: Playbook) -> JourneyFacts:
    """The KPI facts of one journey under `playbook` (pure; see docs/kpis.md)."""
    state = derive(record, playbook)
    history = list(state.history)
    history_keys = [(h.entered_at, h.cause_event_id) for h in history]
    summaries = _summaries(record)
    people = [s for s in summaries if s.type not in LEDGER_TYPES]
    margins = {
        t.event_id: t.properties.gross_margin for t in record.touchpoints if isinstance(t, DealWon)
    }

    won: list[WonDeal] = []
    lost: list[int] = []
    renewals: list[Amount] = []
    form_views: list[int] = []
    form_submissions: list[int] = []
    marketing: list[int] = []
    channels, campaigns = _PathBuilder(), _PathBuilder()
    for s in people:
        if s.type == "sales.deal_won" and s.amount is not None:
            # The path is what came strictly before the win (not the win's own context).
            won.append(
                WonDeal(
                    at=micros(s.occurred_at),
                    amount=s.amount,
                    currency=s.currency or NO_CURRENCY,
                    gross_margin=margins.get(s.event_id),
                    channels=channels.freeze(),
                    campaigns=campaigns.freeze(),
                )
            )
        elif s.type == "sales.deal_lost":
            lost.append(micros(s.occurred_at))
        elif s.type == "sales.renewed" and s.amount is not None:
            renewals.append(
                Amount(
                    at=micros(s.occurred_at), amount=s.amount, currency=s.currency or NO_CURRENCY
                )
            )
        elif s.type == "marketing.form_viewed":
            form_views.append(micros(s.occurred_at))
        elif s.type == "marketing.form_submitted":
            form_submissions.append(micros(s.occurred_at))
        if s.type.startswith("marketing."):
            marketing.append(micros(s.occurred_at))
        channels.add(s.channel)
        campaigns.add(s.campaign_id)

    ledger = [
        LedgerItem(
            kind="spend" if s.type == "marketing.spend_recorded" else "cost",
            at=micros(s.occurred_at),
            amount=s.amount,
            currency=s.currency or NO_CURRENCY,
            campaign=s.campaign_id,
            channel=s.channel,
        )
        for s in summaries
        if s.type in LEDGER_TYPES and s.amount is not None
    ]

    sales_keys = [(s.occurred_at, s.event_id) for s in people if s.type.startswith("sales.")]
    sla = timedelta(hours=playbook.handoff.sla_hours)
    handoffs: list[HandoffFacts] = []
    for i, entry in enumerate(history):
        if entry.stage != Stage.MQL:
            continue  # every MQL entry is a hand-off (the fold fires it with the stage)
        key = (entry.entered_at, entry.cause_event_id)
        after = bisect.bisect_right(sales_keys, key)
        handoffs.append(
            HandoffFacts(
                at=micros(entry.entered_at),
                cycle=entry.cycle,
                deadline=micros(entry.entered_at + sla),
                answered_at=micros(history[i + 1].entered_at) if i + 1 < len(history) else None,
                first_sales_touch_at=(
                    micros(sales_keys[after][0]) if after < len(sales_keys) else None
                ),
            )
        )

    voices, nps = _voices(record.touchpoints, history, history_keys)
    first = people[0] if people else None
    source: Source | None = None
    if first is not None:
        source = "outbound" if first.type.startswith("sales.") else "inbound"
    return JourneyFacts(
        customer_id=record.customer_id,
        version=record.version,
        playbook_version=playbook.version,
        persona=state.fit().persona,
        source=source,
        first_touch_at=None if first is None else micros(first.occurred_at),
        first_channel=next((s.channel for s in people if s.channel), None),
        first_campaign=next((s.campaign_id for s in people if s.campaign_id), None),
        stages=[StageEntry(stage=h.stage, at=micros(h.entered_at), cycle=h.cycle) for h in history],
        won=won,
        lost=lost,
        renewals=renewals,
        form_views=form_views,
        form_submissions=form_submissions,
        marketing_touches=marketing,
        handoffs=handoffs,
        nps=nps,
        voices=voices,
        ledger=ledger,
    )
