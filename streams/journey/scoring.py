"""Engagement and fit scores.

Engagement = Σ points[type] × 0.5^((T − t) / half_life) over the touchpoints considered, where T
is the time of evaluation — the event time of the latest touchpoint considered, never the wall
clock. The fold keeps it as a running sum (`streams.journey.fold`): at each touchpoint with
points, S ← S × `decay_factor`(its age since the previous one) + points, in (occurred_at,
event_id) order, so the result is bit-identical however the touchpoints arrived and however
the fold was split into steps. Published values are rounded (score to 2 decimals, breakdown
items to 3). `engagement_at` sums explicit terms (exactly, with `math.fsum`), for checks.

Fit = the points of the persona attributes a person matches (job-title keywords as whole
words, company size range, industry, overlapping pain points), for the best-matching persona
(ties go to the persona listed first).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from schemas.journey import Firmographics, FitItem, FitScore
from schemas.playbook import Persona, Playbook

SECONDS_PER_DAY = 86_400.0


def decay_factor(age_seconds: float, half_life_days: float) -> float:
    """0.5 ^ (age / half-life): what is left of a point after `age_seconds`."""
    factor: float = 0.5 ** (age_seconds / (half_life_days * SECONDS_PER_DAY))
    return factor


def decayed(points: float, age_seconds: float, half_life_days: float) -> float:
    """`points` halved once per half-life of age."""
    return points * decay_factor(age_seconds, half_life_days)


def engagement_at(
    at: datetime,
    items: Sequence[tuple[datetime, float]],
    half_life_days: float,
    carry: tuple[datetime, float] | None = None,
) -> float:
    """Engagement as of `at` from (event time, points) items in order, plus a carried sum."""
    terms = [
        decayed(points, (at - t).total_seconds(), half_life_days) for t, points in items if points
    ]
    if carry is not None and carry[1]:
        terms.insert(0, decayed(carry[1], (at - carry[0]).total_seconds(), half_life_days))
    return math.fsum(terms)


@lru_cache(maxsize=1024)
def _keyword(keyword: str) -> re.Pattern[str]:
    # Whole words, so that "bi" does not match "mobile" and "cro" does not match "micro".
    return re.compile(r"(?<!\w)" + re.escape(keyword.lower()) + r"(?!\w)")


def persona_fit(firmographics: Firmographics, persona: Persona) -> FitScore:
    """How well a person fits one persona, attribute by attribute."""
    items: list[FitItem] = []
    title = (firmographics.job_title or "").lower()
    if title:
        words = [k for k in persona.job_titles if _keyword(k).search(title)]
        if words:
            items.append(FitItem(attribute="job_title", matched=words,
                                 points=persona.points.job_title))  # fmt: skip
    size = firmographics.company_size
    if (
        size is not None
        and persona.company_size is not None
        and persona.company_size.contains(size)
    ):
        items.append(FitItem(attribute="company_size", matched=[str(size)],
                             points=persona.points.company_size))  # fmt: skip
    industry = (firmographics.industry or "").strip().lower()
    if industry and industry in {i.lower() for i in persona.industries}:
        items.append(FitItem(attribute="industry", matched=[industry],
                             points=persona.points.industry))  # fmt: skip
    wanted = {p.lower() for p in persona.pain_points}
    shared = sorted({p.lower() for p in firmographics.pain_points} & wanted)
    if shared:
        items.append(FitItem(attribute="pain_points", matched=shared,
                             points=persona.points.pain_points))  # fmt: skip
    score = round(math.fsum(item.points for item in items), 2)
    return FitScore(score=score, persona=persona.name if items else None, breakdown=items)


def fit(firmographics: Firmographics, playbook: Playbook) -> FitScore:
    """Fit against the best-matching persona of the playbook."""
    best = FitScore(score=0.0)
    for persona in playbook.personas:
        candidate = persona_fit(firmographics, persona)
        if candidate.persona is not None and (best.persona is None or candidate.score > best.score):
            best = candidate
    return best
