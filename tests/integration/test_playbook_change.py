"""A changed playbook takes effect on restart: every journey is re-evaluated under it.

Journeys folded under the test playbook; the worker restarts under a copy with another version
and a lower MQL threshold. Without a new touchpoint, every journey in Redis is then the one the
replay gives under the new playbook (the start-up sweep finds them by the playbook version in
each stored record's header, without decoding them).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from streams.settings import Settings
from streams.workload import build
from tests.integration.conftest import WorkerProcess
from tests.integration.equivalence import (
    compare,
    expected_journeys,
    isolated_deployment,
    key_fields,
    publish,
    wait_until_drained,
)
from tests.stack import TEST_PLAYBOOK

pytestmark = pytest.mark.integration


def changed_playbook(path: Path) -> Path:
    rules = yaml.safe_load(TEST_PLAYBOOK.read_text())
    rules["version"] = "test-changed"
    rules["mql_rule"]["min_engagement"] = max(1, rules["mql_rule"]["min_engagement"] // 2)
    path.write_text(yaml.safe_dump(rules))
    return path


async def test_a_restart_under_a_new_playbook_re_evaluates_every_journey(
    settings: Settings, tmp_path: Path
) -> None:
    workload = build(150, seed=5, now=datetime.now(UTC) - timedelta(hours=1), prefix="pb")
    async with isolated_deployment(settings, "pb", tmp_path) as (own, projection):
        before = expected_journeys(workload.documents, own)
        worker = WorkerProcess(own, tmp_path / "worker.log")
        try:
            await asyncio.gather(asyncio.to_thread(worker.start), publish(own, workload.documents))
            await wait_until_drained(own, projection, expected_journeys=len(before))
        finally:
            worker.stop()
        assert compare(before, await projection.snapshots()).equal

        changed = own.model_copy(update={"playbook": changed_playbook(tmp_path / "pb.yaml")})
        after = expected_journeys(workload.documents, changed)
        changed_journeys = [c for c in after if key_fields(after[c]) != key_fields(before[c])]
        assert changed_journeys  # the new playbook changes stages and signals of some journeys
        restarted = WorkerProcess(changed, tmp_path / "worker.log")
        try:
            await asyncio.to_thread(restarted.start)
            for _ in range(120):
                live = await projection.snapshots()
                if all(j["playbook_version"] == "test-changed" for j in live.values()):
                    break
                await asyncio.sleep(0.5)
        finally:
            restarted.stop()
    assert {j["playbook_version"] for j in live.values()} == {"test-changed"}
    result = compare(after, live)
    assert result.equal, result.summary()
