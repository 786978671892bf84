"""The fold: a journey's touchpoints, in (occurred_at, event_id) order, folded into its state.

Everything derived — stage and stage history, scores, firmographics, objections, campaigns and
messages seen, and the facts behind every event-driven signal (`SignalTrigger`) — comes from
walking the touchpoints in event-time order through `FoldState.step`. Because the input is a
set and the order is total, the result does not depend on arrival order or duplication.

Per touchpoint, in this order: identity and engagement bookkeeping; firmographics, objections,
unsubscribe and contract term; the stage rule of its type (`streams.journey.stages`); then the
MQL rule (cycle engagement and fit as of this touchpoint); then the engaged-but-not-ready
nurture rule. Signal facts are captured at the touchpoint a rule fires on, so touchpoints after
it never change them.

Engagement is a decayed running sum, stepped once per touchpoint with points (see
`FoldState.engagement`): O(1) per step, and the same float operations in the same order whether
the fold runs from the start, from a compacted horizon or one touchpoint at a time from a
`clone` of the previous state — so the incremental fold equals the full fold bit for bit.

The state can be frozen into a `HorizonState` and resumed from it: that is how touchpoints
beyond the retention cap are compacted (see `streams.journey.record`).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from events.attribution import attributed_campaign, attributed_channel
from events.envelope import Envelope
from events.vocabulary import (
    LEDGER_TYPES,
    ContentDownloaded,
    FeedbackRecorded,
    FormSubmitted,
    HandoffAccepted,
    HandoffRejected,
    Identified,
    ObjectionRaised,
    ProspectAdded,
)
from schemas.journey import (
    BREAKDOWN_LISTED,
    EngagementScore,
    Firmographics,
    FitScore,
    HorizonState,
    Objection,
    PinnedTrigger,
    SignalTrigger,
    Stage,
    StageChange,
    TouchpointSummary,
    UnmatchedResponse,
)
from schemas.playbook import Playbook
from streams.journey import scoring, stages
from streams.journey.breakdown import BreakdownCache, ScoreEntry, breakdown, evaluate_once
from streams.journey.identity import IdentityGuards, by_strength, customer_id_for, signal_id
from streams.journey.trusted import trusted

RECENT_PER_DOMAIN = 5
"""How many of the latest marketing and of the latest sales touchpoints a hand-off carries."""

ENGAGED_FROM = frozenset({Stage.SUBSCRIBER, Stage.LEAD})

TriggerRule = Literal[
    "handoff", "nurture.engaged", "nurture.recycled", "nurture.onboarding", "nurture.churn_risk"
]

DETRACTOR_MAX_NPS = 6
"""NPS answers 0–6 are detractors (the standard NPS bands)."""


_SUMMARIES: OrderedDict[int, tuple[Envelope, TouchpointSummary]] = OrderedDict()
_SUMMARIES_KEPT = 16384


def summarize(tp: Envelope | TouchpointSummary) -> TouchpointSummary:
    """A touchpoint in a few fields."""
    if isinstance(tp, TouchpointSummary):
        return tp
    # Every snapshot lists the latest touchpoints: summarise each once (kept by the very,
    # immutable, touchpoint object, held so its id cannot be reused).
    kept = _SUMMARIES.get(id(tp))
    if kept is not None and kept[0] is tp:
        return kept[1]
    summary = _summarize(tp)
    _SUMMARIES[id(tp)] = (tp, summary)
    if len(_SUMMARIES) > _SUMMARIES_KEPT:
        _SUMMARIES.popitem(last=False)
    return summary


_FITS: OrderedDict[tuple[Any, ...], tuple[Playbook, FitScore]] = OrderedDict()
_FITS_KEPT = 4096


def _fit_of(firmographics: Firmographics, playbook: Playbook) -> FitScore:
    # A pure function of a few values, asked again on every refold that passes a form: most
    # people share a handful of titles and sizes. Kept by value and by the very playbook
    # object (held, so its id cannot be reused); the FitScore is immutable, so shared.
    key = (id(playbook), *(tuple(v) if isinstance(v, list) else v
                           for v in firmographics.__dict__.values()))  # fmt: skip
    kept = _FITS.get(key)
    if kept is not None and kept[0] is playbook:
        return kept[1]
    fit = scoring.fit(firmographics, playbook)
    _FITS[key] = (playbook, fit)
    if len(_FITS) > _FITS_KEPT:
        _FITS.popitem(last=False)
    return fit


def _summarize(tp: Envelope) -> TouchpointSummary:
    content_id = tp.context.content_id
    if content_id is None and isinstance(tp, ContentDownloaded):
        content_id = tp.properties.content_id
    return TouchpointSummary(
        event_id=tp.event_id,
        type=tp.type,
        occurred_at=tp.occurred_at,
        source=tp.source,
        channel=attributed_channel(tp.context),
        campaign_id=attributed_campaign(tp.context),
        message_id=tp.context.message_id,
        content_id=content_id,
    )


@dataclass
class FoldState:
    """The mutable state of the fold (plain Python for speed; frozen as `HorizonState`)."""

    playbook: Playbook
    guards: IdentityGuards
    stage: Stage | None = None
    cycle: int = 0
    history: list[StageChange] = field(default_factory=list)
    known: bool = False
    outbound: bool = False
    job_title: str | None = None
    company: str | None = None
    company_size: int | None = None
    industry: str | None = None
    pain_points: set[str] = field(default_factory=set)
    objections: dict[str, Objection] = field(default_factory=dict)
    campaigns: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    campaign_set: set[str] = field(default_factory=set)
    message_set: set[str] = field(default_factory=set)
    last_marketing: list[Envelope | TouchpointSummary] = field(default_factory=list)
    last_sales: list[Envelope | TouchpointSummary] = field(default_factory=list)
    identities: set[str] = field(default_factory=set)
    unsubscribed: bool = False
    score_at: datetime | None = None
    score_total: float = 0.0
    score_cycle: float = 0.0
    items: list[ScoreEntry] = field(default_factory=list)
    score_items: BreakdownCache = field(default_factory=BreakdownCache)
    """Breakdown items built so far (a cache shared by clones: values, not state)."""
    term_started_at: datetime | None = None
    term_event_id: str | None = None
    nurtured_cycles: set[int] = field(default_factory=set)
    wins: int = 0
    last_at: datetime | None = None
    triggers: list[SignalTrigger] = field(default_factory=list)
    unmatched: list[UnmatchedResponse] = field(default_factory=list)
    pinned: dict[tuple[str, str, str], PinnedTrigger] = field(default_factory=dict)
    since_horizon: Any = field(default_factory=hashlib.sha256)
    _fit: FitScore | None = None
    named: Envelope | None = None
    """The latest touchpoint stepped (since the start, not the horizon) that names an
    account: which account the retained touchpoints say, without walking them."""

    # --- resuming and freezing -------------------------------------------------------------

    @classmethod
    def start(
        cls, playbook: Playbook, horizon: HorizonState | None = None, pins: bool = True
    ) -> FoldState:
        """A fresh state, or one resumed from a compacted prefix (with its pinned signal
        facts unless `pins` is False: they were computed under another playbook)."""
        state = cls(playbook, IdentityGuards.from_playbook(playbook))
        if horizon is None:
            return state
        if pins:
            state.pinned = {_pin_key(p.trigger): p for p in horizon.pinned}
        f = horizon.firmographics
        state.stage, state.cycle = horizon.stage, horizon.cycle
        state.history = list(horizon.stage_history)
        state.known, state.outbound = horizon.known, horizon.outbound
        state.job_title, state.company = f.job_title, f.company
        state.company_size, state.industry = f.company_size, f.industry
        state.pain_points = set(f.pain_points)
        state.objections = {o.category: o for o in horizon.open_objections}
        state.campaigns, state.messages = list(horizon.campaigns), list(horizon.messages)
        state.campaign_set, state.message_set = set(state.campaigns), set(state.messages)
        state.last_marketing = list(horizon.last_marketing)
        state.last_sales = list(horizon.last_sales)
        state.identities = set(horizon.identities)
        state.unsubscribed = horizon.unsubscribed
        # The running sums go on from the frozen ones: the same operations as an unbroken fold.
        state.score_at = horizon.carry_at
        state.score_total, state.score_cycle = horizon.carry, horizon.cycle_carry
        state.term_started_at, state.term_event_id = horizon.term_started_at, horizon.term_event_id
        state.nurtured_cycles = set(horizon.nurtured_cycles)
        state.wins, state.last_at = horizon.wins, horizon.last_at
        state.triggers = list(horizon.triggers)
        state.unmatched = list(horizon.unmatched_responses)
        return state

    def clone(self) -> FoldState:
        """A copy to step further, sharing nothing mutable with this one (O(retained) pointer
        copies at most; the touchpoints, triggers and other immutable values are shared)."""
        twin = object.__new__(FoldState)
        twin.__dict__.update(self.__dict__)
        twin.history, twin.triggers = list(self.history), list(self.triggers)
        twin.unmatched = list(self.unmatched)
        twin.pain_points, twin.objections = set(self.pain_points), dict(self.objections)
        twin.campaigns, twin.messages = list(self.campaigns), list(self.messages)
        twin.campaign_set, twin.message_set = set(self.campaign_set), set(self.message_set)
        twin.last_marketing, twin.last_sales = list(self.last_marketing), list(self.last_sales)
        twin.identities, twin.items = set(self.identities), list(self.items)
        twin.nurtured_cycles = set(self.nurtured_cycles)
        twin.since_horizon = self.since_horizon.copy()
        return twin

    def freeze(self) -> HorizonState:
        """The state as a serialisable `HorizonState` (the running engagement sums as they
        stand: `carry` and `cycle_carry` as of `carry_at`, the last touchpoint with points)."""
        return HorizonState(
            stage=self.stage,
            cycle=self.cycle,
            stage_history=self.history,
            known=self.known,
            outbound=self.outbound,
            firmographics=self.firmographics(),
            open_objections=self.open_objections(),
            campaigns=self.campaigns,
            messages=self.messages,
            last_marketing=[summarize(t) for t in self.last_marketing],
            last_sales=[summarize(t) for t in self.last_sales],
            identities=by_strength(self.identities),
            unsubscribed=self.unsubscribed,
            carry_at=self.score_at,
            carry=self.score_total,
            cycle_carry=self.score_cycle,
            term_started_at=self.term_started_at,
            term_event_id=self.term_event_id,
            nurtured_cycles=sorted(self.nurtured_cycles),
            wins=self.wins,
            last_at=self.last_at,
            triggers=self.triggers,
            unmatched_responses=self.unmatched,
        )

    def fingerprint(self) -> str:
        """Which touchpoints were folded since the horizon (event ids, in order)."""
        return str(self.since_horizon.hexdigest())

    # --- derived values --------------------------------------------------------------------

    def firmographics(self) -> Firmographics:
        """The latest non-empty firmographic fields; pain points are the union."""
        return Firmographics(
            job_title=self.job_title,
            company=self.company,
            company_size=self.company_size,
            industry=self.industry,
            pain_points=sorted(self.pain_points),
        )

    def fit(self) -> FitScore:
        """Fit as of the current touchpoint (cached until firmographics change)."""
        if self._fit is None:
            self._fit = _fit_of(self.firmographics(), self.playbook)
        return self._fit

    def open_objections(self) -> list[Objection]:
        """Objections raised and not yet answered by a won deal, oldest first."""
        return sorted(self.objections.values(), key=lambda o: (o.raised_at, o.event_id))

    def engagement(self, at: datetime, cycle_only: bool) -> float:
        """Engagement as of `at`: all of it, or only since the current cycle began.

        The running sum as of the last touchpoint with points, decayed to `at` (O(1))."""
        total = self.score_cycle if cycle_only else self.score_total
        if self.score_at is None or not total:
            return 0.0
        half_life = self.playbook.scoring.half_life_days
        return scoring.decayed(total, (at - self.score_at).total_seconds(), half_life)

    def _score(self, at: datetime, points: float) -> None:
        # Σ points × 0.5^((T − t) / half_life) as a running sum: decay the sum to this
        # touchpoint, then add its points. A recycle starts the cycle's sum afresh (`_enter`).
        if self.score_at is not None:
            half_life = self.playbook.scoring.half_life_days
            factor = scoring.decay_factor((at - self.score_at).total_seconds(), half_life)
            self.score_total, self.score_cycle = (
                self.score_total * factor + points,
                self.score_cycle * factor + points,
            )
        else:
            self.score_total, self.score_cycle = points, points
        self.score_at = at

    def engagement_score(
        self, at: datetime | None, again: bool = False, listed: bool = True
    ) -> EngagementScore:
        """The published engagement score with its breakdown, as of `at`; `again`: asked
        again and again as the journey goes on (its snapshot), so the breakdown is kept;
        not `listed`: its breakdown left empty (written apart, `breakdown_json`)."""
        half_life = self.playbook.scoring.half_life_days
        if at is None:
            return EngagementScore(score=0.0, cycle_score=0.0, half_life_days=half_life)
        score = self.engagement(at, cycle_only=False)
        shown = self.listed_items()
        # What the breakdown does not list (compacted touchpoints, and retained ones before the
        # listed): the score less the listed, so that the published parts add up to the score.
        carried = score - math.fsum(
            scoring.decayed(points, (at - t).total_seconds(), half_life) for t, points, *_ in shown
        )
        evaluate = breakdown if again else evaluate_once
        items = evaluate(shown, at, half_life, self.score_items) if listed else []
        return trusted(
            EngagementScore,
            score=round(score, 2),
            cycle_score=round(self.engagement(at, cycle_only=True), 2),
            as_of=at,
            half_life_days=float(half_life),
            carried=round(carried, 3) + 0.0,  # + 0.0: a float error's -0.0 is written as 0.0
            breakdown=items,
        )

    def listed_items(self) -> list[ScoreEntry]:
        """The touchpoints with points that a breakdown lists: the latest `BREAKDOWN_LISTED`."""
        return self.items[-BREAKDOWN_LISTED:]

    # --- the step --------------------------------------------------------------------------

    def step(self, tp: Envelope) -> None:
        """Fold one touchpoint (touchpoints must come in (occurred_at, event_id) order)."""
        at = tp.occurred_at
        self.last_at = at
        self.since_horizon.update(tp.event_id.encode() + b"\n")
        if tp.identity is not None and tp.identity.account_id is not None:
            self.named = tp
        if tp.type in LEDGER_TYPES or tp.identity is None:
            # Spend and cost are about campaigns, not a person: aggregates only.
            if tp.identity is not None:
                self.identities.update(self.guards.linkable(tp.identity.identifiers()))
            return
        identity = tp.identity
        self.identities.update(self.guards.linkable(identity.identifiers()))
        if identity.email or identity.contact_id:
            self.known = True
        points = self.playbook.scoring.points.get(tp.type, 0.0)
        if points:
            self.items.append((at, points, tp.event_id, tp.type, self.cycle))
            self._score(at, points)
        recent = self.last_marketing if tp.domain == "marketing" else self.last_sales
        recent.append(tp)
        del recent[:-RECENT_PER_DOMAIN]
        context = tp.context
        campaign = attributed_campaign(context)
        if campaign and campaign not in self.campaign_set:
            self.campaign_set.add(campaign)
            self.campaigns.append(campaign)
        if context.message_id and context.message_id not in self.message_set:
            self.message_set.add(context.message_id)
            self.messages.append(context.message_id)
        fit_changed = self._facts(tp)

        stage_before = self.stage
        moved = None
        if self._answers_current_handoff(tp):
            moved = stages.transition(
                self.stage, tp, stages.Facts(self.known, self.outbound), self.playbook
            )
        if moved is not None:
            self._enter(moved[0], tp, moved[1])

        if points > 0 or fit_changed or self.stage != stage_before:
            # Engagement only grows on positive points, and fit only changes with
            # firmographics: elsewhere neither rule can start to hold, so skip the sums.
            self._check_mql(tp)
            self._check_engaged(tp)
        self._check_churn_risk(tp)

    def _answers_current_handoff(self, tp: Envelope) -> bool:
        """Closed loop by id: an accept or reject applies only to the hand-off it names — this
        cycle's, under any customer id the journey has had (any version of it). Anything else
        is recorded as unmatched and moves nothing. Other touchpoints: always True."""
        if not isinstance(tp, HandoffAccepted | HandoffRejected):
            return True
        named = tp.properties.signal_id
        identifiers = self.identities.union(tp.identity.identifiers() if tp.identity else ())
        customers = {customer_id_for(i) for i in identifiers}
        cycles = {
            t.cycle
            for t in self.triggers
            if t.rule == "handoff" and any(signal_id(c, "handoff", t.key) == named
                                           for c in customers)
        }  # fmt: skip
        if self.cycle in cycles:
            return True
        self.unmatched.append(
            UnmatchedResponse(
                event_id=tp.event_id,
                type=tp.type,
                signal_id=named,
                at=tp.occurred_at,
                reason="stale" if cycles else "unknown",
            )
        )
        return False

    def _check_churn_risk(self, tp: Envelope) -> None:
        # A customer who complains is a renewal at risk: marketing and the account owner act
        # now, not at renewal time. Keyed by the event, so each warning is its own signal.
        if self.stage != Stage.CUSTOMER:
            return
        if isinstance(tp, FeedbackRecorded):
            nps = tp.properties.nps
            if nps is not None and nps <= DETRACTOR_MAX_NPS:
                reason = f"churn risk: detractor NPS {nps} from a customer"
                self._capture("nurture.churn_risk", f"nps:{tp.event_id}", tp, reason)
        elif isinstance(tp, ObjectionRaised):
            reason = f"churn risk: a customer raised a {tp.properties.category} objection"
            self._capture("nurture.churn_risk", f"objection:{tp.event_id}", tp, reason)

    def _facts(self, tp: Envelope) -> bool:
        """Firmographics, objections, unsubscribe, contract term; True if fit may change."""
        fit_changed = False
        if isinstance(tp, FormSubmitted | ProspectAdded | Identified):
            p = tp.properties
            for name in ("job_title", "company", "company_size", "industry"):
                value = getattr(p, name)
                if value is not None and value != getattr(self, name):
                    setattr(self, name, value)
                    fit_changed = True
            new_pains = {pain.strip().lower() for pain in p.pain_points} - self.pain_points
            if new_pains:
                self.pain_points |= new_pains
                fit_changed = True
        elif isinstance(tp, FeedbackRecorded):
            new_pains = {pain.strip().lower() for pain in tp.properties.pain_points}
            if new_pains - self.pain_points:
                self.pain_points |= new_pains
                fit_changed = True
        elif isinstance(tp, ObjectionRaised):
            self.objections[tp.properties.category] = Objection(
                category=tp.properties.category,
                event_id=tp.event_id,
                raised_at=tp.occurred_at,
                note=tp.properties.note,
            )
        elif tp.type == "marketing.unsubscribed":
            self.unsubscribed = True
        elif tp.type == "sales.deal_won":
            self.objections.clear()  # a won deal answers every objection
            self.term_started_at, self.term_event_id = tp.occurred_at, tp.event_id
        elif tp.type == "sales.renewed":
            self.term_started_at, self.term_event_id = tp.occurred_at, tp.event_id
        if fit_changed:
            self._fit = None
        return fit_changed

    def _enter(self, stage: Stage, tp: Envelope, reason: str) -> None:
        previous = self.stage
        if stage == Stage.RECYCLED:
            self.cycle += 1
            self.score_cycle = 0.0
        if tp.type == "sales.prospect_added" and previous in stages.BEFORE_LEAD:
            self.outbound = True
        self.stage = stage
        # Built unvalidated: every field is already of its type (an aware event time, a Stage,
        # a cycle ≥ 0), and refolds make thousands of these.
        self.history.append(
            trusted(
                StageChange,
                stage=stage,
                entered_at=tp.occurred_at,
                cause_event_id=tp.event_id,
                reason=reason,
                cycle=self.cycle,
            )
        )
        if stage in (Stage.RECYCLED, Stage.DISQUALIFIED):
            # Keyed by stage too: a disqualification and a recycle may share a cycle.
            self._capture("nurture.recycled", f"{self.cycle}:{stage}", tp, reason)
        elif stage == Stage.CUSTOMER and tp.type == "sales.deal_won":
            self.wins += 1
            self._capture(
                "nurture.onboarding", f"win{self.wins}", tp, "deal won: onboard the new customer"
            )

    def _check_mql(self, tp: Envelope) -> None:
        if self.stage not in stages.MQL_FROM:
            return
        rule = self.playbook.mql_rule
        fit = self.fit()
        if fit.score < rule.min_fit:
            return
        engagement = self.engagement(tp.occurred_at, cycle_only=True)
        if engagement < rule.min_engagement:
            return
        reason = (
            f"engagement {engagement:.2f} ≥ {rule.min_engagement:g} and fit {fit.score:.2f} ≥ "
            f"{rule.min_fit:g} ({fit.persona})"
        )
        self._enter(Stage.MQL, tp, reason)
        self._capture("handoff", str(self.cycle), tp, reason)

    def _check_engaged(self, tp: Envelope) -> None:
        if self.stage not in ENGAGED_FROM or self.cycle in self.nurtured_cycles:
            return
        floor = self.playbook.nurture.engagement_floor
        engagement = self.engagement(tp.occurred_at, cycle_only=True)
        if engagement >= floor:
            self.nurtured_cycles.add(self.cycle)
            reason = (
                f"engaged (engagement {engagement:.2f} ≥ {floor:g}) but not sales-ready "
                f"(fit {self.fit().score:.2f})"
            )
            self._capture("nurture.engaged", str(self.cycle), tp, reason)

    def _capture(self, rule: TriggerRule, key: str, tp: Envelope, reason: str) -> None:
        assert self.stage is not None
        # A rule can fire twice under the same key (disqualified, re-engaged, disqualified
        # again in one cycle): number the repeats so every signal keeps its own id.
        repeats = sum(1 for t in self.triggers if t.rule == rule and t.key.split("#")[0] == key)
        if repeats:
            key = f"{key}#{repeats + 1}"
        pin = self.pinned.get((rule, key, tp.event_id))
        if pin is not None and pin.fingerprint == self.fingerprint():
            # Same inputs since the horizon: the facts computed before compaction still hold.
            self.triggers.append(pin.trigger)
            return
        inputs = self._capture_inputs(tp, reason)
        kept = _TRIGGERS.get((rule, key, tp.event_id))
        if kept is not None and kept[0] is self.playbook and kept[1] is tp and kept[2] == inputs:
            self.triggers.append(kept[3])
            return
        # Unvalidated (`trusted`): every value below is of its field's type and freshly made.
        trigger = trusted(
            SignalTrigger,
            rule=rule,
            key=key,
            cycle=self.cycle,
            event_id=tp.event_id,
            at=tp.occurred_at,
            stage=self.stage,
            reason=reason,
            identities=by_strength(self.identities),
            engagement=self.engagement_score(tp.occurred_at),
            fit=self.fit(),
            firmographics=self.firmographics(),
            last_marketing=[summarize(t) for t in self.last_marketing],
            last_sales=[summarize(t) for t in self.last_sales],
            campaigns=list(self.campaigns),
            messages=list(self.messages),
            open_objections=self.open_objections(),
            unsubscribed=self.unsubscribed,
        )
        self.triggers.append(trigger)
        _TRIGGERS[(rule, key, tp.event_id)] = (self.playbook, tp, inputs, trigger)
        if len(_TRIGGERS) > _TRIGGERS_KEPT:
            _TRIGGERS.popitem(last=False)

    def _capture_inputs(self, tp: Envelope, reason: str) -> tuple[Any, ...]:
        """Everything a trigger's facts are made of besides the playbook and the touchpoint:
        equal inputs make an equal trigger. Touchpoints by the very object (their ids, kept
        alive by the entry's touchpoint lists); objections by value, offsets included."""
        return (
            self.cycle, self.stage, reason, frozenset(self.identities),
            self.score_at, self.score_total, self.score_cycle,
            tuple(self.items), self.job_title, self.company, self.company_size, self.industry,
            frozenset(self.pain_points), tuple(map(id, self.last_marketing)),
            tuple(map(id, self.last_sales)), tuple(self.last_marketing), tuple(self.last_sales),
            tuple(self.campaigns), tuple(self.messages), self.unsubscribed,
            tuple((o.category, o.event_id, o.raised_at, o.raised_at.utcoffset(), o.note)
                  for o in self.objections.values()),
        )  # fmt: skip


_TRIGGERS: OrderedDict[
    tuple[str, str, str], tuple[Playbook, Envelope, tuple[Any, ...], SignalTrigger]
] = OrderedDict()
_TRIGGERS_KEPT = 16384
"""Triggers captured lately, by rule, key and event: a refold from a checkpoint (a late
touchpoint) captures the same facts again at the same touchpoints, and reusing the very
trigger object also keeps the signal built from it (`signals._desired`)."""


def _pin_key(trigger: SignalTrigger) -> tuple[str, str, str]:
    return (trigger.rule, trigger.key, trigger.event_id)


def pin_triggers(
    triggers: list[SignalTrigger], kept: Sequence[Envelope], horizon: tuple[datetime, str]
) -> list[PinnedTrigger]:
    """Pin the facts of the signals triggered after a new horizon, before compaction."""
    pins: list[PinnedTrigger] = []
    hasher = hashlib.sha256()
    position = 0
    for trigger in triggers:
        if (trigger.at, trigger.event_id) <= horizon:
            continue
        while position < len(kept) and kept[position].order_key <= (trigger.at, trigger.event_id):
            hasher.update(kept[position].event_id.encode() + b"\n")
            position += 1
        pins.append(PinnedTrigger(fingerprint=hasher.hexdigest(), trigger=trigger))
    return pins


def run(
    touchpoints: Sequence[Envelope],
    playbook: Playbook,
    horizon: HorizonState | None = None,
    pins: bool = True,
) -> FoldState:
    """Fold touchpoints (already in order) from the start or from a compacted horizon."""
    state = FoldState.start(playbook, horizon, pins)
    for tp in touchpoints:
        state.step(tp)
    return state
