"""`trusted` builds the model validation would build, from values already of their types."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from schemas.journey import EngagementScore, ScoreItem, Stage, StageChange
from streams.journey.trusted import trusted

AT = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _same(built: BaseModel, validated: BaseModel) -> None:
    assert type(built) is type(validated)
    assert built == validated
    assert built.__dict__ == validated.__dict__
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump_json() == validated.model_dump_json()


def test_every_field_in_order_is_the_validated_model() -> None:
    values = {"stage": Stage.MQL, "entered_at": AT, "cause_event_id": "e1", "reason": "r",
              "cycle": 2}  # fmt: skip
    _same(trusted(StageChange, **values), StageChange(**values))
    item = {"event_id": "e1", "type": "marketing.page_viewed", "occurred_at": AT,
            "points": 5.0, "decayed": 2.5}  # fmt: skip
    score = {"score": 2.5, "cycle_score": 2.5, "as_of": AT, "half_life_days": 30.0,
             "carried": 0.0, "breakdown": [ScoreItem(**item)]}  # fmt: skip
    _same(trusted(ScoreItem, **item), ScoreItem(**item))
    _same(trusted(EngagementScore, **score), EngagementScore(**score))


def test_other_calls_fill_the_defaults_like_model_construct() -> None:
    built = trusted(EngagementScore, score=0.0, cycle_score=0.0, half_life_days=30.0)
    assert built == EngagementScore(score=0.0, cycle_score=0.0, half_life_days=30.0)
    assert built.model_fields_set == {"score", "cycle_score", "half_life_days"}
