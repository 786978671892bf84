"""Churn risk from falling engagement: a time-dependent nurture signal on the churn-risk track.

A customer's engagement touchpoints (those the playbook's scoring gives points, since the
journey became a customer) are counted in two event-time windows ending at the journey's
evaluation time `t`: the later one (t − N, t] and the earlier one (t − 2N, t − N], N =
`nurture.customer.engagement_fall.window_days`. Engagement *falls* at `t` when the earlier window
has at least `min_touchpoints` and the later one at most `max_share` of them. From that onset the
customer is at risk until engagement *recovers*: the later window holds more than `max_share` of
the count it fell from. Silence never recovers, so a customer who stops engaging stays at risk.

While at risk, the journey calls for one `nurture.churn_risk` signal (key ``{cycle}:fell:{n}``,
one per customer stage entry) whose reason names the fall ("engagement fell from 12 to 2
touchpoints in 30 days"); it joins the event-driven desired set, so it is sent, corrected and
withdrawn by `signals.reconcile` like every nurture (material changes only, settle window,
explicit `nurture_withdrawn` on recovery).

Time is an argument. The evaluation time is the journey's event time — its latest touchpoint,
or a timer's `now` — and never earlier than the last send of this rule (`_floor`), so a late
touchpoint cannot take the journey back before a fall a timer already announced. Between
touchpoints the counts only change at a touchpoint's time + N or + 2N; with no touchpoint after
the evaluation time a fall can begin but never end, so `fall_due` (the next onset) is the only
deadline this rule needs.

The touchpoints counted are all of the journey's, compacted or not (a compacted one keeps its
type and time), so compaction never changes a fall.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.journey import LedgerEntry, Stage
from schemas.playbook import EngagementFall, Playbook
from schemas.signals import NurtureSignal
from streams.journey.fold import FoldState
from streams.journey.identity import by_strength, signal_id
from streams.journey.signals import Desired, recommend

RULE = "nurture.churn_risk"
TRACK = "churn_risk"
KEY_MARK = ":fell:"


@dataclass(frozen=True)
class Fall:
    """A fall in engagement: when it began, and the counts of both windows then."""

    onset: datetime
    before: int
    recent: int


def _customer_since(state: FoldState) -> tuple[datetime, int] | None:
    """When the current customer stay began, and its entry's index in the stage history."""
    if state.stage != Stage.CUSTOMER or not state.history:
        return None
    index = len(state.history) - 1
    while index > 0 and state.history[index - 1].stage == Stage.CUSTOMER:
        index -= 1
    return state.history[index].entered_at, index


def engagement_times(
    touchpoints: Iterable[tuple[str, datetime]], playbook: Playbook, since: datetime
) -> list[datetime]:
    """The times of the engagement touchpoints (type, time) at or after `since`, in order:
    those the playbook's scoring gives points (negative points are no engagement)."""
    points = playbook.scoring.points
    return sorted(at for kind, at in touchpoints if at >= since and points.get(kind, 0) > 0)


def customer_since(state: FoldState) -> datetime | None:
    """When the journey's current customer stay began (None: not a customer)."""
    since = _customer_since(state)
    return None if since is None else since[0]


def _walk(times: list[datetime], rule: EngagementFall) -> Iterator[tuple[datetime, Fall | None]]:
    """Every moment the counts change, in order, with the fall in force from then on."""
    window = timedelta(days=rule.window_days)
    moments = sorted({t + k * window for t in times for k in (0, 1, 2)})
    fall: Fall | None = None
    for moment in moments:
        recent = bisect.bisect_right(times, moment) - bisect.bisect_right(times, moment - window)
        earlier = bisect.bisect_right(times, moment - window)
        before = earlier - bisect.bisect_right(times, moment - 2 * window)
        if fall is None:
            if before >= rule.min_touchpoints and recent <= rule.max_share * before:
                fall = Fall(moment, before, recent)
        elif recent > rule.max_share * fall.before:
            fall = None  # recovered
        yield moment, fall


def fall_at(
    state: FoldState, times: list[datetime], playbook: Playbook, at: datetime
) -> tuple[Fall, int] | None:
    """The fall in force at `at` and the customer stay's history index, or None. `times`:
    the `engagement_times` of the customer stay."""
    rule = playbook.nurture.customer.engagement_fall
    since = _customer_since(state)
    if rule is None or since is None:
        return None
    found: Fall | None = None
    for moment, fall in _walk(times, rule):
        if moment > at:
            break
        found = fall
    return None if found is None else (found, since[1])


def _key(state: FoldState, entry: int) -> str:
    return f"{state.cycle}{KEY_MARK}{entry}"


def _sendable(state: FoldState, playbook: Playbook) -> bool:
    track = playbook.nurture.tracks[TRACK]
    return not (track.channel == "email" and state.unsubscribed)


def desired_fall(
    state: FoldState,
    times: list[datetime],
    customer_id: str,
    playbook: Playbook,
    at: datetime,
) -> Desired | None:
    """The churn-risk signal the journey calls for at `at` (its event time), or None."""
    found = fall_at(state, times, playbook, at)
    if found is None or not _sendable(state, playbook):
        return None
    fall, entry = found
    rule = playbook.nurture.customer.engagement_fall
    assert rule is not None  # a fall needs the rule
    key = _key(state, entry)
    track = playbook.nurture.tracks[TRACK]
    objections = state.open_objections()
    signal = NurtureSignal(
        signal_id=signal_id(customer_id, RULE, key),
        customer_id=customer_id,
        identities=by_strength(state.identities),
        occurred_at=fall.onset,
        playbook_version=playbook.version,
        cycle=state.cycle,
        trigger_event_id=None,
        stage=Stage.CUSTOMER,
        reason=f"churn risk: engagement fell from {fall.before} to {fall.recent} touchpoints "
        f"in {rule.window_days:g} days",
        open_objections=objections,
        rule=RULE,
        track=TRACK,
        channel=track.channel,
        recommended_content=recommend(playbook, Stage.CUSTOMER, objections, track.content),
    )
    return Desired(signal, RULE, key)


def fall_due(
    state: FoldState, times: list[datetime], ledger: dict[str, LedgerEntry], playbook: Playbook
) -> datetime | None:
    """When engagement will next fall with no new touchpoint (None: it already has — the
    signal is in force — it cannot, or the rule is off): the deadline a timer re-evaluates the
    journey at. Judged from the latest touchpoint: with none after it, a fall, once begun, lasts."""
    rule = playbook.nurture.customer.engagement_fall
    since = _customer_since(state)
    if rule is None or since is None or state.last_at is None or not _sendable(state, playbook):
        return None
    key = _key(state, since[1])
    if any(e.rule == RULE and e.key == key and e.status == "active" for e in ledger.values()):
        return None
    now = state.last_at
    current: Fall | None = None
    for moment, fall in _walk(times, rule):
        if moment <= now:
            current = fall
        elif current is not None:
            return None  # at risk already: only a touchpoint can change that
        elif fall is not None:
            return moment
    return None
