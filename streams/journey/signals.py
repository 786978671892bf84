"""Signals: the desired set, derived from a journey's state, reconciled against what was emitted.

Event-driven signals (hand-off, nurture on engaged / recycled / onboarding) are a *desired set*
computed from the fold's `SignalTrigger`s. `reconcile` diffs it against the record's signal
ledger:

* desired, not in the ledger → emitted as version 1 (if a signal for the same rule and key was
  active under a former customer id — the journey moved — the old one is marked superseded and
  the new one names it in `supersedes`);
* desired, content changed (or previously revoked) → the ledger takes the new content; it is
  re-emitted with version + 1 only if something *material* changed (`material_hash`), and a
  correction within the settle window (`signals.settle_minutes`, in the journey's event time)
  is held (`owed`) and sent once when the window closes;
* in the ledger, active, no longer desired → a hand-off is revoked (`handoff_revoked`, same id,
  version + 1); a nurture is withdrawn (`nurture_withdrawn`), both subject to the same window.

Applying the same state twice produces nothing: reconciliation is idempotent. The content hash
leaves out `version`, `supersedes` and `playbook_version`, so re-deploying the same rules under
a new playbook version does not re-send every signal.

Timer signals (SLA breach and escalation, stalled-journey nurture, upsell and renewal
reminders) are computed by `timer_candidates` with their deadlines; `evaluate_timers` emits the
due ones. Their ids are deterministic and remembered in the ledger, so re-evaluating timers
after a restart never duplicates them.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Literal, TypedDict

from schemas.journey import (
    LedgerEntry,
    Objection,
    SignalStatus,
    SignalTrigger,
    Stage,
)
from schemas.playbook import ContentItem, Playbook
from schemas.signals import (
    HandoffRevokedSignal,
    HandoffSignal,
    HandoffSlaBreachedSignal,
    HandoffSlaEscalatedSignal,
    NurtureSignal,
    NurtureWithdrawnSignal,
    Signal,
    SignalBase,
)
from streams.journey.fold import FoldState
from streams.journey.identity import signal_id as signal_id

TimerNurtureRule = Literal["nurture.stalled", "nurture.upsell", "nurture.renewal"]

_STATUS_RANK = {"active": 0, "superseded": 1, "withdrawn": 2, "revoked": 3}


def content_hash(signal: SignalBase) -> str:
    """A hash of what the signal says (not of its version or bookkeeping)."""
    # Fields serialise in declaration order, so this JSON is canonical for a model.
    text = signal.model_dump_json(exclude={"version", "supersedes", "playbook_version"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recommend(
    playbook: Playbook,
    stage: Stage,
    objections: Iterable[Objection] = (),
    track_content: Iterable[str] = (),
) -> list[ContentItem]:
    """Content to send: the track's, then the stage's, then one set per open objection."""
    catalogue = _catalogue(playbook)
    chosen: dict[str, ContentItem] = {}
    for content_id in track_content:
        if content_id in catalogue:
            chosen.setdefault(content_id, catalogue[content_id])
    groups = [playbook.content.stages.get(stage, [])]
    groups += [playbook.content.objections.get(o.category, []) for o in objections]
    for group in groups:
        for item in group:
            chosen.setdefault(item.id, item)
    return list(chosen.values())


_CATALOGUES: dict[int, tuple[Playbook, dict[str, ContentItem]]] = {}


def _catalogue(playbook: Playbook) -> dict[str, ContentItem]:
    # Asked for every signal built: kept by the very (immutable) playbook, held so its id
    # cannot be reused; a process sees one or two playbooks.
    kept = _CATALOGUES.get(id(playbook))
    if kept is None or kept[0] is not playbook:
        if len(_CATALOGUES) > 16:
            _CATALOGUES.clear()
        kept = _CATALOGUES[id(playbook)] = (playbook, playbook.content.items())
    return kept[1]


@dataclass(frozen=True)
class Desired:
    """A signal the journey should have emitted, with the rule and key it belongs to (and its
    `content_hash`, which version and supersedes leave unchanged)."""

    signal: Signal
    rule: str
    key: str
    content: str = ""

    def __post_init__(self) -> None:
        if not self.content:
            object.__setattr__(self, "content", content_hash(self.signal))


def _from_trigger(trigger: SignalTrigger, customer_id: str, playbook: Playbook) -> Desired | None:
    sid = signal_id(customer_id, trigger.rule, trigger.key)
    common = {
        "signal_id": sid,
        "customer_id": customer_id,
        "identities": trigger.identities,
        "occurred_at": trigger.at,
        "playbook_version": playbook.version,
        "cycle": trigger.cycle,
        "trigger_event_id": trigger.event_id,
        "stage": trigger.stage,
        "reason": trigger.reason,
        "open_objections": trigger.open_objections,
    }
    if trigger.rule == "handoff":
        handoff = HandoffSignal(
            **common,
            engagement=trigger.engagement,
            fit=trigger.fit,
            persona=trigger.fit.persona,
            firmographics=trigger.firmographics,
            last_marketing=trigger.last_marketing,
            last_sales=trigger.last_sales,
            campaigns=trigger.campaigns,
            messages=trigger.messages,
            # An MQL's next step is sales acceptance: give sales what works at that step.
            recommended_content=recommend(playbook, Stage.SAL, trigger.open_objections),
        )
        return Desired(handoff, trigger.rule, trigger.key)
    track_name = trigger.rule.split(".", 1)[1]
    track = playbook.nurture.tracks[track_name]
    if track.channel == "email" and trigger.unsubscribed:
        return None  # unsubscribed: no email nurture
    nurture = NurtureSignal(
        **common,
        rule=trigger.rule,
        track=track_name,
        channel=track.channel,
        recommended_content=recommend(
            playbook, trigger.stage, trigger.open_objections, track.content
        ),
    )
    return Desired(nurture, trigger.rule, trigger.key)


_DESIRED: OrderedDict[tuple[int, str, int], tuple[SignalTrigger, Playbook, Desired | None]] = (
    OrderedDict()
)
_DESIRED_KEPT = 8192


def _desired(trigger: SignalTrigger, customer_id: str, playbook: Playbook) -> Desired | None:
    # A pure function of immutable values, asked again on every change of the journey: kept
    # by the very trigger and playbook objects (held, so their ids cannot be reused).
    key = (id(trigger), customer_id, id(playbook))
    kept = _DESIRED.get(key)
    if kept is not None and kept[0] is trigger and kept[1] is playbook:
        with suppress(KeyError):  # dropped meanwhile by another thread
            _DESIRED.move_to_end(key)
        return kept[2]
    desired = _from_trigger(trigger, customer_id, playbook)
    _DESIRED[key] = (trigger, playbook, desired)
    if len(_DESIRED) > _DESIRED_KEPT:
        _DESIRED.popitem(last=False)
    return desired


def desired_signals(state: FoldState, customer_id: str, playbook: Playbook) -> list[Desired]:
    """Every event-driven signal the journey's touchpoints call for, in time order."""
    found = [_desired(t, customer_id, playbook) for t in state.triggers]
    return sorted(
        (d for d in found if d is not None),
        key=lambda d: (d.signal.occurred_at, d.signal.signal_id),
    )


def _entry(
    signal: Signal,
    rule: str,
    key: str,
    origin: Literal["event", "timer"],
    content: str | None = None,
    sent: str = "",
    sent_at: datetime | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        signal_id=signal.signal_id,
        signal_type=signal.signal_type,
        rule=rule,
        key=key,
        version=signal.version,
        content_hash=content or content_hash(signal),
        origin=origin,
        occurred_at=signal.occurred_at,
        sent=sent,
        sent_at=sent_at,
    )


# --- signal hygiene: what is material, and the settle window ---------------------------------

REVOKED: SignalStatus = "revoked"
WITHDRAWN: SignalStatus = "withdrawn"


def _band(value: float, thresholds: Iterable[float]) -> int:
    return bisect.bisect_right(sorted(thresholds), value)


def material_hash(signal: Signal, playbook: Playbook) -> str:
    """What about a signal is worth sending again when it changes.

    A hand-off: its stage, open objections, persona, and which side of each score threshold
    (the MQL rule's and `signals.handoff_score_thresholds`) its scores fall. A nurture: its
    track, channel and recommended content. Anything else: all of its content."""
    parts: dict[str, object]
    if isinstance(signal, HandoffSignal):
        extra = playbook.signals.handoff_score_thresholds
        parts = {
            "stage": signal.stage,
            "objections": sorted(o.category for o in signal.open_objections),
            "persona": signal.persona,
            "engagement": _band(
                signal.engagement.cycle_score,
                [playbook.mql_rule.min_engagement, *extra.engagement],
            ),
            "fit": _band(signal.fit.score, [playbook.mql_rule.min_fit, *extra.fit]),
        }
    elif isinstance(signal, NurtureSignal):
        parts = {
            "track": signal.track,
            "channel": signal.channel,
            "content": [item.id for item in signal.recommended_content],
        }
    else:
        return content_hash(signal)
    return _parts_hash(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in parts.items()))


@lru_cache(maxsize=4096)
def _parts_hash(parts: tuple[tuple[str, object], ...]) -> str:
    # A few distinct values (stage, persona, bands, track, content): hashed once each.
    text = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sent_active(entry: LedgerEntry) -> bool:
    """Whether the receivers hold this signal as in force (its last send was no take-back)."""
    if entry.status == "superseded":
        return False
    if entry.sent:
        return entry.sent not in (REVOKED, WITHDRAWN)
    return entry.status == "active"


def _settle(
    truth: LedgerEntry,
    material: str,
    build: Callable[[int, datetime | None], Signal],
    previous: LedgerEntry,
    stream_at: datetime,
    settle: timedelta,
) -> tuple[LedgerEntry, Signal | None]:
    """`truth` (the ledger entry as the journey now calls for it, `material` what about it
    matters) against what was last sent: nothing to send, a correction held in the settle
    window (`owed`), or the correction built with the next version."""
    if previous.sent:
        changed = material != previous.sent
    else:  # an entry from before hygiene: any change of content or status was sent
        changed = (truth.status, truth.content_hash) != (previous.status, previous.content_hash)
    if not changed:
        return truth.model_copy(update={"owed": False, "sent": previous.sent or material}), None
    held = previous.sent_at is not None and stream_at < previous.sent_at + settle
    # A signal taken back and called for again goes out at once: receivers hold nothing.
    if held and _sent_active(previous):
        return truth.model_copy(update={"owed": True}), None
    # A held take-back is stamped with the close of its window, whoever closes it (a timer
    # or a later touchpoint): the same signal, live or replayed.
    closed = previous.sent_at + settle if previous.owed and previous.sent_at else None
    signal = build(previous.version + 1, closed)
    sent = truth.model_copy(
        update={
            "version": signal.version,
            "signal_type": signal.signal_type,
            "sent": material,
            "sent_at": stream_at,
            "owed": False,
        }
    )
    return sent, signal


def reconcile(
    ledger: dict[str, LedgerEntry],
    desired: list[Desired],
    customer_id: str,
    identities: list[str],
    playbook: Playbook,
    at: datetime,
    stream_at: datetime | None = None,
) -> tuple[dict[str, LedgerEntry], list[Signal]]:
    """Diff the desired event-driven signals against the ledger: the new ledger and what to
    emit. `at` is the event time of whatever caused this evaluation (stamped on revocations
    and withdrawals); `stream_at` the journey's event time (its latest touchpoint, or a
    timer's `now`), which closes settle windows (default: `at`).

    The ledger always holds the truth (status and content hash as the touchpoints call for);
    what is sent follows it only for material changes (`material_hash`), and a correction of
    a signal sent less than `signals.settle_minutes` before (in the journey's event time) is
    held (`owed`) and sent once the window has closed — by a later touchpoint or a timer.
    """
    stream = stream_at or at
    settle = timedelta(minutes=playbook.signals.settle_minutes)
    updated = dict(ledger)
    out: list[Signal] = []
    if len({d.signal.signal_id for d in desired}) != len(desired):
        raise ValueError("two desired signals share an id: trigger keys must be unique")
    wanted = {(d.rule, d.key) for d in desired}
    desired_ids = {d.signal.signal_id for d in desired}
    for d in desired:
        current = ledger.get(d.signal.signal_id)
        if current is None:
            out.append(_first_send(updated, ledger, d, desired_ids, playbook, stream))
            continue
        if current.status == "active" and current.content_hash == d.content and not current.owed:
            continue
        truth = current.model_copy(
            update={"status": "active", "content_hash": d.content,
                    "occurred_at": d.signal.occurred_at}
        )  # fmt: skip
        material = material_hash(d.signal, playbook)
        build = partial(_versioned, d.signal)
        entry, signal = _settle(truth, material, build, current, stream, settle)
        updated[entry.signal_id] = entry
        out += [signal] if signal is not None else []
    gone = [e for e in ledger.values() if e.origin == "event" and e.signal_id not in desired_ids]
    for entry in sorted(gone, key=lambda e: (e.occurred_at, e.signal_id)):
        if updated[entry.signal_id].status == "superseded":
            continue
        if (entry.rule, entry.key) in wanted and _sent_active(updated[entry.signal_id]):
            # Re-issued under the journey's current customer id.
            updated[entry.signal_id] = entry.model_copy(
                update={"status": "superseded", "owed": False}
            )
        elif entry.status not in (REVOKED, WITHDRAWN) or entry.owed:
            taken, signal = _take_back(entry, customer_id, identities, playbook, at, stream,
                                       settle)  # fmt: skip
            updated[entry.signal_id] = taken
            out += [signal] if signal is not None else []
    return updated, out


def _versioned(signal: Signal, version: int, _closed: datetime | None) -> Signal:
    return signal.model_copy(update={"version": version})


def _first_send(
    updated: dict[str, LedgerEntry],
    ledger: dict[str, LedgerEntry],
    d: Desired,
    desired_ids: set[str],
    playbook: Playbook,
    stream: datetime,
) -> Signal:
    # A signal for the same rule and key in force under a former customer id (the journey
    # moved) is superseded by this one, which names it.
    former = sorted(
        e.signal_id
        for e in ledger.values()
        if e.origin == "event" and _sent_active(e) and e.rule == d.rule and e.key == d.key
        and e.signal_id not in desired_ids
    )  # fmt: skip
    for old in former:
        updated[old] = updated[old].model_copy(update={"status": "superseded", "owed": False})
    signal = d.signal
    if former:
        signal = signal.model_copy(update={"supersedes": former})
    material = material_hash(signal, playbook)
    updated[signal.signal_id] = _entry(signal, d.rule, d.key, "event", d.content, material, stream)
    return signal


def _take_back(
    entry: LedgerEntry,
    customer_id: str,
    identities: list[str],
    playbook: Playbook,
    at: datetime,
    stream: datetime,
    settle: timedelta,
) -> tuple[LedgerEntry, Signal | None]:
    """A signal no longer called for: a hand-off is revoked, a nurture withdrawn (sent as
    such, unless it comes back within the settle window)."""
    handoff = entry.signal_type in ("handoff", "handoff_revoked")
    status = REVOKED if handoff else WITHDRAWN

    def build(version: int, closed: datetime | None) -> Signal:
        base = _retraction(entry, version, customer_id, identities, closed or at, playbook)
        if handoff:
            return HandoffRevokedSignal(
                **base,
                reason=f"the lead no longer qualifies as an MQL in cycle {base['cycle']} "
                "(a late touchpoint changed the journey)",
            )
        return NurtureWithdrawnSignal(**base, rule=entry.rule, reason=_withdrawal_reason(entry))

    truth = entry.model_copy(update={"status": status})
    return _settle(truth, status, build, entry, stream, settle)


class _Retraction(TypedDict):
    """The fields a revocation and a withdrawal share."""

    signal_id: str
    version: int
    customer_id: str
    identities: list[str]
    occurred_at: datetime
    playbook_version: str
    cycle: int


def _retraction(
    entry: LedgerEntry,
    version: int,
    customer_id: str,
    identities: list[str],
    occurred_at: datetime,
    playbook: Playbook,
) -> _Retraction:
    """Which signal is taken back (at which version), whose, when, and in which cycle
    (the leading number of the ledger entry's key; 0 when it has none)."""
    head = entry.key.split("#")[0].split(":")[0]
    return _Retraction(
        signal_id=entry.signal_id,
        version=version,
        customer_id=customer_id,
        identities=identities,
        occurred_at=occurred_at,
        playbook_version=playbook.version,
        cycle=int(head) if head.isdigit() else 0,
    )


def _withdrawal_reason(entry: LedgerEntry) -> str:
    if ":fell:" in entry.key:  # streams.journey.churn: a fall in engagement ends with time too
        return "churn risk withdrawn: engagement recovered (or the journey left the customer stage)"
    return f"{entry.rule} is no longer called for (a late touchpoint changed the journey)"


def owed_due(ledger: dict[str, LedgerEntry], playbook: Playbook) -> datetime | None:
    """When the first correction held in a settle window is due (None: none is owed)."""
    settle = timedelta(minutes=playbook.signals.settle_minutes)
    return min(
        (e.sent_at + settle for e in ledger.values() if e.owed and e.sent_at is not None),
        default=None,
    )


def merge_ledgers(*ledgers: dict[str, LedgerEntry]) -> dict[str, LedgerEntry]:
    """The union of ledgers; for one id, the furthest-along entry wins (a lattice join)."""
    merged: dict[str, LedgerEntry] = {}
    for ledger in ledgers:
        for signal_id_, entry in ledger.items():
            known = merged.get(signal_id_)
            if known is None or _ledger_rank(entry) > _ledger_rank(known):
                merged[signal_id_] = entry
    return dict(sorted(merged.items()))


def _ledger_rank(entry: LedgerEntry) -> tuple[int, int, str, str]:
    return (entry.version, _STATUS_RANK[entry.status], entry.content_hash, entry.model_dump_json())


# --- timers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerCandidate:
    """A timer signal and the time it becomes due."""

    due: datetime
    signal: Signal
    rule: str
    key: str


@dataclass(frozen=True)
class _Plan:
    """A timer signal before it is built: when, under which id, and what it is about."""

    due: datetime
    signal_id: str
    rule: str
    key: str
    reason: str = ""
    handoff: LedgerEntry | None = None
    hours: float = 0.0


def timer_candidates(
    state: FoldState,
    ledger: dict[str, LedgerEntry],
    customer_id: str,
    identities: list[str],
    playbook: Playbook,
) -> list[TimerCandidate]:
    """Every timer signal not emitted yet, due now or later, in due order."""
    plans = _plans(state, ledger, customer_id, playbook)
    found = [_build(p, state, customer_id, identities, playbook) for p in plans]
    return sorted(found, key=lambda c: (c.due, c.signal.signal_id))


def next_timer(
    state: FoldState, ledger: dict[str, LedgerEntry], customer_id: str, playbook: Playbook
) -> datetime | None:
    """When the first of `timer_candidates` is due (None: none), without building signals."""
    return min((p.due for p in _plans(state, ledger, customer_id, playbook)), default=None)


def _plans(
    state: FoldState, ledger: dict[str, LedgerEntry], customer_id: str, playbook: Playbook
) -> list[_Plan]:
    found = _sla_plans(state, ledger, customer_id, playbook)
    found += _nurture_plans(state, customer_id, playbook)
    return [p for p in found if p.signal_id not in ledger]


def _sla_plans(
    state: FoldState, ledger: dict[str, LedgerEntry], customer_id: str, playbook: Playbook
) -> list[_Plan]:
    found: list[_Plan] = []
    for entry in ledger.values():
        if entry.signal_type != "handoff" or entry.status != "active" or entry.origin != "event":
            continue
        # Pending while the journey still sits at MQL in the hand-off's cycle: an accept
        # (sal), a reject (recycled) or any later sales stage answers it.
        if state.stage != Stage.MQL or str(state.cycle) != entry.key:
            continue
        thresholds = [
            ("handoff_sla_breached", playbook.handoff.sla_hours),
            ("handoff_sla_escalated", playbook.handoff.escalate_after_hours),
        ]
        for rule, hours in thresholds:
            if hours is None:
                continue
            sid = signal_id(customer_id, rule, f"{entry.signal_id}:{entry.key}")
            deadline = entry.occurred_at + timedelta(hours=hours)
            found.append(_Plan(deadline, sid, rule, entry.key, handoff=entry, hours=hours))
    return found


def _nurture_plans(state: FoldState, customer_id: str, playbook: Playbook) -> list[_Plan]:
    found: list[_Plan] = []
    stage, nurture = state.stage, playbook.nurture
    if stage is None or state.last_at is None:
        return found

    def candidate(rule: TimerNurtureRule, key: str, due: datetime, reason: str) -> None:
        track = nurture.tracks[rule.split(".", 1)[1]]
        if track.channel == "email" and state.unsubscribed:
            return  # unsubscribed: no email nurture
        found.append(_Plan(due, signal_id(customer_id, rule, key), rule, key, reason))

    stall_days = nurture.stall_days.get(stage)
    if stall_days is not None:
        # Once per stage entry: a journey stalled in the same stage is nudged once.
        candidate(
            "nurture.stalled",
            f"{stage}:{len(state.history)}",
            state.last_at + timedelta(days=stall_days),
            f"no touchpoint for {stall_days:g} days in stage {stage}",
        )
    customer = nurture.customer
    if stage == Stage.CUSTOMER and state.term_started_at is not None:
        term = state.term_event_id or ""
        if customer.upsell_after_days is not None:
            candidate(
                "nurture.upsell",
                term,
                state.term_started_at + timedelta(days=customer.upsell_after_days),
                f"customer for {customer.upsell_after_days:g} days: time for expansion",
            )
        if customer.renewal_reminder_days is not None:
            days = customer.renewal_term_days - customer.renewal_reminder_days
            candidate(
                "nurture.renewal",
                term,
                state.term_started_at + timedelta(days=days),
                f"renewal due in {customer.renewal_reminder_days:g} days",
            )
    return found


def _build(
    plan: _Plan, state: FoldState, customer_id: str, identities: list[str], playbook: Playbook
) -> TimerCandidate:
    common = {
        "signal_id": plan.signal_id,
        "customer_id": customer_id,
        "identities": identities,
        "occurred_at": plan.due,
        "playbook_version": playbook.version,
        "cycle": state.cycle,
    }
    signal: Signal
    if plan.handoff is not None:
        entry = plan.handoff
        fields = {
            **common,
            "handoff_signal_id": entry.signal_id,
            "handoff_version": entry.version,
            "handoff_occurred_at": entry.occurred_at,
            "deadline": plan.due,
            "hours": plan.hours,
            "stage": Stage.MQL,
        }
        signal = (
            HandoffSlaBreachedSignal.model_validate(fields)
            if plan.rule == "handoff_sla_breached"
            else HandoffSlaEscalatedSignal.model_validate(fields)
        )
        return TimerCandidate(plan.due, signal, plan.rule, plan.key)
    assert state.stage is not None  # a nurture plan needs a stage
    name = plan.rule.split(".", 1)[1]
    track = playbook.nurture.tracks[name]
    objections = state.open_objections()
    signal = NurtureSignal(
        **common,
        rule=plan.rule,
        track=name,
        channel=track.channel,
        reason=plan.reason,
        stage=state.stage,
        trigger_event_id=None,
        open_objections=objections,
        recommended_content=recommend(playbook, state.stage, objections, track.content),
    )
    return TimerCandidate(plan.due, signal, plan.rule, plan.key)


def due_timers(candidates: list[TimerCandidate], now: datetime) -> list[TimerCandidate]:
    """The candidates due at `now`."""
    return [c for c in candidates if c.due <= now]


def timer_entry(candidate: TimerCandidate) -> LedgerEntry:
    """The ledger entry remembering an emitted timer signal."""
    return _entry(candidate.signal, candidate.rule, candidate.key, "timer")
