"""Timers with `now` passed in: hand-off SLA breach and escalation, stalled and customer nurture."""

from __future__ import annotations

from datetime import timedelta

from schemas.signals import HandoffSlaBreachedSignal, HandoffSlaEscalatedSignal, NurtureSignal
from streams import journey as core

from .builders import POOR_FORM, apply_all, at, tp
from .test_signals import E, handoffs, hot_lead

PB = core.default_playbook()  # SLA 24 h, escalation 48 h


def handed_off() -> tuple[core.JourneyRecord, core.HandoffSignal]:
    # Under the customer id Tandem gives the person: sales answers name its hand-off's id.
    record, signals = apply_all(hot_lead(), PB, core.customer_id_for(f"email:{E}"))
    return record, handoffs(signals)[0]


def test_nothing_is_due_before_the_sla() -> None:
    record, handoff = handed_off()
    due = handoff.occurred_at + timedelta(hours=24)
    assert core.next_timer_due(record, PB) == due
    outcome = core.evaluate_timers(record, due - timedelta(seconds=1), PB)
    assert outcome.signals == [] and not outcome.applied and outcome.record == record


def test_sla_breach_then_escalation_each_once() -> None:
    record, handoff = handed_off()
    breach_at = handoff.occurred_at + timedelta(hours=24)
    outcome = core.evaluate_timers(record, breach_at, PB)
    [breach] = outcome.signals
    assert isinstance(breach, HandoffSlaBreachedSignal) and breach.topic == "signals.alerts"
    assert breach.occurred_at == breach_at == breach.deadline
    assert (breach.handoff_signal_id, breach.handoff_version, breach.hours) == (
        handoff.signal_id, 1, 24)  # fmt: skip
    assert outcome.record.version == record.version + 1
    # Re-evaluating (a restart, a second tick) never duplicates.
    assert core.evaluate_timers(outcome.record, breach_at + timedelta(hours=1), PB).signals == []
    assert core.next_timer_due(outcome.record, PB) == handoff.occurred_at + timedelta(hours=48)
    escalated = core.evaluate_timers(outcome.record, breach_at + timedelta(days=30), PB)
    assert [type(s) for s in escalated.signals] == [HandoffSlaEscalatedSignal]


def test_a_late_tick_emits_breach_and_escalation_in_order() -> None:
    record, handoff = handed_off()
    outcome = core.evaluate_timers(record, handoff.occurred_at + timedelta(days=3), PB)
    assert [s.signal_type for s in outcome.signals] == ["handoff_sla_breached",
                                                        "handoff_sla_escalated"]  # fmt: skip
    ids = [s.signal_id for s in outcome.signals]
    assert len(set(ids)) == 2 and all(outcome.record.signal_ledger[i].origin == "timer"
                                      for i in ids)  # fmt: skip


def test_an_accepted_hand_off_raises_no_alert() -> None:
    record, handoff = handed_off()
    accepted = tp("sales.handoff_accepted", "a1", at(hours=20), email=E,
                  props={"signal_id": handoff.signal_id})  # fmt: skip
    record = core.apply_touchpoint(record, accepted, PB).record
    outcome = core.evaluate_timers(record, handoff.occurred_at + timedelta(days=3), PB)
    assert [s.signal_type for s in outcome.signals if "sla" in s.signal_type] == []


def test_a_rejected_hand_off_raises_no_alert() -> None:
    record, handoff = handed_off()
    rejected = tp("sales.handoff_rejected", "r1", at(hours=20), email=E,
                  props={"signal_id": handoff.signal_id, "reason": "student"})  # fmt: skip
    record = core.apply_touchpoint(record, rejected, PB).record
    outcome = core.evaluate_timers(record, handoff.occurred_at + timedelta(days=3), PB)
    assert not any("sla" in s.signal_type for s in outcome.signals)


def test_no_escalation_when_the_playbook_has_none() -> None:
    pb = PB.model_copy(update={"handoff": PB.handoff.model_copy(
        update={"escalate_after_hours": None})})  # fmt: skip
    record, _ = apply_all(hot_lead(), pb)
    outcome = core.evaluate_timers(record, at(days=30), pb)
    assert [s.signal_type for s in outcome.signals if "sla" in s.signal_type] == [
        "handoff_sla_breached"]  # fmt: skip


def test_a_stalled_lead_is_nurtured_once_per_stage_entry() -> None:
    e = "s@x.example"
    record, _ = apply_all([tp("marketing.form_submitted", "s1", at(), email=e, props=POOR_FORM)],
                          PB)  # fmt: skip
    due = at(days=21)  # stall_days.lead
    assert core.next_timer_due(record, PB) == due
    assert core.evaluate_timers(record, due - timedelta(minutes=1), PB).signals == []
    outcome = core.evaluate_timers(record, due, PB)
    [stalled] = outcome.signals
    assert isinstance(stalled, NurtureSignal) and stalled.rule == "nurture.stalled"
    assert stalled.trigger_event_id is None and stalled.occurred_at == due
    assert stalled.reason == "no touchpoint for 21 days in stage lead"
    assert core.evaluate_timers(outcome.record, due + timedelta(days=60), PB).signals == []
    assert core.next_timer_due(outcome.record, PB) is None


def test_an_unsubscribed_lead_gets_no_stalled_email() -> None:
    e = "s@x.example"
    events = [tp("marketing.form_submitted", "s1", at(), email=e, props=POOR_FORM),
              tp("marketing.unsubscribed", "s2", at(minutes=1), email=e)]  # fmt: skip
    record, _ = apply_all(events, PB)
    assert core.evaluate_timers(record, at(days=100), PB).signals == []
    assert core.next_timer_due(record, PB) is None


def test_customers_get_upsell_and_renewal_reminders() -> None:
    e = "c@x.example"
    won = tp("sales.deal_won", "w1", at(), email=e, props={"amount": "1", "currency": "EUR"})
    record, _ = apply_all([won], PB)
    assert core.next_timer_due(record, PB) == at(days=90)
    outcome = core.evaluate_timers(record, at(days=90), PB)
    assert [(s.rule, s.channel) for s in outcome.signals if isinstance(s, NurtureSignal)] == [
        ("nurture.upsell", "sales")]  # fmt: skip
    assert core.next_timer_due(outcome.record, PB) == at(days=305)  # 365 − 60
    renewal = core.evaluate_timers(outcome.record, at(days=305), PB).signals
    assert [s.rule for s in renewal if isinstance(s, NurtureSignal)] == ["nurture.renewal"]


def test_timers_on_an_empty_journey_do_nothing() -> None:
    record = core.new_journey("cus_x")
    assert core.next_timer_due(record, PB) is None
    assert core.evaluate_timers(record, at(), PB) == core.Outcome(record, False, False, [])


def test_the_next_timer_is_the_first_candidate_until_none_is_left() -> None:
    # `next_timer_due` plans the timers without building their signals: the same answer.
    from datetime import UTC, datetime

    from events import parse_touchpoint
    from streams import samples
    from streams.journey import signals
    from streams.journey.record import derive
    from streams.workflow import replay

    docs = samples.funnel(60, datetime(2025, 1, 1, tzinfo=UTC))
    records = replay([parse_touchpoint(d) for d in docs], PB).records.values()
    asked = 0
    for record in records:
        for _ in range(10):
            candidates = signals.timer_candidates(
                derive(record, PB), record.signal_ledger, record.customer_id,
                list(record.identifiers), PB,
            )  # fmt: skip
            due = core.next_timer_due(record, PB)
            assert due == (candidates[0].due if candidates else None)
            asked += 1
            if due is None:
                break
            record = core.evaluate_timers(record, due, PB).record
    assert asked > len(records)  # timers were due, emitted, and the next one planned
