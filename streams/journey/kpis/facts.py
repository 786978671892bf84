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
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from pydantic_core import to_json

from events.vocabulary import DealWon, Touchpoint
from schemas.journey import JourneyRecord, Stage, StageChange
from schemas.kpis import (
    Amount,
    HandoffFacts,
    JourneyFacts,
    LedgerItem,
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
        known = walk.known if isinstance(walk, FactsWalk) else None
        walk = FactsWalk.of(record, known, _prefix_walk(record, entry))
        entry.walk = walk
    if len(walk.known) > 2 * len(record.touchpoints) + 64:
        walk.known = walk.known_of(record)  # compacted touchpoints' steps, let go
    return walk


def _prefix_walk(record: JourneyRecord, entry: memo.Derived) -> FactsWalk | None:
    """The walk of the record's compacted prefix, made once per prefix (None: no prefix)."""
    if record.compacted is None:
        return None
    kept = entry.prefix_walk
    if not isinstance(kept, FactsWalk) or kept.count != len(record.compacted.touchpoints):
        kept = entry.prefix_walk = FactsWalk.of_summaries(record.compacted.touchpoints)
    return kept


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


def _handoff_values(
    history: Sequence[StageChange],
    sales_keys: Sequence[tuple[datetime, str]],
    n: int,
    playbook: Playbook,
) -> list[tuple[int, int, int, int | None, int | None]]:
    """(at, cycle, deadline, answered_at, first_sales_touch_at) of every hand-off, answered
    by the first `n` sales touches."""
    handoffs: list[tuple[int, int, int, int | None, int | None]] = []
    if Stage.MQL not in {entry.stage for entry in history}:
        return handoffs  # most journeys: no hand-off yet
    sla = timedelta(hours=playbook.handoff.sla_hours)
    for i, entry in enumerate(history):
        if entry.stage != Stage.MQL:
            continue  # every MQL entry is a hand-off (the fold fires it with the stage)
        key = (entry.entered_at, entry.cause_event_id)
        after = bisect.bisect_right(sales_keys, key, 0, n)
        handoffs.append(
            (
                micros(entry.entered_at),
                entry.cycle,
                micros(entry.entered_at + sla),
                micros(history[i + 1].entered_at) if i + 1 < len(history) else None,
                micros(sales_keys[after][0]) if after < n else None,
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
    if not walk.sizes[-1]:
        return [], []  # the usual case: nothing said
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


def _handoff(
    at: int, cycle: int, deadline: int, answered_at: int | None, first_sales: int | None
) -> HandoffFacts:
    return HandoffFacts(
        at=at,
        cycle=cycle,
        deadline=deadline,
        answered_at=answered_at,
        first_sales_touch_at=first_sales,
    )


def journey_facts(record: JourneyRecord, playbook: Playbook) -> JourneyFacts:
    """The KPI facts of one journey under `playbook` (pure; see docs/kpis.md)."""
    entry = memo.lookup(record, playbook)
    c = _common(record, playbook, entry, account_of(record, playbook, entry))
    tapes = c.walk.read()
    # Every value is already of its field's type (built by validated constructors): skip a
    # second validation of lists as long as the journey.
    return _trusted(
        customer_id=record.customer_id,
        version=record.version,
        **dict(zip(_SCALARS, c.scalars, strict=True)),
        stages=[_stage_entry(h.stage, h.entered_at, h.cycle) for h in c.history],
        won=_won(c.walk, tapes.won, c.retained),
        lost=tapes.lost,
        renewals=tapes.renewals,
        form_views=tapes.form_views,
        form_submissions=tapes.form_submissions,
        marketing_touches=tapes.marketing,
        handoffs=[
            _handoff(*h)
            for h in _handoff_values(c.history, tapes.sales_keys, len(tapes.sales_keys), playbook)
        ],
        nps=c.nps,
        voices=c.voices,
        ledger=tapes.ledger,
    )


def journey_facts_json(record: JourneyRecord, playbook: Playbook) -> str:
    """`journey_facts(record, playbook).model_dump_json(exclude_defaults=True)`, the same text.

    Written directly (no model is built), and kept with the journey's fold state
    (`memo.Derived.facts`): the facts are a function of the touchpoints the state is kept for,
    the customer id, the account (it also follows the identifiers) and the version, so a change
    that leaves the touchpoints alone (a timer, a signal, a link) only writes the version anew.
    """
    entry = memo.lookup(record, playbook)
    account = account_of(record, playbook, entry)
    kept = entry.facts
    if kept is None or kept[0] != record.customer_id or kept[1] != account:
        head, tail = _facts_text(record, playbook, entry, account)
        kept = entry.facts = (record.customer_id, account, head, tail)
    version = record.version
    # As pydantic writes it: a field at its default (version 0) is left out. One join of the
    # pieces: the text is as long as the journey's lists of times, copied once.
    if version:
        return "".join((kept[2], f',"version":{version}', *kept[3]))
    return "".join((kept[2], *kept[3]))


SPLICED_FROM = 64
"""Lists of times at least this long are written from the JSON kept with the walk's tapes
(`FactsWalk.times_json`: extended, not rewritten; shorter ones are cheaper to write anew)."""


_SCALARS = (
    "playbook_version", "persona", "source", "account",
    "first_touch_at", "first_channel", "first_campaign",
)  # fmt: skip


class _Common(NamedTuple):
    """What both the facts model and their JSON are made of."""

    walk: FactsWalk
    history: list[StageChange]
    retained: dict[str, Touchpoint]
    voices: list[Voice]
    nps: list[NpsResponse]
    scalars: tuple[str | int | None, ...]
    """The fields `_SCALARS` name, in field order."""


def _common(
    record: JourneyRecord, playbook: Playbook, entry: memo.Derived, account: str | None
) -> _Common:
    state, walk = entry.state, _walk(record, entry)
    history = list(state.history)
    retained = _retained(record, entry)
    voices, nps = _voices(record, walk, retained, history)
    first = walk.first_person
    source: Source | None = None
    if first is not None:
        source = "outbound" if first.type.startswith("sales.") else "inbound"
    scalars = (
        playbook.version,
        state.fit().persona,
        source,
        account,
        None if first is None else micros(first.occurred_at),
        walk.first_channel,
        walk.first_campaign,
    )
    return _Common(walk, history, retained, voices, nps, scalars)


def _facts_text(
    record: JourneyRecord, playbook: Playbook, entry: memo.Derived, account: str | None
) -> tuple[str, tuple[str, ...]]:
    """The facts' JSON (as `model_dump_json(exclude_defaults=True)` writes it) around the
    version: what comes before it, and what after (in pieces to join: the lists of times are
    kept with the walk in pieces, see `FactsWalk.times_json`)."""
    c = _common(record, playbook, entry, account)
    walk, sizes, tapes = c.walk, c.walk.sizes, c.walk.tapes
    fields: list[str | tuple[str, ...]] = [
        f'"{name}":{_json_str(v) if isinstance(v, str) else v}'
        for name, v in zip(_SCALARS, c.scalars, strict=True)
        if v is not None
    ]
    if c.history:
        stages = ",".join(_stage_json(h.stage, h.entered_at, h.cycle) for h in c.history)
        fields.append(f'"stages":[{stages}]')
    if sizes[0]:
        won = _won(walk, tapes.won[: sizes[0]], c.retained)
        fields.append(f'"won":{_WON.dump_json(won, exclude_defaults=True).decode()}')
    _times(fields, walk, 1)
    if sizes[2]:
        renewals = _AMOUNTS.dump_json(tapes.renewals[: sizes[2]], exclude_defaults=True)
        fields.append(f'"renewals":{renewals.decode()}')
    for index in (3, 4, 5):
        _times(fields, walk, index)
    handoffs = _handoff_values(c.history, tapes.sales_keys, sizes[7], playbook)
    if handoffs:
        fields.append(f'"handoffs":[{",".join(_handoff_json(*h) for h in handoffs)}]')
    if c.nps:
        nps = ",".join(f'{{"at":{n.at},"score":{n.score}}}' for n in c.nps)
        fields.append(f'"nps":[{nps}]')
    if c.voices:
        fields.append(f'"voices":[{",".join(_voice_json(v) for v in c.voices)}]')
    if sizes[6]:
        ledger = _LEDGER.dump_json(tapes.ledger[: sizes[6]], exclude_defaults=True)
        fields.append(f'"ledger":{ledger.decode()}')
    head = f'{{"customer_id":{_json_str(record.customer_id)}'
    tail: list[str] = []
    for text in fields:  # each field after a comma; a list of times is a tuple of pieces
        tail.append(",")
        tail.extend((text,) if isinstance(text, str) else text)
    tail.append("}")
    return head, tuple(tail)


_WON = TypeAdapter(list[WonDeal])
_AMOUNTS = TypeAdapter(list[Amount])
_LEDGER = TypeAdapter(list[LedgerItem])
"""The rarer lists of models with money in them, written by pydantic itself."""


def _times(fields: list[str | tuple[str, ...]], walk: FactsWalk, index: int) -> None:
    n = walk.sizes[index]
    if not n:
        return  # an empty list is the field's default: left out
    tape, name = TIMES[index]
    if n >= SPLICED_FROM:
        fields.append((f'"{name}":[', *walk.times_json(index), "]"))
    else:
        fields.append(f'"{name}":[{",".join(map(str, getattr(walk.tapes, tape)[:n]))}]')


@functools.lru_cache(maxsize=65_536)
def _json_str(text: str) -> str:
    # Plain printable ASCII is written as it is; anything else as pydantic escapes it. The
    # same few names (channels, personas, the playbook's version) come back on every change.
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return to_json(text).decode()


@functools.lru_cache(maxsize=16_384)
def _stage_json(stage: Stage, entered_at: datetime, cycle: int) -> str:
    cycled = f',"cycle":{cycle}' if cycle else ""
    return f'{{"stage":{_json_str(stage.value)},"at":{micros(entered_at)}{cycled}}}'


def _handoff_json(
    at: int, cycle: int, deadline: int, answered_at: int | None, first_sales: int | None
) -> str:
    text = f'{{"at":{at}' + (f',"cycle":{cycle}' if cycle else "") + f',"deadline":{deadline}'
    if answered_at is not None:
        text += f',"answered_at":{answered_at}'
    if first_sales is not None:
        text += f',"first_sales_touch_at":{first_sales}'
    return text + "}"


def _voice_json(voice: Voice) -> str:
    stage = "" if voice.stage is None else f',"stage":{_json_str(voice.stage.value)}'
    return (
        f'{{"at":{voice.at},"kind":{_json_str(voice.kind)},'
        f'"value":{_json_str(voice.value)}{stage}}}'
    )
