"""Journey → facts: the small, exact `JourneyFacts` record the KPIs need of one journey.

A journey is already deduplicated, merged and ordered by event time by the core; its facts
are therefore the same however often or in whatever order its touchpoints arrived. The walk
over every touchpoint (`streams.journey.kpis.walk`) is kept with the journey's fold state and
extended per in-order touchpoint, so the facts of a change cost what changed (plus copying
the lists they hold), not the journey's length.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from events.vocabulary import DealWon, Touchpoint
from schemas.journey import JourneyRecord, Stage, StageChange
from schemas.kpis import (
    HandoffFacts,
    JourneyFacts,
    NpsResponse,
    Source,
    StageEntry,
    Voice,
    WonDeal,
)
from schemas.playbook import Playbook
from streams.journey import memo
from streams.journey.account import account_of
from streams.journey.kpis.units import micros
from streams.journey.kpis.walk import TIMES, FactsWalk, Win
from streams.journey.memo import NO_CURRENCY


def _stage_after(
    history: Sequence[StageChange], keys: Sequence[tuple[datetime, str]], key: tuple[datetime, str]
) -> Stage | None:
    # History entries are caused by touchpoints, in fold order: the stage right after a
    # touchpoint is that of the last entry whose cause is not after it.
    index = bisect.bisect_right(keys, key)
    return history[index - 1].stage if index else None


def _retained(record: JourneyRecord, entry: memo.Derived) -> dict[str, Touchpoint]:
    # The event-id index the memo keeps of the retained touchpoints (rebuilt if handed on).
    return entry.ids if entry.ids is not None else {tp.event_id: tp for tp in record.touchpoints}


def _walk(record: JourneyRecord, entry: memo.Derived) -> FactsWalk:
    walk = entry.walk
    compacted = len(record.compacted.touchpoints) if record.compacted else 0
    if not isinstance(walk, FactsWalk) or walk.count != compacted + len(record.touchpoints):
        walk = FactsWalk.of(record, walk.known if isinstance(walk, FactsWalk) else None)
        entry.walk = walk
    elif len(walk.known) > 2 * len(record.touchpoints) + 64:
        walk.known = walk.known_of(record)  # compacted touchpoints' steps, let go
    return walk


def _won(walk: FactsWalk, wins: list[Win], retained: dict[str, Touchpoint]) -> list[WonDeal]:
    won: list[WonDeal] = []
    for win in wins:
        s, deal = win.summary, retained.get(win.event_id)
        assert s.amount is not None  # only wins with an amount are walked
        won.append(
            WonDeal(
                at=win.at,
                amount=s.amount,
                currency=s.currency or NO_CURRENCY,
                # The margin is known while the win is retained (summaries do not keep it).
                gross_margin=deal.properties.gross_margin if isinstance(deal, DealWon) else None,
                channels=win.channels,
                campaigns=win.campaigns,
            )
        )
    return won


def _handoffs(
    history: Sequence[StageChange], sales_keys: Sequence[tuple[datetime, str]], playbook: Playbook
) -> list[HandoffFacts]:
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
    return handoffs


def _voices(
    record: JourneyRecord,
    walk: FactsWalk,
    retained: dict[str, Touchpoint],
    history: Sequence[StageChange],
) -> tuple[list[Voice], list[NpsResponse]]:
    # What the retained touchpoints told, with the stage right after each.
    # Compacted touchpoints tell nothing any more; they are mostly before the first retained
    # one (not all: a conflicting duplicate can move a retained one behind the horizon).
    first = record.touchpoints[0].order_key if record.touchpoints else None
    told = walk.said_from(first)
    voices: list[Voice] = []
    nps: list[NpsResponse] = []
    if not told:
        return voices, nps  # the usual case: nothing said
    keys = [(h.entered_at, h.cause_event_id) for h in history]
    for said in told:
        if said.event_id not in retained:
            continue
        if said.nps is not None:
            nps.append(said.nps)
        if said.said:
            voices += said.voices(_stage_after(history, keys, said.key))
    return voices, nps


@functools.lru_cache(maxsize=16_384)
def _stage_entry(stage: Stage, entered_at: datetime, cycle: int) -> StageEntry:
    # A journey's history is the same on almost every change: each entry is built once (the
    # models are frozen values, so sharing them across facts changes nothing).
    return StageEntry(stage=stage, at=micros(entered_at), cycle=cycle)


_FACT_FIELDS = tuple(JourneyFacts.model_fields)


def _trusted(**values: Any) -> JourneyFacts:
    """`JourneyFacts.model_construct(**values)` for values of every field in field order,
    without its per-field alias and default walk (a tenth of the facts' cost); any other
    call, or a model that needs a post-init, goes through `model_construct`."""
    if tuple(values) != _FACT_FIELDS or JourneyFacts.__pydantic_post_init__:
        return JourneyFacts.model_construct(**values)
    facts = JourneyFacts.__new__(JourneyFacts)
    object.__setattr__(facts, "__dict__", values)
    object.__setattr__(facts, "__pydantic_fields_set__", set(_FACT_FIELDS))
    object.__setattr__(facts, "__pydantic_extra__", None)
    object.__setattr__(facts, "__pydantic_private__", None)
    return facts


def journey_facts(record: JourneyRecord, playbook: Playbook) -> JourneyFacts:
    """The KPI facts of one journey under `playbook` (pure; see docs/kpis.md)."""
    return _facts(record, playbook, None)


def journey_facts_json(record: JourneyRecord, playbook: Playbook) -> str:
    """`journey_facts(record, playbook).model_dump_json(exclude_defaults=True)`, the same text.

    The lists of bare event times (marketing touches, form views, ...) grow with the journey:
    they are written once into the JSON kept with the walk's tapes and spliced in, so a change
    does not write every time again. The facts are built with one placeholder time per long
    list (an impossible value, so the splice finds only it), then the JSON is spliced.
    """
    spliced: dict[str, str] = {}
    text = _facts(record, playbook, spliced).model_dump_json(exclude_defaults=True)
    if not spliced:
        return text
    parts: list[str] = []
    start = 0
    for name, times in spliced.items():  # in field order, as written
        placeholder = f'"{name}":[{_PLACEHOLDER}'
        at = text.index(placeholder, start)
        parts += (text[start:at], f'"{name}":[', times)
        start = at + len(placeholder)  # the closing bracket is kept
    parts.append(text[start:])
    return "".join(parts)


_PLACEHOLDER = -(2**62)
"""A time no list of facts holds (4.6e18 µs before 1970), standing for a spliced list."""

SPLICED_FROM = 64
"""Lists of times at least this long are spliced (shorter ones are cheaper to write)."""


def _facts(
    record: JourneyRecord, playbook: Playbook, spliced: dict[str, str] | None
) -> JourneyFacts:
    # `spliced` None: every list as it is; else each long list of times is a placeholder
    # in the facts and its JSON is put in `spliced` under its field's name.
    entry = memo.lookup(record, playbook)
    state, walk = entry.state, _walk(record, entry)
    history = list(state.history)
    retained = _retained(record, entry)
    skip: frozenset[int] = frozenset()
    if spliced is not None:
        skip = frozenset(i for i in TIMES if walk.sizes[i] >= SPLICED_FROM)
        spliced.update((TIMES[i][1], walk.times_json(i)) for i in sorted(skip))  # field order
    tapes = walk.read(skip)
    for index in skip:
        setattr(tapes, TIMES[index][0], [_PLACEHOLDER])
    voices, nps = _voices(record, walk, retained, history)
    first = walk.first_person
    source: Source | None = None
    if first is not None:
        source = "outbound" if first.type.startswith("sales.") else "inbound"
    # Every value is already of its field's type (built by validated constructors): skip a
    # second validation of lists as long as the journey.
    return _trusted(
        customer_id=record.customer_id,
        version=record.version,
        playbook_version=playbook.version,
        persona=state.fit().persona,
        source=source,
        account=account_of(record, playbook),
        first_touch_at=None if first is None else micros(first.occurred_at),
        first_channel=walk.first_channel,
        first_campaign=walk.first_campaign,
        stages=[_stage_entry(h.stage, h.entered_at, h.cycle) for h in history],
        won=_won(walk, tapes.won, retained),
        lost=tapes.lost,
        renewals=tapes.renewals,
        form_views=tapes.form_views,
        form_submissions=tapes.form_submissions,
        marketing_touches=tapes.marketing,
        handoffs=_handoffs(history, tapes.sales_keys, playbook),
        nps=nps,
        voices=voices,
        ledger=tapes.ledger,
    )
