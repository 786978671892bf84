"""``recovery_s`` (memory:// and rocksdb://): kill -9 a worker full of journeys, restart it.

For each store, a fresh deployment: the workload of `recovery_people` people is published and
drained by a worker (`benchmarks.drain`), so its tables hold that many journeys; then the
worker is killed with SIGKILL (no shutdown, no final commit), a hand-off-worthy journey under
new identities is published, and a new worker is started on the same settings and data
directory. Measured: from starting the new process until its hand-off is on signals.handoff
(Kafka timestamp) — start-up, rejoining the group (the dead member's session must expire),
table recovery (the changelog for memory://, local files for rocksdb://) and the journey.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from benchmarks.context import Context, Result
from benchmarks.deployment import Deployment
from benchmarks.drain import wait_drained
from benchmarks.journeys import handoff_journey
from benchmarks.signals import handoffs
from benchmarks.worker import start_worker, wait_ready
from streams import journey as core

QUIET_S = 11.0
SIGNAL_TIMEOUT_S = 180.0


async def _first_handoff(deployment: Deployment, event_ids: set[str], since: float) -> float:
    deadline = time.monotonic() + SIGNAL_TIMEOUT_S
    while time.monotonic() < deadline:
        found = [
            s.produced_at
            for s in await handoffs(deployment, since_ms=int(since * 1000))
            if s.trigger_event_id in event_ids
        ]
        if found:
            return min(found)
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no hand-off within {SIGNAL_TIMEOUT_S:.0f} s of the restart")


def recover(ctx: Context, store: str) -> dict[str, float]:
    """Fill, kill, restart, time; what was seen."""
    tag = "recovery-" + store.removesuffix("://")
    deployment = ctx.deployment(tag, store=store)
    _, touchpoints = ctx.workload(ctx.sizes.recovery_people)
    asyncio.run(deployment.create())
    asyncio.run(deployment.publish(touchpoints))
    worker = start_worker(deployment, "worker-before")
    wait_ready(worker)
    ctx.progress(f"{store}: draining {len(touchpoints):,} touchpoints (pid {worker.pid})")
    drained = asyncio.run(
        wait_drained(deployment, quiet_s=QUIET_S, timeout=ctx.sizes.drain_timeout_s)
    )
    worker.kill()
    fresh = handoff_journey(f"fresh{tag}", datetime.now(UTC), core.default_playbook())
    asyncio.run(deployment.publish(fresh))
    ctx.progress(f"{store}: killed with {drained.live_journeys:,} journeys; restarting")
    restarted = start_worker(deployment, "worker-after")
    try:
        ready = wait_ready(restarted)
        signal_at = asyncio.run(
            _first_handoff(deployment, {t.event_id for t in fresh}, restarted.started_at)
        )
    finally:
        restarted.stop()
    return {
        "recovery_s": signal_at - restarted.started_at,
        "ready_s": ready - restarted.started_at,
        "journeys_in_state": drained.live_journeys,
    }


def run(ctx: Context) -> Result:
    metrics, notes, details = {}, {}, {}
    for store in ctx.sizes.recovery_stores:
        seen = recover(ctx, store)
        name = f"recovery_s_{store.removesuffix('://')}"
        metrics[name] = seen["recovery_s"]
        metrics[f"recovery_journeys_{store.removesuffix('://')}"] = seen["journeys_in_state"]
        notes[name] = f"ready after {seen['ready_s']:.1f} s"
        details[store] = seen
    return Result(metrics, notes, details)
