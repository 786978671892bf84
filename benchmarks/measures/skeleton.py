"""``skeleton_events_per_s``: the worker's topology with the journey work taken out.

`benchmarks.worker_skeleton` in a subprocess: a real `tandem worker` (its agents, batches,
consumer, commits and sender) whose ingest, identity and journeys steps only pass each message
on along the engine's path (inputs → `touchpoints.accepted`, one partition →
`touchpoints.resolved` → an output topic). On a deployment of its own holding the same
workload (the internal topics must be empty), timed from the worker's "Ready" log line, as
the engine is, until the output topic holds every message.

``skeleton_ratio_faust`` = skeleton ÷ the Faust ceiling: what the engine's ``ratio_faust``
could reach on this topology if validation, identity, the fold, tables, snapshots and Redis
cost nothing. ``engine_share_of_skeleton`` = engine ÷ skeleton: how much of that the work leaves.
The details give the skeleton's CPU time per message (from /proc), to tell a skeleton bound by
its CPU from one waiting on the broker.
"""

from __future__ import annotations

import asyncio
import os

from benchmarks import processes
from benchmarks.context import Context, Result
from benchmarks.deployment import message_count, wait_for_messages
from benchmarks.worker import wait_ready

OUTPUT = "bench.skeleton-out"


def cpu_seconds(pid: int | None) -> float | None:
    """A running process's user + system CPU time (Linux /proc), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(ctx: Context) -> Result:
    _, touchpoints = ctx.workload()
    deployment = ctx.deployment("skeleton")
    output = deployment.topic(OUTPUT)
    ctx.progress(f"publishing {len(touchpoints):,} touchpoints for the skeleton")
    asyncio.run(deployment.create([output]))
    asyncio.run(deployment.publish(touchpoints))
    count = asyncio.run(message_count(deployment.bootstrap, deployment.input_topics))
    env = processes.python_env(deployment.env())
    argv = ["-m", "benchmarks.worker_skeleton", output, *processes.worker_argv(probe=False)[2:]]
    child = processes.Child("worker skeleton", argv, env, deployment.data_dir / "skeleton.log")
    ctx.progress(f"worker skeleton pid {child.start().pid}: passing {count:,} messages on")
    try:
        ready = wait_ready(child)
        cpu_before = cpu_seconds(child.pid)
        done = asyncio.run(
            wait_for_messages(deployment.bootstrap, output, count, ctx.sizes.drain_timeout_s)
        )
        cpu_after = cpu_seconds(child.pid)
    finally:
        child.stop()
    seconds = done - ready
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    busy = "" if cpu is None else f"; {cpu:.1f} CPU s, {1e6 * cpu / count:,.0f} µs a message"
    note = f"{count:,} messages through three hops in {seconds:.2f} s{busy}"
    return Result(
        metrics={"skeleton_events_per_s": count / seconds},
        notes={"skeleton_events_per_s": note},
        details={"messages": count, "seconds": seconds, "worker_cpu_s": cpu},
    )
