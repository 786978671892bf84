"""``recovery_s`` (memory:// and rocksdb://): kill -9 a worker with many journeys, restart it.

For each store, a fresh deployment whose tables hold `recovery_journeys` journeys, written to
their changelogs directly (`benchmarks.seed`: the workflow's own handlers give each person's
journey, identity entries and timer; draining 100,000 people through a worker would take
longer than the rest of the run). A first worker starts and recovers them (for rocksdb://
into its local files), then is killed with SIGKILL (no shutdown, no final commit); a
hand-off-worthy journey under new identities is published, and a new worker is started on the
same settings and data directory. Measured: from starting the new process until its hand-off
is on signals.handoff (Kafka timestamp) — start-up, rejoining the group (the dead member's
session must expire), table recovery (the changelogs for memory://, local files for
rocksdb://) and the journey.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from benchmarks.context import Context, Result
from benchmarks.deployment import Deployment
from benchmarks.journeys import handoff_journey
from benchmarks.seed import changelog_entries, write_changelogs
from benchmarks.signals import handoffs
from benchmarks.worker import start_worker, wait_ready
from streams import journey as core
from streams.app import build_app, changelog_topics
from streams.kafka_admin import create_named_topics

RECOVERED = "Recovery complete"
"""Faust's log line once a worker has read its tables' changelogs."""
SETTLE_S = 3.0
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


def seed(ctx: Context, deployment: Deployment) -> dict[str, float]:
    """The deployment's changelogs filled with `recovery_journeys` journeys; what was written."""
    playbook = core.default_playbook()
    started = time.monotonic()
    journeys, identity, deadlines = changelog_entries(
        ctx.sizes.recovery_journeys,
        playbook,
        datetime.now(UTC),
        lambda n: ctx.progress(f"seeding: {n:,} journeys built"),
    )
    built = time.monotonic() - started
    tables = {"journeys": journeys, "identity": identity, "deadlines": deadlines}
    tandem = build_app(deployment.settings, playbook)
    asyncio.run(create_named_topics(deployment.settings, changelog_topics(tandem.app)))
    asyncio.run(write_changelogs(deployment, tables))
    return {
        "journeys_in_state": len(journeys),
        "identity_entries": len(identity),
        "timers": len(deadlines),
        "changelog_mb": sum(len(v) for t in tables.values() for v in t.values()) / 1e6,
        "seed_s": time.monotonic() - started,
        "build_s": built,
    }


def recover(ctx: Context, store: str) -> dict[str, float]:
    """Seed, recover, kill, restart, time; what was seen."""
    tag = "recovery-" + store.removesuffix("://")
    deployment = ctx.deployment(tag, store=store)
    asyncio.run(deployment.create())
    seeded = seed(ctx, deployment)
    worker = start_worker(deployment, "worker-before")
    ctx.progress(f"{store}: recovering {seeded['journeys_in_state']:,} journeys (pid {worker.pid})")
    started = time.time()
    recovered = worker.wait_for(RECOVERED, timeout=SIGNAL_TIMEOUT_S) - started
    time.sleep(SETTLE_S)  # rocksdb:// writes its files as it goes: let the last ones land
    worker.kill()
    fresh = handoff_journey(f"fresh{tag}", datetime.now(UTC), core.default_playbook())
    asyncio.run(deployment.publish(fresh))
    ctx.progress(f"{store}: killed with {seeded['journeys_in_state']:,} journeys; restarting")
    restarted = start_worker(deployment, "worker-after")
    try:
        ready = wait_ready(restarted)
        signal_at = asyncio.run(
            _first_handoff(deployment, {t.event_id for t in fresh}, restarted.started_at)
        )
    finally:
        restarted.stop()
    return {
        **seeded,
        "recovery_s": signal_at - restarted.started_at,
        "ready_s": ready - restarted.started_at,
        "first_recovery_s": recovered,
    }


def run(ctx: Context) -> Result:
    metrics, notes, details = {}, {}, {}
    for store in ctx.sizes.recovery_stores:
        seen = recover(ctx, store)
        name = f"recovery_s_{store.removesuffix('://')}"
        metrics[name] = seen["recovery_s"]
        metrics[f"recovery_journeys_{store.removesuffix('://')}"] = seen["journeys_in_state"]
        notes[name] = (
            f"ready after {seen['ready_s']:.1f} s; {seen['journeys_in_state']:,.0f} journeys, "
            f"{seen['changelog_mb']:.1f} MB of changelogs (first worker recovered them in "
            f"{seen['first_recovery_s']:.1f} s)"
        )
        details[store] = seen
    return Result(metrics, notes, details)
