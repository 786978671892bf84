"""`tandem journey`'s rendering of a stored snapshot (the Redis lookup is an integration test)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events import parse_touchpoint
from streams import journey as core
from streams import workflow
from streams.cli._common import console
from streams.cli.journey import render_journey
from streams.samples import demo_journeys

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_every_demo_journey_renders_with_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    playbook = core.default_playbook()
    result = workflow.replay([parse_touchpoint(d) for d in demo_journeys(NOW)], playbook)
    assert result.records
    for record in result.records.values():
        snapshot = core.snapshot(record, playbook).model_dump(mode="json")
        with console.capture() as shown:
            render_journey(snapshot)
        text = shown.get()
        assert snapshot["customer_id"] in text
        counts = snapshot["counts"]
        assert f"{counts['touchpoints']} touchpoints ({counts['retained']} retained" in text
