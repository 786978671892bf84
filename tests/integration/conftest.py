"""Integration tests: every test here is marked ``integration``.

The session fixtures (`settings`, `topics`, `worker`, `projection`, …) live in `tests.stack`,
loaded for every directory by ``tests/conftest.py``; the helpers stay importable from here.
"""

from __future__ import annotations

import pytest

from tests.integration.own_kafka import own_kafka
from tests.integration.own_redis import own_redis
from tests.stack import TEST_PLAYBOOK, WorkerProcess, settings_env

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


__all__ = ["TEST_PLAYBOOK", "WorkerProcess", "own_kafka", "own_redis", "settings_env"]
