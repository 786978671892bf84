"""Signals: hand-off content and ids, corrections, revocation by a late touchpoint, nurture."""

from __future__ import annotations

from schemas.signals import SIGNAL, HandoffRevokedSignal, HandoffSignal, NurtureSignal
from streams import journey as core
from streams.journey.signals import signal_id

from .builders import FIT_FORM, POOR_FORM, apply_all, at, handoff_id, tp

PB = core.default_playbook()
E = "ada@lovelace.example"
AT_ONCE = PB.model_copy(
    update={"signals": PB.signals.model_copy(update={"settle_minutes": 0})}
)  # every material correction is sent at once (no settle window)


def hot_lead() -> list[core.Touchpoint]:
    """MQL at h3: 20 + 15 + 12 = 47 ≥ 40 with fit 85."""
    paid = {"campaign_id": "q4-webinar", "channel": "paid_search", "message_id": "halve-reporting"}
    return [
        tp("marketing.form_submitted", "h1", at(), email=E, props=FIT_FORM, **paid),
        tp("marketing.webinar_attended", "h2", at(hours=1), email=E, campaign_id="q4-webinar"),
        tp("marketing.content_downloaded", "h3", at(hours=2), email=E,
           props={"content_id": "guide"}, message_id="book-a-demo"),
    ]  # fmt: skip


def handoffs(signals: list[core.Signal]) -> list[HandoffSignal]:
    return [s for s in signals if isinstance(s, HandoffSignal)]


def test_hand_off_carries_what_sales_needs() -> None:
    _, signals = apply_all(hot_lead(), PB)
    [handoff] = handoffs(signals)
    assert handoff.signal_id == signal_id("cus_test", "handoff", "0")
    assert handoff.version == 1 and handoff.topic == "signals.handoff"
    assert (handoff.trigger_event_id, handoff.occurred_at, handoff.stage) == ("h3", at(hours=2),
                                                                              "mql")  # fmt: skip
    assert handoff.persona == "marketing-leader" and handoff.fit.score == 85
    assert [i.event_id for i in handoff.engagement.breakdown] == ["h1", "h2", "h3"]
    assert handoff.campaigns == ["q4-webinar"]
    assert handoff.messages == ["halve-reporting", "book-a-demo"]
    assert [t.event_id for t in handoff.last_marketing] == ["h1", "h2", "h3"]
    assert handoff.last_sales == []
    assert [c.id for c in handoff.recommended_content] == ["discovery-guide", "case-study-globex"]
    assert handoff.identities == ["email:ada@lovelace.example"]
    assert handoff.firmographics.company == "Lovelace Analytics"
    assert SIGNAL.validate_json(handoff.model_dump_json()) == handoff


def test_later_touchpoints_do_not_churn_the_hand_off() -> None:
    later = [
        tp("marketing.page_viewed", "l1", at(hours=3), email=E, props={"url": "u"}),
        tp("sales.objection_raised", "l2", at(hours=4), email=E, props={"category": "price"}),
    ]
    record, signals = apply_all([*hot_lead(), *later], PB)
    assert len(handoffs(signals)) == 1
    assert record.signal_ledger[handoffs(signals)[0].signal_id].version == 1


def test_a_late_touchpoint_before_the_trigger_corrects_the_hand_off() -> None:
    record, _ = apply_all(hot_lead(), AT_ONCE)
    late = tp("sales.objection_raised", "x1", at(minutes=30), email=E, props={"category": "price"})
    outcome = core.apply_touchpoint(record, late, AT_ONCE)
    [correction] = outcome.signals
    assert isinstance(correction, HandoffSignal)
    assert correction.signal_id == signal_id("cus_test", "handoff", "0")
    assert correction.version == 2
    assert [o.category for o in correction.open_objections] == ["price"]
    assert [c.id for c in correction.recommended_content][-2:] == ["roi-calculator", "pricing-faq"]


def test_a_late_touchpoint_that_only_moves_the_trigger_sends_nothing() -> None:
    record, [handoff, *_] = apply_all(hot_lead(), AT_ONCE)
    # An earlier event with enough points makes h2 the MQL touchpoint instead of h3: the same
    # stage, persona, objections and score bands, so nothing material for sales changed.
    late = tp("marketing.event_attended", "x2", at(minutes=30), email=E)
    outcome = core.apply_touchpoint(record, late, AT_ONCE)
    assert outcome.signals == []
    entry = outcome.record.signal_ledger[handoff.signal_id]
    assert (entry.version, entry.status, entry.owed) == (1, "active", False)
    # The ledger holds the truth: the hand-off as the journey now calls for it.
    whole = core.reevaluate(core.fold("cus_test", [*hot_lead(), late], AT_ONCE), AT_ONCE)
    assert entry.content_hash == whole.record.signal_ledger[handoff.signal_id].content_hash


def test_a_late_touchpoint_that_undoes_the_mql_revokes_the_hand_off() -> None:
    record, _ = apply_all(hot_lead(), AT_ONCE)
    late = tp("sales.lead_disqualified", "x3", at(minutes=90), email=E,
              props={"reason": "competitor employee"})  # fmt: skip
    outcome = core.apply_touchpoint(record, late, AT_ONCE)
    revoked = [s for s in outcome.signals if isinstance(s, HandoffRevokedSignal)]
    assert len(revoked) == 1
    assert revoked[0].signal_id == signal_id("cus_test", "handoff", "0")
    assert revoked[0].version == 2 and revoked[0].topic == "signals.handoff"
    assert revoked[0].occurred_at == at(minutes=90)
    entry = outcome.record.signal_ledger[revoked[0].signal_id]
    assert (entry.status, entry.version) == ("revoked", 2)
    # Delivering the late touchpoint again changes nothing.
    again = core.apply_touchpoint(outcome.record, late, AT_ONCE)
    assert again.signals == [] and again.duplicate and not again.applied


def test_the_same_touchpoints_in_order_never_see_a_hand_off() -> None:
    late = tp("sales.lead_disqualified", "x3", at(minutes=90), email=E, props={"reason": "no"})
    events = hot_lead()
    _, signals = apply_all([events[0], events[1], late, events[2]], PB)
    assert handoffs(signals) == []


def test_a_duplicate_produces_no_signal() -> None:
    record, _ = apply_all(hot_lead(), PB)
    outcome = core.apply_touchpoint(record, hot_lead()[2], PB)
    assert outcome.duplicate and not outcome.applied and outcome.signals == []
    assert outcome.record == record


def test_engaged_but_not_ready_is_nurtured_on_its_track() -> None:
    e = "ben@shop.example"
    events = [
        tp("marketing.form_submitted", "b1", at(), email=e, props=POOR_FORM),
        tp("marketing.email_opened", "b2", at(hours=1), email=e),
    ]
    _, signals = apply_all(events, PB)
    [nurture] = signals
    assert isinstance(nurture, NurtureSignal) and nurture.topic == "signals.nurture"
    assert (nurture.rule, nurture.track, nurture.channel) == ("nurture.engaged", "engaged", "email")
    assert nurture.trigger_event_id == "b1" and nurture.stage == "lead"
    assert [c.id for c in nurture.recommended_content][:3] == ["buyers-guide", "roi-calculator",
                                                               "product-tour"]  # fmt: skip


def test_unsubscribed_people_get_no_email_nurture() -> None:
    e = "ben@shop.example"
    events = [
        tp("marketing.unsubscribed", "u0", at(minutes=-5), email=e),
        tp("marketing.form_submitted", "b1", at(), email=e, props=POOR_FORM),
        tp("marketing.webinar_attended", "b2", at(hours=1), email=e),
    ]
    _, signals = apply_all(events, PB)
    assert [s for s in signals if isinstance(s, NurtureSignal)] == []


def test_a_recycled_lead_is_nurtured_with_the_rejection_reason() -> None:
    rejected = tp("sales.handoff_rejected", "r1", at(hours=5), email=E,
                  props={"signal_id": handoff_id(E), "reason": "no budget until Q3"})  # fmt: skip
    _, signals = apply_all([*hot_lead(), rejected], PB)
    nurture = [s for s in signals if isinstance(s, NurtureSignal) and s.rule == "nurture.recycled"]
    assert len(nurture) == 1
    assert nurture[0].reason == "hand-off rejected: no budget until Q3"
    assert nurture[0].cycle == 1 and nurture[0].stage == "recycled"
    # The rejected hand-off stays a fact: it is not revoked.
    assert not any(isinstance(s, HandoffRevokedSignal) for s in signals)


def test_a_won_deal_starts_onboarding() -> None:
    won = tp("sales.deal_won", "w1", at(days=3), email=E,
             props={"amount": "1000", "currency": "EUR"})  # fmt: skip
    _, signals = apply_all([*hot_lead(), won], PB)
    onboarding = [s for s in signals if isinstance(s, NurtureSignal) and s.track == "onboarding"]
    assert len(onboarding) == 1 and onboarding[0].trigger_event_id == "w1"
    assert [c.id for c in onboarding[0].recommended_content][:3] == [
        "onboarding-guide", "admin-checklist", "office-hours"]  # fmt: skip


def test_a_detractor_or_an_objection_from_a_customer_is_a_churn_risk() -> None:
    won = tp("sales.deal_won", "w1", at(days=3), email=E,
             props={"amount": "1000", "currency": "EUR"})  # fmt: skip
    promoter = tp("sales.feedback_recorded", "f1", at(days=4), email=E, props={"nps": 9})
    detractor = tp("sales.feedback_recorded", "f2", at(days=5), email=E, props={"nps": 3})
    objection = tp("sales.objection_raised", "o1", at(days=6), email=E,
                   props={"category": "price", "note": "renewal too expensive"})  # fmt: skip
    _, signals = apply_all([*hot_lead(), won, promoter, detractor, objection], PB)
    risk = [s for s in signals if isinstance(s, NurtureSignal) and s.rule == "nurture.churn_risk"]
    assert [s.trigger_event_id for s in risk] == ["f2", "o1"]
    assert risk[0].reason == "churn risk: detractor NPS 3 from a customer"
    assert risk[1].track == "churn_risk" and risk[1].channel == "sales"
    assert "value-review-template" in [c.id for c in risk[0].recommended_content]


def test_before_the_sale_a_low_nps_is_no_churn_risk() -> None:
    detractor = tp("sales.feedback_recorded", "f2", at(days=1), email=E, props={"nps": 2})
    _, signals = apply_all([*hot_lead(), detractor], PB)
    assert not [s for s in signals if isinstance(s, NurtureSignal) and s.track == "churn_risk"]


def test_reevaluate_under_a_stricter_playbook_revokes_and_a_renamed_one_resends_nothing() -> None:
    record, _ = apply_all(hot_lead(), AT_ONCE)
    renamed = AT_ONCE.model_copy(update={"version": "2024.2"})
    outcome = core.reevaluate(record, renamed)
    assert outcome.signals == [] and outcome.record.playbook_version == "2024.2"
    strict = AT_ONCE.model_copy(update={"version": "strict", "mql_rule": PB.mql_rule.model_copy(
        update={"min_engagement": 100})})  # fmt: skip
    outcome = core.reevaluate(record, strict)
    assert [s.signal_type for s in outcome.signals] == ["handoff_revoked"]
    assert outcome.applied and outcome.record.version == record.version + 1
    assert core.reevaluate(outcome.record, strict).signals == []


def test_fold_then_reevaluate_emits_what_the_journey_calls_for() -> None:
    record = core.fold("cus_test", hot_lead(), PB)
    assert record.signal_ledger == {} and record.version == 0
    outcome = core.reevaluate(record, PB)
    assert sorted(s.signal_type for s in outcome.signals) == ["handoff", "nurture"]


def test_absorbing_a_journey_supersedes_its_signals_under_the_new_id() -> None:
    anon_events = [
        tp("marketing.form_submitted", "h1", at(), email=E, props=FIT_FORM),
        tp("marketing.webinar_attended", "h2", at(hours=1), email=E),
        tp("marketing.content_downloaded", "h3", at(hours=2), email=E,
           props={"content_id": "guide"}),
    ]  # fmt: skip
    old, old_signals = apply_all(anon_events, PB, customer_id="cus_old")
    old_handoff = handoffs(old_signals)[0]
    target = core.new_journey("cus_new")
    outcome = core.absorb(target, old, PB, "link-1", at(hours=3))
    [handoff] = handoffs(outcome.signals)
    assert handoff.signal_id == signal_id("cus_new", "handoff", "0")
    assert handoff.supersedes == [old_handoff.signal_id] and handoff.version == 1
    assert not any(isinstance(s, HandoffRevokedSignal) for s in outcome.signals)
    assert outcome.record.signal_ledger[old_handoff.signal_id].status == "superseded"
    assert outcome.record.customer_id == "cus_new"
    assert outcome.record.merges[0].absorbed_customer_id == "cus_old"
    # A redelivered move changes nothing.
    again = core.absorb(outcome.record, old, PB, "link-1", at(hours=3))
    assert again.duplicate and not again.applied and again.record == outcome.record
