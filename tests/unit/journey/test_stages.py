"""Lifecycle stages: each rule of the table, history entries, cycles, and order independence."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from schemas.journey import Stage
from streams import journey as core

from .builders import FIT_FORM, POOR_FORM, apply_all, at, handoff_id, stages, tp

PB = core.default_playbook()
ADA_EMAIL = "ada@lovelace.example"


def ada(type_: str, event_id: str, when: datetime, **props: Any) -> core.Touchpoint:
    """A touchpoint by Ada (email and cookie); keyword arguments are its properties."""
    return tp(type_, event_id, when, email=ADA_EMAIL, anon="cookie-ada", props=props)


def inbound_to_mql() -> list[core.Touchpoint]:
    """visitor → subscriber → lead → mql: 1 + 1 + 20 + 15 + 12 = 49 points ≥ 40, fit 85 ≥ 50."""
    return [
        tp("marketing.page_viewed", "e1", at(minutes=0), anon="cookie-ada",
           props={"url": "https://x.example/"}),
        ada("marketing.email_opened", "e2", at(minutes=5)),
        ada("marketing.form_submitted", "e3", at(minutes=10), **FIT_FORM),
        ada("marketing.webinar_attended", "e4", at(minutes=20)),
        ada("marketing.content_downloaded", "e5", at(minutes=30), content_id="guide"),
    ]  # fmt: skip


def test_inbound_path_reaches_mql_at_the_touchpoint_that_crosses_both_thresholds() -> None:
    record, _ = apply_all(inbound_to_mql(), PB)
    view = core.view(record, PB)
    assert stages(record, PB) == ["visitor", "subscriber", "lead", "mql"]
    mql = view.stage_history[-1]
    assert (mql.cause_event_id, mql.entered_at, mql.cycle) == ("e5", at(minutes=30), 0)
    assert "engagement 4" in mql.reason and "fit 85.00" in mql.reason
    assert "marketing-leader" in mql.reason
    assert [c.cause_event_id for c in view.stage_history] == ["e1", "e2", "e3", "e5"]
    assert view.stage_history[2].reason == "form demo-request submitted"


def test_history_is_the_same_whatever_the_arrival_order() -> None:
    events = inbound_to_mql()
    expected = core.view(apply_all(events, PB)[0], PB)
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert core.view(apply_all(shuffled, PB)[0], PB) == expected


def test_anonymous_form_keeps_a_visitor_and_a_newsletter_form_makes_a_subscriber() -> None:
    anon_form = tp("marketing.form_submitted", "a1", at(), anon="c1", props=FIT_FORM)
    assert stages(apply_all([anon_form], PB)[0], PB) == ["visitor"]
    newsletter = tp("marketing.form_submitted", "n1", at(), email="n@x.example",
                    props={"form_id": "newsletter"})  # fmt: skip
    assert stages(apply_all([newsletter], PB)[0], PB) == ["subscriber"]
    # The same form with firmographics is a lead-maker.
    rich = tp("marketing.form_submitted", "n2", at(), email="n@x.example",
              props={"form_id": "newsletter", "job_title": "Analyst"})  # fmt: skip
    assert stages(apply_all([rich], PB)[0], PB) == ["lead"]


def test_content_download_by_a_known_person_makes_a_lead() -> None:
    download = tp("marketing.content_downloaded", "d1", at(), email="d@x.example",
                  props={"content_id": "guide"})  # fmt: skip
    assert stages(apply_all([download], PB)[0], PB) == ["lead"]


def test_poor_fit_stays_lead_however_engaged() -> None:
    events = [
        tp("marketing.form_submitted", "p1", at(), email="s@x.example", props=POOR_FORM),
        *[tp("marketing.webinar_attended", f"w{i}", at(hours=i), email="s@x.example")
          for i in range(5)],
    ]  # fmt: skip
    record, _ = apply_all(events, PB)
    view = core.view(record, PB)
    assert view.stage == Stage.LEAD and view.engagement.score > 90 and view.fit.score == 0


def outbound() -> list[core.Touchpoint]:
    return [
        tp("sales.prospect_added", "o1", at(), contact="crm-1",
           props={"job_title": "Head of Sales", "company_size": 1200, "industry": "software"}),
        tp("sales.outreach_sent", "o2", at(hours=1), contact="crm-1", props={"channel": "email"}),
        tp("sales.reply_received", "o3", at(hours=5), contact="crm-1",
           props={"sentiment": "positive"}),
        tp("sales.meeting_booked", "o4", at(hours=6), contact="crm-1"),
    ]  # fmt: skip


def test_outbound_enters_at_lead_and_a_meeting_makes_it_sales_accepted() -> None:
    record, _ = apply_all(outbound(), PB)
    view = core.view(record, PB)
    assert stages(record, PB) == ["lead", "sal"]
    assert view.outbound and view.stage_history[-1].cause_event_id == "o4"


def test_positive_reply_enters_sal_only_when_the_playbook_says_so() -> None:
    eager = PB.model_copy(
        update={"stages": PB.stages.model_copy(update={"outbound_positive_reply_enters_sal": True})}
    )
    record, _ = apply_all(outbound(), eager)
    assert stages(record, eager) == ["lead", "sal"]
    assert core.view(record, eager).stage_history[-1].cause_event_id == "o3"


def test_inbound_meeting_does_not_skip_the_hand_off() -> None:
    events = [
        tp("marketing.form_submitted", "i1", at(), email="i@x.example", props=POOR_FORM),
        tp("sales.meeting_booked", "i2", at(hours=1), email="i@x.example"),
    ]
    assert stages(apply_all(events, PB)[0], PB) == ["lead"]


def full_funnel() -> list[core.Touchpoint]:
    e = "dana@globex.example"
    return [
        *inbound_to_mql(),
        tp("sales.handoff_accepted", "f1", at(hours=2), email=e,
           props={"signal_id": handoff_id(e)}),
        tp("sales.lead_qualified", "f2", at(days=1), email=e,
           props={"budget": True, "authority": True, "need": True, "timeline": True}),
        tp("sales.demo_held", "f3", at(days=2), email=e),
        tp("sales.objection_raised", "f4", at(days=3), email=e, props={"category": "price"}),
        tp("sales.proposal_sent", "f5", at(days=4), email=e,
           props={"amount": "48000", "currency": "EUR"}),
        tp("sales.deal_won", "f6", at(days=5), email=e,
           props={"amount": "45000", "currency": "EUR"}),
    ]  # fmt: skip


def test_full_funnel_and_won_deal_answers_objections() -> None:
    record, _ = apply_all(full_funnel(), PB)
    view = core.view(record, PB)
    assert stages(record, PB)[3:] == ["mql", "sal", "sql", "opportunity", "customer"]
    assert view.open_objections == []
    assert str(view.revenue["EUR"]) == "45000"


def test_a_required_bant_answer_of_no_keeps_the_lead_out_of_sql() -> None:
    e = "q@x.example"
    base = [tp("marketing.form_submitted", "q0", at(), email=e, props=POOR_FORM)]
    partial = tp(
        "sales.lead_qualified",
        "q1",
        at(hours=1),
        email=e,
        props={"budget": False, "authority": True, "need": True, "timeline": True},
    )
    assert stages(apply_all([*base, partial], PB)[0], PB) == ["lead"]
    lenient = PB.model_copy(update={"stages": PB.stages.model_copy(
        update={"sql_requires": ["authority", "need"]})})  # fmt: skip
    assert stages(apply_all([*base, partial], lenient)[0], lenient) == ["lead", "sql"]


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({}, "qualified by sales (BANT unknown: budget, authority, need, timeline)"),
        ({"budget": True, "authority": None, "need": True, "timeline": True},
         "qualified by sales (BANT unknown: authority)"),
        ({"budget": True, "authority": True, "need": True, "timeline": True}, "qualified (BANT)"),
        ({"bant": {"budget": "yes", "timeline": "unknown"}},
         "qualified by sales (BANT unknown: authority, need, timeline)"),
    ],
)  # fmt: skip
def test_a_lead_qualified_without_bant_answers_still_makes_an_sql(
    props: dict[str, Any], reason: str
) -> None:
    e = "u@x.example"
    base = [tp("marketing.form_submitted", "u0", at(), email=e, props=POOR_FORM)]
    version = 2 if "bant" in props else None
    qualified = tp("sales.lead_qualified", "u1", at(hours=1), email=e, props=props, version=version)
    record, _ = apply_all([*base, qualified], PB)
    assert stages(record, PB) == ["lead", "sql"]
    assert core.view(record, PB).stage_history[-1].reason == reason


def test_bant_answers_earn_no_points_known_or_unknown() -> None:
    e = "p@x.example"
    base = [tp("marketing.form_submitted", "p0", at(), email=e, props=POOR_FORM)]
    answered = {"budget": True, "authority": True, "need": True, "timeline": True}
    scores = []
    for props in ({}, answered):
        qualified = tp("sales.lead_qualified", "p1", at(hours=1), email=e, props=props)
        view = core.view(apply_all([*base, qualified], PB)[0], PB)
        scores.append((view.engagement.score, view.fit.score))
    assert scores[0] == scores[1]


def test_churn_then_renewal_re_enters_customer() -> None:
    e = "c@x.example"
    events = [
        tp("sales.deal_won", "c1", at(), email=e, props={"amount": "10", "currency": "EUR"}),
        tp("sales.churned", "c2", at(days=400), email=e, props={"reason": "budget cuts"}),
        tp("sales.renewed", "c3", at(days=420), email=e, props={"amount": "12"}),
    ]
    record, _ = apply_all(events, PB)
    view = core.view(record, PB)
    assert stages(record, PB) == ["customer", "churned", "customer"]
    assert view.stage_history[1].reason == "churned: budget cuts"
    assert {k: str(v) for k, v in view.revenue.items()} == {"EUR": "10", "XXX": "12"}


def test_churn_only_applies_to_customers() -> None:
    e = "c@x.example"
    events = [
        tp("marketing.form_submitted", "c0", at(), email=e, props=POOR_FORM),
        tp("sales.churned", "c1", at(days=1), email=e, props={"reason": "?"}),
    ]
    assert stages(apply_all(events, PB)[0], PB) == ["lead"]


def test_disqualified_records_the_reason() -> None:
    e = "x@x.example"
    events = [
        tp("marketing.form_submitted", "x0", at(), email=e, props=POOR_FORM),
        tp("sales.lead_disqualified", "x1", at(hours=1), email=e, props={"reason": "student"}),
    ]
    view = core.view(apply_all(events, PB)[0], PB)
    assert view.stage == Stage.DISQUALIFIED
    assert view.stage_history[-1].reason == "disqualified: student"


def test_rejected_hand_off_recycles_and_requalifies_only_on_new_engagement() -> None:
    e = ADA_EMAIL
    rejected = tp("sales.handoff_rejected", "r1", at(hours=1), email=e,
                  props={"signal_id": handoff_id(e), "reason": "no budget this year"})  # fmt: skip
    record, _ = apply_all([*inbound_to_mql(), rejected], PB)
    view = core.view(record, PB)
    assert view.stage == Stage.RECYCLED and view.cycle == 1
    assert view.stage_history[-1].reason == "hand-off rejected: no budget this year"
    assert view.engagement.cycle_score == 0 and view.engagement.score > 40

    # New engagement in cycle 1: 20 + 15 + 12 = 47 ≥ 40 (months later: old points decayed).
    later = [
        ada("marketing.form_submitted", "r2", at(days=90), **FIT_FORM),
        ada("marketing.webinar_attended", "r3", at(days=90, hours=1)),
        ada("marketing.content_downloaded", "r4", at(days=90, hours=2), content_id="guide"),
    ]  # fmt: skip
    record, _ = apply_all([*inbound_to_mql(), rejected, *later], PB)
    view = core.view(record, PB)
    assert view.stage == Stage.MQL and view.cycle == 1
    assert view.stage_history[-1].cause_event_id == "r4"
    assert view.stage_history[-1].cycle == 1


def test_lost_deal_recycles_into_a_new_cycle() -> None:
    e = "l@x.example"
    events = [
        tp("sales.prospect_added", "l0", at(), email=e),
        tp("sales.demo_held", "l1", at(days=1), email=e),
        tp("sales.deal_lost", "l2", at(days=9), email=e, props={"reason": "went with a rival"}),
    ]
    view = core.view(apply_all(events, PB)[0], PB)
    assert [c.stage.value for c in view.stage_history] == ["lead", "opportunity", "recycled"]
    assert view.cycle == 1 and view.stage_history[-1].reason == "deal lost: went with a rival"


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        ("sales.demo_held", {}, "opportunity"),
        ("sales.proposal_sent", {"amount": "1", "currency": "EUR"}, "opportunity"),
        ("sales.deal_won", {"amount": "1", "currency": "EUR"}, "customer"),
    ],
)
def test_sales_events_move_a_lead_forward(type_: str, props: dict[str, str], expected: str) -> None:
    e = "s@x.example"
    events = [
        tp("marketing.form_submitted", "s0", at(), email=e, props=POOR_FORM),
        tp(type_, "s1", at(hours=1), email=e, props=props),
    ]
    assert stages(apply_all(events, PB)[0], PB) == ["lead", expected]


def test_a_customer_filling_a_form_stays_a_customer() -> None:
    e = "k@x.example"
    events = [
        tp("sales.deal_won", "k0", at(), email=e, props={"amount": "1", "currency": "EUR"}),
        tp("marketing.form_submitted", "k1", at(days=1), email=e, props=FIT_FORM),
    ]
    assert stages(apply_all(events, PB)[0], PB) == ["customer"]


def test_unsubscribe_sets_the_flag_and_costs_points() -> None:
    e = "u@x.example"
    events = [
        tp("marketing.email_opened", "u0", at(), email=e),
        tp("marketing.unsubscribed", "u1", at(minutes=1), email=e),
    ]
    view = core.view(apply_all(events, PB)[0], PB)
    assert view.unsubscribed and view.engagement.score == pytest.approx(-9.0, abs=0.01)


def test_ledger_events_do_not_move_stages() -> None:
    spend = tp("marketing.spend_recorded", "sp1", at(), props={
        "campaign_id": "q4", "channel": "paid_search", "amount": "300.5", "currency": "EUR",
        "period": "2024-03"})  # fmt: skip
    record, signals = apply_all([spend], PB, customer_id=core.LEDGER_CUSTOMER)
    view = core.view(record, PB)
    assert view.stage_history == [] and signals == []
    assert {k: str(v) for k, v in view.spend.items()} == {"q4|EUR": "300.5"}
    assert view.first_touch is None
