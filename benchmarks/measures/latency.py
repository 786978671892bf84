"""``handoff_latency_ms`` p50/p99: publish → hand-off at 50 % of the engine's measured rate.

A fresh deployment and worker. For `latency_s` seconds a paced publisher sends, in total,
half the engine's measured maximum (`engine_events_per_s` of this run, or ``--engine-rate``,
or the previous results file): a background of the shuffled workload, plus `PROBES_PER_S`
hand-off-worthy journeys a second (`journeys.handoff_journey`, each under new identities).
The background is the bench workload dated at the run's start, as live traffic is: dated at
the workload's fixed reference time (March 2025), every journey's SLA and nurture timers are
long due when it is created, so the worker's timer sweep sends each new journey a tick within
5 s, in bursts that the probes queue behind (measured in pairs: p99 376 and 542 ms with 13 and
36 probes of 240 at 250 ms or more, against 295 and 272 ms with 4 and 4 dated now). That
measures a timer backlog, not live traffic.
A probe's latency is the Kafka timestamp of its hand-off on signals.handoff (set by the
worker's producer) minus the time its triggering touchpoint (``trigger_event_id``) was handed
to the publisher. Only probes are measured: their touchpoints are all published in order by
us, so the trigger is always the touchpoint that made the journey hand-off-worthy.

For the probes in the tail (≥ `TAIL_MS`), the note and the details say where the time went:
each hop's end is the Kafka timestamp of the trigger on `touchpoints.accepted` (ingest), on
`touchpoints.resolved` (identity), then of the hand-off (journeys) — `hop_waits`. The details
also give each hop's median over every probe (``hop_ms_p50``).
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

from benchmarks.context import SEED, Context, Result
from benchmarks.deployment import Deployment, consumed_topics, group_lag
from benchmarks.drain import wait_drained
from benchmarks.journeys import handoff_journey
from benchmarks.report import percentile
from benchmarks.signals import Handoff, first_seen, handoffs
from benchmarks.worker import read_probe, start_worker, wait_ready
from events import Touchpoint, parse_touchpoint
from events.publisher import TouchpointPublisher
from streams import journey as core
from streams.topics import ACCEPTED, RESOLVED
from streams.workload import build

PROBES_PER_S = 4.0
TICK_S = 0.01
TAIL_MS = 250.0  # the p99 target: a probe this slow is in the tail
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


def first_handoffs(
    signals: list[Handoff], published: dict[str, float]
) -> dict[str, tuple[float, float, str]]:
    """Per probe journey: when its trigger was published, when its first hand-off was
    produced, and the trigger's event id.

    A probe can hand off twice (under the anonymous id's customer, then again once the form
    merges it into the email's, superseding the first): only its first hand-off counts.
    """
    first: dict[str, tuple[float, float, str]] = {}
    for signal in signals:
        sent = published.get(signal.trigger_event_id)
        if sent is not None:
            probe = signal.trigger_event_id.rsplit("-", 1)[0]
            seen = first.get(probe)
            if seen is None or signal.produced_at - sent < seen[1] - seen[0]:
                first[probe] = (sent, signal.produced_at, signal.trigger_event_id)
    return first


def first_handoff_latencies(signals: list[Handoff], published: dict[str, float]) -> list[float]:
    """Milliseconds from trigger to the first hand-off, per probe journey."""
    return [(done - sent) * 1000 for sent, done, _ in first_handoffs(signals, published).values()]


HOPS = ("ingest", "identity", "journeys")
"""The worker's hops a touchpoint passes on its way to a hand-off, in order."""


def hop_waits(
    probes: list[tuple[float, float, str]], accepted: dict[str, float], resolved: dict[str, float]
) -> list[dict[str, float]]:
    """Where each probe's time went, in ms: publish → `touchpoints.accepted` (ingest),
    → `touchpoints.resolved` (identity), → the hand-off (journeys). Each hop's end is the Kafka
    timestamp its agent's producer set; a probe whose trigger is missing on a topic is left out.
    """
    waits = []
    for sent, done, trigger in probes:
        if trigger in accepted and trigger in resolved:
            ends = (accepted[trigger], resolved[trigger], done)
            starts = (sent, *ends[:-1])
            waits.append(
                {
                    hop: (end - start) * 1000
                    for hop, start, end in zip(HOPS, starts, ends, strict=True)
                }
            )
    return waits


def slowest_hops(waits: list[dict[str, float]]) -> dict[str, int]:
    """How many of the probes had each hop as their longest wait."""
    counts = dict.fromkeys(HOPS, 0)
    for wait in waits:
        counts[max(HOPS, key=wait.__getitem__)] += 1
    return counts


def collector_in_tail(
    windows: list[tuple[float, float]], pauses: list[list[float]], slow_ms: float
) -> tuple[int, int]:
    """How many probes took `slow_ms` or longer, and how many of those had a long collector
    pause (`benchmarks.worker_probe`: [time it ended, generation, seconds]) inside their wait."""
    slow = [(sent, done) for sent, done in windows if (done - sent) * 1000 >= slow_ms]
    paused = sum(1 for sent, done in slow if any(sent <= p[0] <= done for p in pauses))
    return len(slow), paused


def _live_background(people: int) -> list[Touchpoint]:
    """The bench workload of `people`, dated now (see the module doc)."""
    workload = build(people, seed=SEED, now=datetime.now(UTC), prefix=f"live{people}")
    return [parse_touchpoint(document) for document in workload.documents]


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
    background = _live_background(max(100, math.ceil(rate * seconds / 7)))
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
    firsts = list(first_handoffs(signals, published).values())
    windows = [(sent, done) for sent, done, _ in firsts]
    latencies = [(done - sent) * 1000 for sent, done in windows]
    if len(latencies) < len(probes) // 2:
        raise RuntimeError(
            f"only {len(latencies)} of {len(probes)} probes handed off "
            f"({len(signals)} hand-offs on the topic; worker log: {worker.log_path})"
        )
    probe = read_probe(deployment) or {}
    collector, pauses = probe.get("gc", {}), probe.get("gc_long_pauses", [])
    slow, paused = collector_in_tail(windows, pauses, TAIL_MS)
    triggers = {trigger for _, _, trigger in firsts}
    accepted = asyncio.run(first_seen(deployment, ACCEPTED, triggers))
    resolved = asyncio.run(first_seen(deployment, RESOLVED, triggers))
    in_tail = [first for first in firsts if (first[1] - first[0]) * 1000 >= TAIL_MS]
    waits = hop_waits(in_tail, accepted, resolved)
    every = hop_waits(firsts, accepted, resolved)
    hop_p50 = {hop: percentile([w[hop] for w in every], 50) for hop in HOPS} if every else {}
    longest = slowest_hops(waits)
    note = f"{len(latencies)} hand-offs at {rate:,.0f}/s; behind at the end: {sum(lag.values())}"
    tail = (
        f"{slow} probes ≥ {TAIL_MS:.0f} ms, {paused} of them waited through a collector pause "
        f"≥ 50 ms; full collections {collector.get('2', {}).get('collections', '?')}, longest "
        f"{collector.get('2', {}).get('max_pause_s', 0) * 1000:.0f} ms; their longest hop: "
        + ", ".join(f"{hop} {count}" for hop, count in longest.items())
    )
    return Result(
        metrics={
            "handoff_latency_ms_p50": percentile(latencies, 50),
            "handoff_latency_ms_p99": percentile(latencies, 99),
        },
        notes={"handoff_latency_ms_p50": note, "handoff_latency_ms_p99": tail},
        details={"rate_per_s": rate, "seconds": seconds, "probes": len(probes),
                 "handoffs": len(latencies), "max_ms": max(latencies),
                 "behind_at_end": sum(lag.values()), "gc": collector,
                 "gc_long_pauses": pauses, "slow_probes": slow, "slow_with_gc_pause": paused,
                 "slow_probe_hops_ms": waits, "slow_probe_longest_hop": longest,
                 "hop_ms_p50": hop_p50},
    )  # fmt: skip
