"""``engine_events_per_s``: a real `tandem worker` draining the backlog into journeys in Redis.

A fresh worker (`python -m streams.cli worker`, through `benchmarks.worker_probe`) on the
backlog deployment — the same messages the two ceilings moved, already on the input topics —
with its own app id, so it starts from the first message. Timed from the worker's "Ready"
log line until drained (`benchmarks.drain`: group lag zero on every consumed topic, then
nothing written and no journey added for a quiet window; the end is the last change).
``ratio`` and ``ratio_faust`` divide it by the two ceilings (`report.derived`).

``kpi_cpu_share``: of the worker's CPU time over the same span, the share spent in KPI code
(`worker_probe.KPI_ENTRY_POINTS`: building the KPI facts of a changed journey, queueing their
write). ``worker_peak_rss_mb``: the worker's peak resident memory by the end of the drain.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.context import Context, Result
from benchmarks.deployment import message_count
from benchmarks.drain import wait_drained
from benchmarks.worker import read_probe, start_worker, wait_ready

QUIET_S = 11.0  # two timer intervals (5 s) and a commit interval


def run(ctx: Context) -> Result:
    deployment, count = ctx.backlog()
    expected = ctx.replay_journeys()
    worker = start_worker(deployment, "engine-worker")
    ctx.progress(f"worker pid {worker.pid}: waiting for Ready")
    ready = wait_ready(worker)
    probe_before = read_probe(deployment)
    ctx.progress(f"draining {count:,} touchpoints (replay: {expected:,} journeys)")
    try:
        drained = asyncio.run(
            wait_drained(deployment, quiet_s=QUIET_S, timeout=ctx.sizes.drain_timeout_s)
        )
        probe_after = read_probe(deployment)
    finally:
        worker.stop()
    seconds = drained.at - ready
    dead = asyncio.run(
        message_count(deployment.bootstrap, [deployment.topic("touchpoints.deadletter")])
    )
    share, kpi_note = _kpi_share(probe_before, probe_after)
    metrics = {"engine_events_per_s": count / seconds, "kpi_cpu_share": share}
    if probe_after is not None and "peak_rss_mb" in probe_after:
        metrics["worker_peak_rss_mb"] = probe_after["peak_rss_mb"]
    notes = {
        "engine_events_per_s": f"{count:,} touchpoints in {seconds:.1f} s; "
        f"{drained.live_journeys:,} live journeys, replay {expected:,}",
        "kpi_cpu_share": kpi_note,
    }
    prefix = deployment.settings.topic_prefix
    details = {
        "touchpoints": count, "seconds": seconds, "startup_s": ready - worker.started_at,
        "live_journeys": drained.live_journeys, "replay_journeys": expected,
        "dead_letters": dead, "kpi_probe": {"before": probe_before, "after": probe_after},
        "messages_per_touchpoint": _per_touchpoint(drained.by_topic, prefix, count),
    }  # fmt: skip
    return Result(metrics, notes, details)


def _per_touchpoint(by_topic: dict[str, int], prefix: str, count: int) -> dict[str, float]:
    """Messages in each of the worker's topics per touchpoint of the backlog (the prefix taken
    off, the ceilings' output topics left out): what one touchpoint costs in Kafka messages,
    table changelogs included."""
    named = ((name.removeprefix(prefix), n) for name, n in by_topic.items())
    return {name: round(n / count, 3) for name, n in named if n and not name.startswith("bench.")}


def _kpi_share(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[float | None, str]:
    if before is None or after is None:
        return None, "not measured (no probe output)"
    cpu = after["process_cpu_s"] - before["process_cpu_s"]
    kpi = after["kpi_cpu_s"] - before["kpi_cpu_s"]
    if cpu <= 0:
        return None, "not measured (no CPU time)"
    missing = f"; not found: {', '.join(after['missing'])}" if after["missing"] else ""
    return kpi / cpu, f"{kpi:.1f} of {cpu:.1f} CPU s during the drain{missing}"
