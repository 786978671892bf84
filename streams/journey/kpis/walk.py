"""The walk behind a journey's KPI facts: every touchpoint once, in (event time, event id) order.

Most of `JourneyFacts` — won deals with the path before each, losses, renewals, form views and
submissions, marketing touches, the ledger, the sales touches hand-offs are answered by, the
first touch — is a left-to-right walk over every touchpoint a journey has seen, compacted or
retained. Walking all of them again on every change costs O(journey length); a `FactsWalk` is
kept with the journey's fold state (`streams.journey.memo`) and extended by one step per
in-order touchpoint, so the facts cost what changed. A late touchpoint (before the last one
walked) voids the walk and the next facts walk everything again, which is the same walk: the
facts are those of a walk from scratch, bit for bit (checked by the property laws).

A walk is a value: extending it never changes it. Its lists are append-only tapes shared with
the walks extended from it, each walk reading only its own prefix of them (`sizes`); extending a
walk that was already extended (a fork) copies its prefix first.

What a step derives of one retained touchpoint alone (its summary, its time in microseconds,
what it said) is kept per touchpoint object (`Step`, in `FactsWalk.known`) and carried by the
walks of a journey, also across a late touchpoint: a late one voids the walk (`stale`), and
the walk made afresh re-derives only the touchpoints it has not seen. A shuffled backlog makes
most changes late, so this is the usual path of the worker's facts.

The tapes of bare event times (marketing touches, form views, ...) are as long as the journey:
their JSON is kept with the tapes too (`Tapes.times_json`, a cache of a function of a prefix
that never changes), extended by what was appended, and written as such into the facts' JSON
(`facts.journey_facts_json`). A walk made afresh steps the usual touchpoints inline
(`FactsWalk.walk_all`): the first facts of a long journey walk every touchpoint it has seen.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from operator import itemgetter
from typing import Any, NamedTuple

from events.envelope import Envelope
from events.vocabulary import (
    LEDGER_TYPES,
    FeedbackRecorded,
    FormSubmitted,
    ObjectionRaised,
    ProspectAdded,
    Touchpoint,
)
from schemas.journey import CompactedTouchpoint, JourneyRecord, Stage
from schemas.kpis import Amount, LedgerItem, NpsResponse, PathSummary, Voice, VoiceKind
from streams.journey.kpis.units import EPOCH
from streams.journey.memo import NO_CURRENCY, Walk
from streams.journey.record import compact_summary

Key = tuple[datetime, str]

TIMES = {
    1: ("lost", "lost"),
    3: ("form_views", "form_views"),
    4: ("form_submissions", "form_submissions"),
    5: ("marketing", "marketing_touches"),
}
"""The tapes of bare event times: their index in `Tapes` → (the tape, the facts field it
becomes). They grow with the journey, so their JSON is kept with the tapes (`times_json`)."""

PIECES_KEPT = 32
"""How many pieces a time tape's kept JSON grows to before they are joined into one: joining
them on every change copied the whole list of times once more per change (at 10,000
touchpoints a 170 KB copy); this joins them once per this many changes."""


@dataclass(frozen=True)
class Win:
    """A won deal as walked: its margin is that of the retained touchpoint, looked up later."""

    event_id: str
    at: int
    summary: CompactedTouchpoint
    channels: PathSummary
    campaigns: PathSummary


@dataclass
class Said:
    """What a retained touchpoint told (voices, an NPS answer), before its stage is known."""

    key: Key
    event_id: str
    at: int
    said: tuple[tuple[VoiceKind, str], ...]
    nps: NpsResponse | None
    made: dict[Stage | None, list[Voice]] = field(default_factory=dict)
    """Its voices by the stage right after it (the stage changes rarely: build them once)."""

    def voices(self, stage: Stage | None) -> list[Voice]:
        """Its voices, at that stage."""
        made = self.made.get(stage)
        if made is None:
            made = [Voice(at=self.at, kind=k, value=v, stage=stage) for k, v in self.said]
            self.made[stage] = made
        return made


class Step(NamedTuple):
    """What a walk step derives of one retained touchpoint alone (a function of it only)."""

    touchpoint: Touchpoint
    """Kept so that the key, its `id`, names this touchpoint for as long as the step is known."""
    key: Key
    summary: CompactedTouchpoint
    at: int
    said: Said | None

    @classmethod
    def of(cls, touchpoint: Touchpoint, summary: CompactedTouchpoint | None = None) -> Step:
        """The step of a touchpoint (`summary`: its `compact_summary`, if already made)."""
        s = compact_summary(touchpoint) if summary is None else summary
        at = _micros(s.occurred_at)
        return cls(touchpoint, (s.occurred_at, s.event_id), s, at, _said(touchpoint, at))


Stepped = tuple[Key, CompactedTouchpoint, int, Said | None]
"""A walk step's input: its key, its summary, its time in µs, what it said."""

Known = dict[int, Step]
"""`id(touchpoint)` → its step (the step holds the touchpoint: the id is not reused)."""


@dataclass
class Tapes:
    """The append-only lists walks share (each walk reads its own prefix)."""

    won: list[Win] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    renewals: list[Amount] = field(default_factory=list)
    form_views: list[int] = field(default_factory=list)
    form_submissions: list[int] = field(default_factory=list)
    marketing: list[int] = field(default_factory=list)
    ledger: list[LedgerItem] = field(default_factory=list)
    sales_keys: list[Key] = field(default_factory=list)
    said: list[Said] = field(default_factory=list)
    written: dict[int, tuple[int, list[str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Per time tape (by its index in `TIMES`): how many of its times were written last, and
    their JSON without the brackets, in pieces — the tapes only grow, so it is extended, not
    rewritten (nor copied: a journey's facts are joined once, from the pieces)."""

    def times_json(self, index: int, n: int) -> tuple[str, ...]:
        """The JSON of the first `n` times of the tape at `index` (`TIMES`) without the
        brackets, as pydantic writes integers, in pieces to join; costs what was appended
        since the last call (and, every `PIECES_KEPT` calls, one join of the pieces)."""
        tape: list[int] = self._tapes()[index]
        done, pieces = self.written.get(index, (0, []))
        if done > n:  # an older walk's shorter prefix: written afresh, not kept
            return (",".join(map(str, tape[:n])),)
        if n > done:
            more = ",".join(map(str, tape[done:n]))
            if len(pieces) >= PIECES_KEPT:
                pieces = ["".join(pieces)]
            pieces.append(f",{more}" if pieces else more)  # handed out as tuples: not seen
            self.written[index] = (n, pieces)
        return tuple(pieces)

    def sizes(self) -> tuple[int, ...]:
        """How long each tape is."""
        return tuple(map(len, self._tapes()))

    def prefix(self, sizes: tuple[int, ...]) -> Tapes:
        """New tapes holding the first `sizes` of these."""
        cut = [tape[:n] for tape, n in zip(self._tapes(), sizes, strict=True)]
        return Tapes(*cut)

    def read(self, sizes: tuple[int, ...], skip: frozenset[int]) -> Tapes:
        """Fresh lists of the first `sizes` of these, the tapes at `skip` left empty."""
        if not skip:
            return self.prefix(sizes)
        cut = [[] if i in skip else tape[:n]
               for i, (tape, n) in enumerate(zip(self._tapes(), sizes, strict=True))]  # fmt: skip
        return Tapes(*cut)

    def _tapes(self) -> tuple[list[Any], ...]:
        return (
            self.won, self.lost, self.renewals, self.form_views, self.form_submissions,
            self.marketing, self.ledger, self.sales_keys, self.said,
        )  # fmt: skip


@dataclass
class Path:
    """The touchpoints so far along one dimension: first and last value, and counts (owned
    by one walk: `FactsWalk.plus` copies it)."""

    first: str | None = None
    last: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, value: str | None) -> None:
        """One more touchpoint (None: no value, the path is unchanged)."""
        if value is None:
            return
        if self.first is None:
            self.first = value
        self.last = value
        self.counts[value] = self.counts.get(value, 0) + 1

    def copy(self) -> Path:
        """A copy to change."""
        return Path(self.first, self.last, dict(self.counts))

    def freeze(self) -> PathSummary:
        """As published with a won deal."""
        return PathSummary(
            first=self.first, last=self.last, counts=dict(sorted(self.counts.items()))
        )


@dataclass
class FactsWalk:
    """The walk over a journey's touchpoints so far (see the module doc). Treated as a value
    once made: `plus` steps a copy."""

    tapes: Tapes = field(default_factory=Tapes)
    sizes: tuple[int, ...] = (0,) * 9
    count: int = 0
    last_key: Key | None = None
    first_person: CompactedTouchpoint | None = None
    first_channel: str | None = None
    first_campaign: str | None = None
    channels: Path = field(default_factory=Path)
    campaigns: Path = field(default_factory=Path)
    known: Known = field(default_factory=dict)
    """The steps of retained touchpoints seen by this journey's walks (shared by them)."""

    @classmethod
    def of(
        cls, record: JourneyRecord, known: Known | None = None, prefix: FactsWalk | None = None
    ) -> FactsWalk:
        """The walk over every touchpoint of a record (compacted ones as their summaries),
        re-deriving only the retained touchpoints `known` has no step of. With `prefix`, the
        walk of the record's compacted prefix alone (`of_summaries`), it goes on from that
        through the retained touchpoints (O(retained), not O(journey)) when they all come
        after it, as they do: a touchpoint behind the horizon is compacted on arrival."""
        compacted = record.compacted.touchpoints if record.compacted else []
        steps: list[Stepped] = []
        fresh: Known = {} if known is None else known
        for tp in record.touchpoints:
            step = fresh.get(id(tp))
            if step is None:
                step = fresh[id(tp)] = Step.of(tp)
            steps.append((step.key, step.summary, step.at, step.said))
        steps.sort(key=itemgetter(0))
        if (
            prefix is not None
            and prefix.count == len(compacted)
            and (not steps or prefix.last_key is None or steps[0][0] > prefix.last_key)
        ):
            walk = prefix._forked()
        else:
            walk = cls()
            head: list[Stepped] = [
                ((s.occurred_at, s.event_id), s, _micros(s.occurred_at), None) for s in compacted
            ]
            steps = sorted(head + steps, key=itemgetter(0)) if head else steps
        walk.known = fresh  # shared, like `plus` shares it (`facts._walk` prunes it)
        walk.walk_all(steps)
        walk.sizes = walk.tapes.sizes()
        return walk

    @classmethod
    def of_summaries(cls, summaries: Sequence[CompactedTouchpoint]) -> FactsWalk:
        """The walk over compacted touchpoints alone (a prefix, in its order)."""
        walk = cls()
        walk.walk_all(
            sorted(
                (((s.occurred_at, s.event_id), s, _micros(s.occurred_at), None) for s in summaries),
                key=itemgetter(0),
            )
        )
        walk.sizes = walk.tapes.sizes()
        return walk

    def then(self, summaries: Sequence[CompactedTouchpoint]) -> FactsWalk | None:
        """This walk and these compacted touchpoints (in order); None unless they come after
        every touchpoint walked so far."""
        steps: list[Stepped] = [
            ((s.occurred_at, s.event_id), s, _micros(s.occurred_at), None) for s in summaries
        ]
        if self.stale or any(a[0] >= b[0] for a, b in pairwise(steps)):
            return None
        if steps and self.last_key is not None and steps[0][0] <= self.last_key:
            return None
        walk = self._forked()
        walk.known = {}
        walk.walk_all(steps)
        walk.sizes = walk.tapes.sizes()
        return walk

    def _forked(self) -> FactsWalk:
        """A copy to extend: its own paths; the tapes shared if this walk is their longest
        reader, else its prefix of them copied (like `plus`)."""
        walk = replace(self, channels=self.channels.copy(), campaigns=self.campaigns.copy())
        if walk.tapes.sizes() != self.sizes:
            walk.tapes = walk.tapes.prefix(self.sizes)
        return walk

    def walk_all(self, steps: Sequence[Stepped]) -> None:
        """`_step` through each of `steps` in turn, the usual touchpoint (a person's, that
        is no deal, renewal or form) stepped inline: the first need of a long journey's walk
        steps through every touchpoint it has seen."""
        if not steps:
            return
        marketing, sales_keys, said_tape = (
            self.tapes.marketing,
            self.tapes.sales_keys,
            self.tapes.said,
        )
        channels, campaigns = self.channels, self.campaigns
        channel_counts, campaign_counts = channels.counts, campaigns.counts
        inline = 0
        for key, s, at, said in steps:
            kind = s.type
            if kind in _STEPPED_APART:
                self._step(key, s, at, said)
                continue
            inline += 1
            if kind.startswith("marketing."):
                marketing.append(at)
            elif kind.startswith("sales."):
                sales_keys.append(key)
            if self.first_person is None:
                self.first_person = s
            channel, campaign = s.channel, s.campaign_id
            self.first_channel = self.first_channel or channel or None
            self.first_campaign = self.first_campaign or campaign or None
            # `Path.add` of each, inline (the hot loop of a walk made afresh).
            if channel is not None:
                if channels.first is None:
                    channels.first = channel
                channels.last = channel
                channel_counts[channel] = channel_counts.get(channel, 0) + 1
            if campaign is not None:
                if campaigns.first is None:
                    campaigns.first = campaign
                campaigns.last = campaign
                campaign_counts[campaign] = campaign_counts.get(campaign, 0) + 1
            if said is not None:
                said_tape.append(said)
        self.count += inline
        self.last_key = steps[-1][0]

    def known_of(self, record: JourneyRecord) -> Known:
        """The steps known of a record's retained touchpoints (a new dict)."""
        known = self.known
        return {id(tp): known[id(tp)] for tp in record.touchpoints if id(tp) in known}

    @property
    def stale(self) -> bool:
        """Voided by a late touchpoint: made afresh (from `known`) on next need."""
        return self.count < 0

    def voided(self, *others: Walk) -> FactsWalk:
        """A `stale` walk knowing the steps these walks know (for a merge of journeys)."""
        known = dict(self.known)
        for other in others:
            if isinstance(other, FactsWalk):
                known.update(other.known)
        return FactsWalk(count=-1, known=known)

    def plus(self, summary: CompactedTouchpoint, touchpoint: Touchpoint) -> FactsWalk:
        """This walk and one more retained touchpoint; a `stale` walk unless it comes after
        all walked so far."""
        step = self.known.get(id(touchpoint))
        if step is None:
            step = self.known[id(touchpoint)] = Step.of(touchpoint, summary)
        if self.stale:
            return self
        if self.last_key is not None and step.key <= self.last_key:
            return FactsWalk(count=-1, known=self.known)
        walk = replace(self, channels=self.channels.copy(), campaigns=self.campaigns.copy())
        if walk.tapes.sizes() != self.sizes:
            walk.tapes = walk.tapes.prefix(self.sizes)  # extended before: a fork copies
        walk._step(step.key, summary, step.at, step.said)
        walk.sizes = walk.tapes.sizes()
        return walk

    def _step(self, key: Key, s: CompactedTouchpoint, at: int, said: Said | None) -> None:
        tapes = self.tapes
        self.count += 1
        self.last_key = key
        if s.type in LEDGER_TYPES:
            if s.amount is not None:
                tapes.ledger.append(
                    LedgerItem(
                        kind="spend" if s.type == "marketing.spend_recorded" else "cost",
                        at=at,
                        amount=s.amount,
                        currency=s.currency or NO_CURRENCY,
                        campaign=s.campaign_id,
                        channel=s.channel,
                    )
                )
        else:
            _person_step(s, at, key, tapes, self.channels, self.campaigns)
            if self.first_person is None:
                self.first_person = s
            self.first_channel = self.first_channel or s.channel or None
            self.first_campaign = self.first_campaign or s.campaign_id or None
            self.channels.add(s.channel)
            self.campaigns.add(s.campaign_id)
        if said is not None:
            tapes.said.append(said)

    def read(self, skip: frozenset[int] = frozenset()) -> Tapes:
        """This walk's own prefix of the tapes (fresh lists; those at `skip` left empty, for
        time tapes read as `times_json`)."""
        return self.tapes.read(self.sizes, skip)

    def times_json(self, index: int) -> tuple[str, ...]:
        """The JSON of this walk's prefix of the time tape at `index` without the brackets,
        in pieces to join (see `TIMES`)."""
        return self.tapes.times_json(index, self.sizes[index])

    def said_from(self, first: Key | None) -> Sequence[Said]:
        """What the touchpoints from `first` on told, in order (fresh list; none: None)."""
        if first is None:
            return []
        said = self.tapes.said[: self.sizes[-1]]
        return said[bisect.bisect_left(said, first, key=lambda s: s.key) :]


_STEPPED_APART = LEDGER_TYPES | {
    "sales.deal_won", "sales.deal_lost", "sales.renewed",
    "marketing.form_viewed", "marketing.form_submitted",
}  # fmt: skip
"""Kinds `walk_all` leaves to `_step` (they add to more than the marketing or sales tapes)."""


def _micros(at: datetime) -> int:
    # `units.micros` without the timedelta division (the walk's hot path): the same integer.
    since = at - EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def _person_step(
    s: CompactedTouchpoint, at: int, key: Key, tapes: Tapes, channels: Path, campaigns: Path
) -> None:
    if s.type == "sales.deal_won" and s.amount is not None:
        # The path is what came strictly before the win (not the win's own context).
        tapes.won.append(Win(s.event_id, at, s, channels.freeze(), campaigns.freeze()))
    elif s.type == "sales.deal_lost":
        tapes.lost.append(at)
    elif s.type == "sales.renewed" and s.amount is not None:
        tapes.renewals.append(Amount(at=at, amount=s.amount, currency=s.currency or NO_CURRENCY))
    elif s.type == "marketing.form_viewed":
        tapes.form_views.append(at)
    elif s.type == "marketing.form_submitted":
        tapes.form_submissions.append(at)
    if s.type.startswith("marketing."):
        tapes.marketing.append(at)
    elif s.type.startswith("sales."):
        tapes.sales_keys.append(key)


def _said(tp: Envelope, at: int) -> Said | None:
    said: list[tuple[VoiceKind, str]] = []
    nps: NpsResponse | None = None
    if isinstance(tp, FormSubmitted | ProspectAdded):
        said = [("pain_point", p) for p in tp.properties.pain_points]
    elif isinstance(tp, FeedbackRecorded):
        p = tp.properties
        said = [("pain_point", x) for x in p.pain_points]
        said += [("motivation", x) for x in p.motivations]
        if p.nps is not None:
            nps = NpsResponse(at=at, score=p.nps)
    elif isinstance(tp, ObjectionRaised):
        said = [("objection", tp.properties.category)]
    else:
        return None  # the usual case: a touchpoint that tells nothing
    # Normalised like the fold normalises pain points, so "Attribution " = "attribution".
    normalised = tuple(sorted({(k, v.strip().lower()) for k, v in said}))
    normalised = tuple((k, v) for k, v in normalised if v)
    if not normalised and nps is None:
        return None
    return Said(tp.order_key, tp.event_id, at, normalised, nps)
