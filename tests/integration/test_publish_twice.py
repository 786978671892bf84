"""Publishing the same JSONL file twice changes nothing the second time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams import journey as core
from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings
from streams.topics import HANDOFF, NURTURE
from tests.integration.conftest import WorkerProcess, settings_env
from tests.integration.equivalence import consumer_lag
from tests.integration.helpers import TIMER_RULES, eventually, read_topic
from tests.integration.test_pipeline import expected_snapshots, live_snapshots

pytestmark = pytest.mark.integration


def publish_file(settings: Settings, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "publish", str(path), "--json"],
        env=settings_env(settings),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


async def test_the_second_publication_changes_nothing(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection, tmp_path: Path
) -> None:
    documents = demo_journeys(datetime.now(UTC) - timedelta(hours=3), prefix="twice")
    path = tmp_path / "journeys.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in documents))
    expected = expected_snapshots(documents, settings)
    expected.pop(core.LEDGER_CUSTOMER)

    first = publish_file(settings, path)
    assert first["accepted"] == len(documents)
    live = await eventually(
        lambda: live_snapshots(projection, set(expected)), lambda found: found == expected
    )
    assert live == expected

    async def signal_log() -> list[Any]:
        messages = await read_topic(settings, HANDOFF) + await read_topic(settings, NURTURE)
        return sorted(
            (v["signal_id"], v["version"]) for k, v in messages if k in expected and v is not None
        )

    signals_before = await signal_log()
    before = {cid: await projection.snapshot(cid) for cid in expected}

    second = publish_file(settings, path)
    assert second["accepted"] == len(documents)
    # Wait until the worker has handled every re-sent event: nothing visible would change.
    await eventually(lambda: consumer_lag(settings), lambda lag: lag == 0, timeout=90)
    assert await live_snapshots(projection, set(expected)) == expected
    assert await signal_log() == signals_before, "a duplicate never emits a signal"
    for cid, snapshot in before.items():
        after = await projection.snapshot(cid)
        assert snapshot is not None and after is not None
        if after["version"] != snapshot["version"]:
            # Only a timer may have changed it meanwhile (an SLA is due on the wall clock).
            changed = _signals(after) ^ _signals(snapshot)
            assert changed and all(rule in TIMER_RULES for _, rule, _ in changed), (
                f"{cid}: a duplicate changed the journey (version {snapshot['version']} -> "
                f"{after['version']}, signals changed: {changed})"
            )


def _signals(snapshot: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {(s["signal_id"], s["rule"], s["version"]) for s in snapshot["signals"]}
