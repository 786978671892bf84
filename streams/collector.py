"""Python's cyclic collector, set for the long folds: the worker's, and a replay's.

Both hold hundreds of thousands of long-lived objects (journeys, fold states, pydantic
models) that Python's default thresholds (700 allocations) scan over and over.

* **The worker** freezes what survives each collection too (`tune_worker_gc`). Its young
  collections find cyclic garbage (Faust's and the Kafka client's) and must run, but what
  survives one is nearly all long-lived: decoded journeys and their fold states. Collected
  again by the older generations, that was about 1 s per bench drain in one pause, and at
  10,000 people 12.8 s with pauses of up to 4.2 s (docs/performance.md). Frozen, the survivors
  are scanned once. A cycle that dies after it was frozen waits for the next reclaim
  (`reclaim_every`, `TANDEM_COLLECTOR_RECLAIM_S`: one full collection), and there is little of
  it: 64–328 objects per 90 s of a worker draining as fast as it can. A full collection's
  pause grows with the heap (1.5 s to 8.9 s while a worker filled with 10,000 journeys), so
  reclaims are rare and on a clock: an earlier attempt reclaimed whenever the frozen objects
  had doubled, and so collected in full again and again while the heap grew.
* **A replay** freezes the survivors of every collection (`freeze_survivors`). The journey
  workflow makes no reference cycles (`tests/unit/test_collector.py` checks it), so scanning
  long-lived objects again finds nothing. With `gc.freeze` after each collection (it moves
  every tracked object out of the collector's reach, at no cost per object) each object is
  scanned once, by the young collection after it was made, while it is still in the CPU's
  cache. On the 2,000-person bench workload, collections took 0.75 s with no pause over 4 ms,
  against 2.1–2.5 s with pauses of 0.7–0.8 s under the worker's thresholds of then; the
  replay's CPU time went from 12.9–13.0 s to 11.6–12.1 s. A cycle that became garbage after
  it was frozen would never be collected: a replay keeps every journey until it ends anyway.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

log = logging.getLogger("tandem.worker")

THRESHOLDS = (700, 10, 10)
"""Python's defaults, for the worker and a replay alike: young collections small enough to stay
in the CPU's cache, with pauses of a few ms. Before it froze survivors, the worker collected
every 50,000 allocations (at the defaults, collection then took 20–40 % of a replay). With the
freeze, 50,000 gave young collections of 60–170 ms each, and they showed in the hand-off tail:
three paired latency runs gave p99 359 / 353 / 181 ms at 50,000 and 276 / 189 / 254 at 700
(23 against 9 slow probes of 720), for no throughput or CPU gained (docs/performance.md)."""


def tune_worker_gc() -> None:
    """Set the collector for a worker as for a replay (`freeze_survivors`); what dies frozen is
    taken back by `reclaim_frozen` (see the module doc)."""
    freeze_survivors()


def reclaim_frozen() -> int:
    """Collect the cyclic garbage among the frozen objects (one full collection, a pause
    that grows with the heap); what survives is frozen again. Returns what it found."""
    gc.unfreeze()
    return gc.collect()


def reclaim_every(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """Run `reclaim_frozen` on `loop` (the worker's, between its batches) every `seconds`
    (0: never)."""
    if not seconds:
        return

    def reclaim() -> None:
        started = time.perf_counter()
        found = reclaim_frozen()
        log.info("collector: reclaimed %d frozen objects in %.2f s (a full collection)",
                 found, time.perf_counter() - started)  # fmt: skip
        loop.call_later(seconds, reclaim)

    loop.call_later(seconds, reclaim)


def _freeze_after(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop":
        gc.freeze()


def freeze_survivors() -> None:
    """Set the collector for a replay: what is alive now, and what survives each collection
    from now on, is frozen (see the module doc). Setting it twice is setting it once."""
    gc.set_threshold(*THRESHOLDS)
    gc.freeze()
    if _freeze_after not in gc.callbacks:
        gc.callbacks.append(_freeze_after)
