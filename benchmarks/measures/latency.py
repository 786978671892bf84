"""``handoff_latency_ms`` p50/p99: publish → hand-off at 50 % of the engine's measured rate.

A fresh deployment and worker. For `latency_s` seconds a paced publisher sends, in total,
half the engine's measured maximum (`engine_events_per_s` of this run, or ``--engine-rate``,
or the previous results file): a background of the shuffled workload, plus `PROBES_PER_S`
hand-off-worthy journeys a second (`journeys.handoff_journey`, each under new identities).
A probe's latency is the Kafka timestamp of its hand-off on signals.handoff (set by the
worker's producer) minus the time its triggering touchpoint (``trigger_event_id``) was handed
to the publisher. Only probes are measured: their touchpoints are all published in order by
us, so the trigger is always the touchpoint that made the journey hand-off-worthy.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

from benchmarks.context import Context, Result
from benchmarks.deployment import Deployment, consumed_topics, group_lag
from benchmarks.drain import wait_drained
from benchmarks.journeys import handoff_journey
from benchmarks.report import percentile
from benchmarks.signals import Handoff, handoffs
from benchmarks.worker import start_worker, wait_ready
from events import Touchpoint
from events.publisher import TouchpointPublisher
from streams import journey as core

PROBES_PER_S = 4.0
TICK_S = 0.01
LINGER_MS = 5  # the worker's own producer linger: the publisher adds no more than that


def _probes(count: int) -> list[list[Touchpoint]]:
    playbook, now = core.default_playbook(), datetime.now(UTC)
    return [handoff_journey(f"probe{n}", now, playbook, check=n == 0) for n in range(count)]


async def publish_paced(
    deployment: Deployment, background: list[Touchpoint], probes: list[list[Touchpoint]],
    rate: float, seconds: float,
) -> dict[str, float]:  # fmt: skip
    """Publish at `rate` a second for `seconds`; the publish time of every probe touchpoint."""
    probe_rate = len(probes) / seconds
    background_rate = rate - probe_rate * len(probes[0])
    published: dict[str, float] = {}
    sent_background = sent_probes = 0
    async with TouchpointPublisher(
        deployment.bootstrap, deployment.settings.topic_prefix, linger_ms=LINGER_MS
    ) as publisher:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            while sent_probes < min(len(probes), math.floor(elapsed * probe_rate) + 1):
                for touchpoint in probes[sent_probes]:
                    published.setdefault(touchpoint.event_id, time.time())
                    await publisher.publish(touchpoint)
                sent_probes += 1
            due = min(len(background), math.floor(elapsed * background_rate))
            while sent_background < due:
                await publisher.publish(background[sent_background])
                sent_background += 1
            await asyncio.sleep(TICK_S)
    return published


def first_handoff_latencies(signals: list[Handoff], published: dict[str, float]) -> list[float]:
    """Milliseconds from trigger to the first hand-off, per probe journey.

    A probe can hand off twice (under the anonymous id's customer, then again once the form
    merges it into the email's, superseding the first): only its first hand-off counts.
    """
    first: dict[str, float] = {}
    for signal in signals:
        sent = published.get(signal.trigger_event_id)
        if sent is not None:
            probe = signal.trigger_event_id.rsplit("-", 1)[0]
            first[probe] = min(first.get(probe, math.inf), (signal.produced_at - sent) * 1000)
    return list(first.values())


def _rate(ctx: Context) -> float:
    engine = ctx.metric("engine_events_per_s")
    if not engine:
        raise RuntimeError("no engine rate: run the engine measure first, or --engine-rate")
    return 0.5 * float(engine)


def run(ctx: Context) -> Result:
    rate, seconds = _rate(ctx), ctx.sizes.latency_s
    probes = _probes(max(1, round(PROBES_PER_S * seconds)))
    per_probe = len(probes[0])
    if rate <= PROBES_PER_S * per_probe:
        raise RuntimeError(f"{rate:.0f}/s leaves no room for {PROBES_PER_S:.0f} probes a second")
    _, background = ctx.workload(max(100, math.ceil(rate * seconds / 7)))
    deployment = ctx.deployment("latency")
    asyncio.run(deployment.create())
    worker = start_worker(deployment, "latency-worker")
    wait_ready(worker)
    ctx.progress(f"publishing at {rate:,.0f}/s for {seconds:.0f} s ({len(probes)} probes)")
    try:
        published = asyncio.run(publish_paced(deployment, background, probes, rate, seconds))
        lag = asyncio.run(group_lag(deployment, asyncio.run(consumed_topics(deployment))))
        ctx.progress(f"behind when publishing ended: {sum(lag.values()):,} messages")
        asyncio.run(wait_drained(deployment, quiet_s=6.0, timeout=ctx.sizes.drain_timeout_s))
    finally:
        worker.stop()
    signals = asyncio.run(handoffs(deployment))
    latencies = first_handoff_latencies(signals, published)
    if len(latencies) < len(probes) // 2:
        raise RuntimeError(
            f"only {len(latencies)} of {len(probes)} probes handed off "
            f"({len(signals)} hand-offs on the topic; worker log: {worker.log_path})"
        )
    note = f"{len(latencies)} hand-offs at {rate:,.0f}/s; behind at the end: {sum(lag.values())}"
    return Result(
        metrics={
            "handoff_latency_ms_p50": percentile(latencies, 50),
            "handoff_latency_ms_p99": percentile(latencies, 99),
        },
        notes={"handoff_latency_ms_p50": note},
        details={"rate_per_s": rate, "seconds": seconds, "probes": len(probes),
                 "handoffs": len(latencies), "max_ms": max(latencies),
                 "behind_at_end": sum(lag.values())},
    )  # fmt: skip
