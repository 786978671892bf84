"""Shared by every test directory: the real-stack session fixtures, and the collector kept as
each test found it.

The session fixtures of `tests.stack` (`settings`, `worker`, `projection`, …) are a plugin so
``tests/browser`` runs against the same session's Kafka topics, worker and Redis prefix as
``tests/integration`` — one worker per session, whichever directories run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.stack"]


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    """A replay run in the test process (`tandem replay` through the CLI runner) sets the
    collector for itself (`streams.collector`): put it back, and unfreeze what it froze."""
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    if gc.callbacks != callbacks:
        gc.callbacks[:] = callbacks
        gc.unfreeze()
    gc.set_threshold(*thresholds)
