"""Real signals for delivery tests, computed by the pure core from the sample journeys."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from events import parse_touchpoint
from schemas.signals import Signal
from streams import journey as core
from streams import workflow
from streams.samples import demo_journeys

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@cache
def sample_signals() -> tuple[Signal, ...]:
    """Hand-offs, nurture and SLA alerts of the demo journeys (timers evaluated later)."""
    touchpoints = [parse_touchpoint(d) for d in demo_journeys(NOW, prefix="unit")]
    result = workflow.replay(
        touchpoints, core.default_playbook(), now=datetime(2025, 3, 1, tzinfo=UTC)
    )
    return tuple(result.signals)


def first(signal_type: str) -> Signal:
    """The first sample signal of a type."""
    return next(s for s in sample_signals() if s.signal_type == signal_type)
