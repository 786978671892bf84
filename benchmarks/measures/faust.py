"""``faust_ceiling_events_per_s``: one Faust agent passing the backlog on, message by message.

`benchmarks.faust_passthrough` in a subprocess (a minimal faust.App configured like the
worker: `async for event in stream.events(): await topic.send(...)`) over the same backlog.
Timed from its first event (the app prints the time) until the output topic holds every
message (end offsets polled every 20 ms): the ceiling for anything built of Faust agents.
"""

from __future__ import annotations

import asyncio
import re

from benchmarks import processes
from benchmarks.context import Context, Result
from benchmarks.deployment import wait_for_messages

OUTPUT = "bench.faust-out"


def _first_event(child: processes.Child) -> float:
    child.wait_for("FIRST-EVENT", timeout=120)
    # Faust's worker logs what the app prints: the line carries a log prefix.
    found = re.search(r"FIRST-EVENT (\d+\.\d+)", child.output())
    if found is None:
        raise RuntimeError(f"no first-event time in {child.log_path}")
    return float(found.group(1))


def run(ctx: Context) -> Result:
    deployment, count = ctx.backlog()
    asyncio.run(deployment.create([deployment.topic(OUTPUT)]))
    env = processes.python_env(deployment.env())
    argv = ["-m", "benchmarks.faust_passthrough", deployment.topic(OUTPUT), "worker", "-l", "info"]
    child = processes.Child("faust passthrough", argv, env, deployment.data_dir / "faust.log")
    ctx.progress(f"Faust passthrough of {count:,} messages (pid {child.start().pid})")
    try:
        done = asyncio.run(
            wait_for_messages(
                deployment.bootstrap, deployment.topic(OUTPUT), count, ctx.sizes.drain_timeout_s
            )
        )
        first = _first_event(child)
    finally:
        child.stop()
    seconds = done - first
    return Result(
        metrics={"faust_ceiling_events_per_s": count / seconds},
        notes={"faust_ceiling_events_per_s": f"{count:,} messages in {seconds:.2f} s"},
        details={"messages": count, "seconds": seconds},
    )
