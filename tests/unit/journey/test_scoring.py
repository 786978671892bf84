"""Engagement decay and breakdown; fit by persona attribute."""

from __future__ import annotations

import math
import random

import pytest

from schemas.journey import BREAKDOWN_LISTED, Firmographics
from schemas.playbook import Persona
from streams import journey as core
from streams.journey import scoring

from .builders import FIT_FORM, apply_all, at, tp

PB = core.default_playbook()


def test_points_halve_every_half_life() -> None:
    assert scoring.decayed(20, 0, 30) == 20
    assert scoring.decayed(20, 30 * 86_400, 30) == 10
    assert scoring.decayed(20, 60 * 86_400, 30) == 5


def test_engagement_is_as_of_the_latest_touchpoint_with_a_breakdown() -> None:
    e = "a@x.example"
    events = [
        tp("marketing.form_submitted", "s1", at(), email=e, props=FIT_FORM),  # 20
        tp("marketing.page_viewed", "s2", at(days=15), email=e, props={"url": "u"}),  # 1
        tp("marketing.webinar_attended", "s3", at(days=30), email=e),  # 15
    ]
    engagement = core.view(apply_all(events, PB)[0], PB).engagement
    expected = 20 * 0.5 + 1 * 0.5**0.5 + 15
    assert engagement.score == round(expected, 2)
    assert engagement.as_of == at(days=30)
    assert [(i.event_id, i.points, i.decayed) for i in engagement.breakdown] == [
        ("s1", 20, 10.0),
        ("s2", 1, round(0.5**0.5, 3)),
        ("s3", 15, 15.0),
    ]


def test_touchpoints_without_points_are_not_in_the_breakdown() -> None:
    e = "a@x.example"
    events = [
        tp("sales.outreach_sent", "o1", at(), email=e, props={"channel": "email"}),
        tp("marketing.email_clicked", "o2", at(), email=e),
    ]
    engagement = core.view(apply_all(events, PB)[0], PB).engagement
    assert [i.event_id for i in engagement.breakdown] == ["o2"]


def test_the_breakdown_lists_the_latest_touchpoints_and_carries_the_rest() -> None:
    e = "a@x.example"
    count = BREAKDOWN_LISTED + 7
    events = [
        tp("marketing.email_clicked", f"c{i:03d}", at(hours=i * 5), email=e) for i in range(count)
    ]
    engagement = core.view(apply_all(events, PB)[0], PB).engagement

    assert [i.event_id for i in engagement.breakdown] == [f"c{i:03d}" for i in range(7, count)]
    age_of = [(count - 1 - i) * 5 * 3_600 for i in range(7)]
    points = PB.scoring.points["marketing.email_clicked"]
    unlisted = math.fsum(scoring.decayed(points, age, PB.scoring.half_life_days) for age in age_of)
    assert engagement.carried == pytest.approx(unlisted, abs=0.001)
    listed = math.fsum(i.decayed for i in engagement.breakdown)
    assert engagement.carried + listed == pytest.approx(engagement.score, abs=0.01)


def test_nothing_is_carried_while_the_breakdown_lists_every_touchpoint() -> None:
    e = "a@x.example"
    events = [tp("marketing.email_clicked", f"c{i}", at(days=i * 0.37), email=e) for i in range(20)]
    engagement = core.view(apply_all(events, PB)[0], PB).engagement

    assert len(engagement.breakdown) == 20
    assert str(engagement.carried) == "0.0"  # not -0.0 from a float error


def test_engagement_is_bit_identical_in_any_arrival_order() -> None:
    e = "a@x.example"
    events = [
        tp("marketing.email_clicked", f"c{i}", at(days=i * 0.37, minutes=i), email=e)
        for i in range(25)
    ]
    scores = set()
    for seed in range(6):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        view = core.view(apply_all(shuffled, PB)[0], PB)
        scores.add((view.engagement.score, view.engagement.cycle_score))
    assert len(scores) == 1


def test_fsum_is_exact_where_naive_summation_is_not() -> None:
    assert scoring.engagement_at(at(), [(at(), 1e16), (at(), 1.0), (at(), -1e16)], 30) == 1.0
    assert math.fsum([1e16, 1.0, -1e16]) == 1.0


def persona(**kwargs: object) -> Persona:
    return Persona.model_validate({"name": "p", **kwargs})


def test_fit_matches_each_attribute_and_explains_it() -> None:
    p = persona(job_titles=["vp marketing", "cmo"], company_size={"min": 50, "max": 500},
                industries=["Software"], pain_points=["Attribution", "reporting"])  # fmt: skip
    firm = Firmographics(job_title="VP Marketing EMEA", company_size=250, industry="software",
                         pain_points=["attribution", "hiring"])  # fmt: skip
    fit = scoring.persona_fit(firm, p)
    assert fit.score == 85 and fit.persona == "p"
    assert [(i.attribute, i.matched) for i in fit.breakdown] == [
        ("job_title", ["vp marketing"]),
        ("company_size", ["250"]),
        ("industry", ["software"]),
        ("pain_points", ["attribution"]),
    ]


def test_job_title_keywords_match_whole_words_only() -> None:
    p = persona(job_titles=["bi", "cro"])
    assert scoring.persona_fit(Firmographics(job_title="Mobile developer"), p).score == 0
    assert scoring.persona_fit(Firmographics(job_title="Micro-biologist"), p).score == 0
    assert scoring.persona_fit(Firmographics(job_title="BI lead"), p).score == 30
    assert scoring.persona_fit(Firmographics(job_title="CRO"), p).score == 30


@pytest.mark.parametrize(("size", "points"), [(49, 0), (50, 20), (500, 20), (501, 0)])
def test_company_size_range_is_inclusive(size: int, points: float) -> None:
    p = persona(company_size={"min": 50, "max": 500})
    assert scoring.persona_fit(Firmographics(company_size=size), p).score == points


def test_best_persona_wins_and_ties_go_to_the_first_listed() -> None:
    firm = Firmographics(job_title="Head of Sales", company_size=1200, industry="software")
    fit = scoring.fit(firm, PB)
    assert fit.persona == "revenue-leader" and fit.score == 70
    twin = PB.model_copy(
        update={
            "personas": [
                persona(name="a", industries=["software"]),
                persona(name="b", industries=["software"]),
            ]
        }
    )
    assert scoring.fit(firm, twin).persona == "a"


def test_no_persona_matched_is_zero_without_persona() -> None:
    fit = scoring.fit(Firmographics(job_title="Student", industry="education"), PB)
    assert fit.score == 0 and fit.persona is None and fit.breakdown == []


def test_firmographics_keep_the_latest_value_per_field_by_event_time() -> None:
    e = "f@x.example"
    events = [
        tp("marketing.form_submitted", "f2", at(days=2), email=e,
           props={"form_id": "a", "job_title": "CMO", "pain_points": ["reporting"]}),
        tp("marketing.form_submitted", "f1", at(days=1), email=e,
           props={"form_id": "b", "job_title": "Intern", "company_size": 80,
                  "pain_points": ["attribution"]}),
        tp("sales.feedback_recorded", "f3", at(days=3), email=e,
           props={"pain_points": ["Forecasting"]}),
    ]  # fmt: skip
    firm = core.view(apply_all(events, PB)[0], PB).firmographics
    assert firm.job_title == "CMO" and firm.company_size == 80
    assert firm.pain_points == ["attribution", "forecasting", "reporting"]
