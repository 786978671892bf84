"""The collector setting of the long folds (`streams.collector`), and the fact it rests on.

Each test's changes to the collector are undone by `tests/conftest.py`."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from events import parse_touchpoint
from streams import collector
from streams import journey as core
from streams.workflow.replay import Replayer
from streams.workload import build

NOW = datetime(2025, 3, 1, tzinfo=UTC)


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def _frozen_cycle() -> weakref.ref[Node]:
    """A cycle that survives a young collection (and is frozen, if survivors are), then is
    garbage."""
    node = Node()
    gc.collect(0)
    return weakref.ref(node)


def test_the_core_makes_no_reference_cycles() -> None:
    """Freezing survivors is safe for a replay because the workflow leaves no cyclic garbage:
    a replay with merges, duplicates, late touchpoints and timers, collector off, leaves
    nothing for a collection to find."""
    workload = build(150, seed=3, now=NOW)
    touchpoints = [parse_touchpoint(document) for document in workload.documents]
    playbook = core.default_playbook()
    gc.collect()
    gc.disable()
    try:
        replayer = Replayer(playbook)
        for touchpoint in touchpoints:
            replayer.touchpoint(touchpoint)
        replayer.tick(datetime(2025, 6, 1, tzinfo=UTC))
        result = replayer.result()
        found = gc.collect()
    finally:
        gc.enable()
    assert result.applied > 0 and result.moves > 0 and result.duplicates > 0
    assert found == 0


@pytest.mark.parametrize(
    "tune", [collector.freeze_survivors, collector.tune_worker_gc], ids=["replay", "worker"]
)
def test_each_freezes_what_each_collection_leaves(tune: Callable[[], None]) -> None:
    gc.set_threshold(50_000, 20, 20)
    tune()
    frozen = gc.get_freeze_count()
    kept = [[n] for n in range(1_000)]
    gc.collect(0)
    assert gc.get_freeze_count() >= frozen + len(kept)
    assert gc.get_threshold() == collector.THRESHOLDS


def test_a_replay_never_collects_what_it_froze() -> None:
    collector.freeze_survivors()
    node = _frozen_cycle()
    gc.collect()
    assert node() is not None  # the price, taken knowingly (see the module doc)


def test_setting_it_twice_is_setting_it_once() -> None:
    collector.freeze_survivors()
    collector.freeze_survivors()
    assert gc.callbacks.count(collector._freeze_after) == 1


def test_a_worker_reclaims_the_garbage_it_froze() -> None:
    collector.tune_worker_gc()
    node = _frozen_cycle()
    gc.collect()
    assert node() is not None  # frozen: out of every collection's reach until reclaimed
    kept = [[n] for n in range(1_000)]
    assert collector.reclaim_frozen() >= 1
    assert node() is None
    frozen = gc.get_freeze_count()
    assert frozen >= len(kept)  # what survived the reclaim is frozen again
    gc.collect(0)
    assert gc.get_freeze_count() >= frozen


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop of the test's own (a worker's reclaims are scheduled on its loop)."""
    own = asyncio.new_event_loop()
    yield own
    own.close()


def test_a_worker_reclaims_on_its_loop_every_interval(loop: asyncio.AbstractEventLoop) -> None:
    collector.tune_worker_gc()
    node = _frozen_cycle()
    collector.reclaim_every(loop, 0.5)
    loop.run_until_complete(asyncio.sleep(0.05))
    assert node() is not None  # not yet due
    loop.run_until_complete(asyncio.sleep(0.6))
    assert node() is None
    last = _frozen_cycle()  # and again, an interval later: it keeps reclaiming
    loop.run_until_complete(asyncio.sleep(0.6))
    assert last() is None


def test_a_worker_told_never_to_reclaim_never_does(loop: asyncio.AbstractEventLoop) -> None:
    collector.tune_worker_gc()
    node = _frozen_cycle()
    collector.reclaim_every(loop, 0)
    loop.run_until_complete(asyncio.sleep(0.05))
    assert node() is not None
