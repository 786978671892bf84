"""`marketing.identified` (a Segment identify): it links identifiers and brings firmographics,
but earns no engagement points and makes no lead."""

from __future__ import annotations

from streams import journey as core

from .builders import apply_all, at, stages, tp

PB = core.default_playbook()
TRAITS = {"job_title": "VP Marketing", "company": "Lovelace", "company_size": 250,
          "industry": "software"}  # fmt: skip


def test_an_identify_links_brings_fit_and_no_points() -> None:
    touchpoints = [
        tp("marketing.page_viewed", "e1", at(minutes=0), anon="cookie-ada",
           props={"url": "https://x.example/"}),
        tp("marketing.identified", "e2", at(minutes=1), anon="cookie-ada", contact="user-42",
           email="ada@lovelace.example", props=TRAITS),
    ]  # fmt: skip
    record, _ = apply_all(touchpoints, PB)
    view = core.view(record, PB)
    assert {"anon:cookie-ada", "email:ada@lovelace.example", "contact:user-42"} <= set(
        record.identifiers
    )
    assert view.firmographics.job_title == "VP Marketing"
    assert view.fit.score > 0
    assert view.engagement.score == 1.0  # the page view's point only
    assert stages(record, PB) == ["visitor", "subscriber"]  # known, not a lead
