"""Signal hygiene: only material changes are sent again, withdrawals are explicit, and the
corrections of one signal within the settle window are coalesced into one."""

from __future__ import annotations

from datetime import timedelta

from schemas.signals import (
    HandoffRevokedSignal,
    HandoffSignal,
    NurtureSignal,
    NurtureWithdrawnSignal,
)
from streams import journey as core
from streams.journey.signals import material_hash

from .builders import FIT_FORM, POOR_FORM, apply_all, at, tp
from .test_signals import AT_ONCE, PB, E, handoffs, hot_lead

SETTLE = timedelta(minutes=PB.signals.settle_minutes)


def handed_off() -> tuple[core.JourneyRecord, HandoffSignal]:
    record, signals = apply_all(hot_lead(), PB)
    return record, handoffs(signals)[0]


def late_objection(minutes: float = 30) -> core.Touchpoint:
    """Before the MQL touchpoint (h3, at 2 h): sales must know about it (material)."""
    return tp("sales.objection_raised", "x1", at(minutes=minutes), email=E,
              props={"category": "price"})  # fmt: skip


def test_a_material_correction_within_the_settle_window_is_held_then_sent_once() -> None:
    record, handoff = handed_off()
    outcome = core.apply_touchpoint(record, late_objection(), PB)
    assert outcome.signals == []  # the journey's event time has not moved: held
    entry = outcome.record.signal_ledger[handoff.signal_id]
    assert (entry.version, entry.owed, entry.sent_at) == (1, True, at(hours=2))
    # A timer wakes the journey when the window closes, and sends the correction once.
    due = core.next_timer_due(outcome.record, PB)
    assert due == at(hours=2) + SETTLE
    assert core.evaluate_timers(outcome.record, due - timedelta(seconds=1), PB).signals == []
    flushed = core.evaluate_timers(outcome.record, due, PB)
    [correction] = [s for s in flushed.signals if isinstance(s, HandoffSignal)]
    assert correction.version == 2 and [o.category for o in correction.open_objections] == ["price"]
    assert not flushed.record.signal_ledger[handoff.signal_id].owed
    assert core.evaluate_timers(flushed.record, due, PB).signals == []


def test_two_corrections_in_the_window_go_out_as_one_with_the_final_content() -> None:
    record, handoff = handed_off()
    record = core.apply_touchpoint(record, late_objection(), PB).record
    second = tp("sales.objection_raised", "x2", at(minutes=40), email=E,
                props={"category": "timing"})  # fmt: skip
    record = core.apply_touchpoint(record, second, PB).record
    # A later touchpoint past the window closes it: the correction leaves with it.
    later = tp("marketing.page_viewed", "l1", at(hours=2) + SETTLE, email=E, props={"url": "/"})
    outcome = core.apply_touchpoint(record, later, PB)
    [correction] = handoffs(outcome.signals)
    assert correction.signal_id == handoff.signal_id and correction.version == 2
    assert [o.category for o in correction.open_objections] == ["price", "timing"]


def test_a_revocation_undone_within_the_window_sends_nothing() -> None:
    record, handoff = handed_off()
    disqualified = tp("sales.lead_disqualified", "x3", at(minutes=90), email=E,
                      props={"reason": "wrong person"})  # fmt: skip
    outcome = core.apply_touchpoint(record, disqualified, PB)
    revocations = [s for s in outcome.signals if isinstance(s, HandoffRevokedSignal)]
    assert revocations == []
    assert outcome.record.signal_ledger[handoff.signal_id].status == "revoked"  # the truth
    # The event turns out to be someone else's: its conflicting duplicate (smaller JSON wins)
    # is a harmless page view, so the MQL holds again — and nothing was ever taken back.
    undone = tp("marketing.page_viewed", "x3", at(minutes=90), email=E, props={"url": "/"})
    again = core.apply_touchpoint(outcome.record, undone, PB)
    entry = again.record.signal_ledger[handoff.signal_id]
    assert handoffs(again.signals) == [] and (entry.status, entry.version, entry.owed) == (
        "active",
        1,
        False,
    )


def test_a_nurture_no_longer_called_for_is_withdrawn_explicitly() -> None:
    e = "ben@shop.example"
    events = [
        tp("marketing.form_submitted", "b1", at(), email=e, props=POOR_FORM),
        tp("marketing.email_opened", "b2", at(hours=1), email=e),
    ]
    record, [nurture] = apply_all(events, AT_ONCE)
    assert isinstance(nurture, NurtureSignal) and nurture.rule == "nurture.engaged"
    # A late unsubscribe before it: no email nurture after all.
    late = tp("marketing.unsubscribed", "b0", at(minutes=-5), email=e)
    outcome = core.apply_touchpoint(record, late, AT_ONCE)
    [withdrawn] = outcome.signals
    assert isinstance(withdrawn, NurtureWithdrawnSignal) and withdrawn.topic == "signals.nurture"
    assert (withdrawn.signal_id, withdrawn.version) == (nurture.signal_id, 2)
    assert withdrawn.rule == "nurture.engaged" and "no longer called for" in withdrawn.reason
    entry = outcome.record.signal_ledger[nurture.signal_id]
    assert (entry.status, entry.signal_type) == ("withdrawn", "nurture_withdrawn")


def test_a_nurture_whose_reason_changes_is_not_sent_again() -> None:
    e = "ben@shop.example"
    events = [
        tp("marketing.form_submitted", "b1", at(), email=e, props=POOR_FORM),
        tp("marketing.email_opened", "b2", at(hours=1), email=e),
    ]
    record, [nurture] = apply_all(events, AT_ONCE)
    # An earlier open raises the engagement in the reason; track, channel and content stay.
    late = tp("marketing.email_opened", "b0", at(minutes=-30), email=e)
    outcome = core.apply_touchpoint(record, late, AT_ONCE)
    assert outcome.signals == []
    entry = outcome.record.signal_ledger[nurture.signal_id]
    assert (
        entry.version == 1
        and entry.content_hash != record.signal_ledger[nurture.signal_id].content_hash
    )


def test_a_hand_off_is_corrected_when_a_score_crosses_a_threshold_only() -> None:
    _, handoff = handed_off()
    thresholds = PB.signals.handoff_score_thresholds
    fit = handoff.fit.score
    below = [t for t in thresholds.fit if t <= fit] + [PB.mql_rule.min_fit]
    nudged = handoff.model_copy(
        update={"fit": handoff.fit.model_copy(update={"score": fit + 0.5})}
    )  # the same side of every threshold
    assert material_hash(nudged, PB) == material_hash(handoff, PB)
    across = PB.model_copy(
        update={
            "signals": PB.signals.model_copy(
                update={
                    "handoff_score_thresholds": thresholds.model_copy(update={"fit": [fit + 0.25]})
                }
            )
        }
    )
    assert material_hash(nudged, across) != material_hash(handoff, across)
    assert below  # the hot lead sits above the MQL rule's fit


def test_in_order_nothing_is_held_and_nothing_corrected() -> None:
    events = [*hot_lead(), late_objection(minutes=60 * 5)]
    record, signals = apply_all(events, PB)
    assert all(s.version == 1 for s in signals)
    assert not any(e.owed for e in record.signal_ledger.values())


def test_fit_form_builder_is_a_fit() -> None:
    # Guards the fixtures the tests above rely on: the hot lead is an MQL by h3.
    record, _ = apply_all(hot_lead(), PB)
    assert core.view(record, PB).stage == "mql" and FIT_FORM["company"] == "Lovelace Analytics"
