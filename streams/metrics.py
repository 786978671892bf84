"""Prometheus metrics of the worker and the API (every name prefixed ``tandem_``).

The worker's agents report to `WORKER` (a `WorkerMetrics` on a registry of its own), served
by `serve_worker_metrics` on ``TANDEM_METRICS_PORT``; the API keeps an `ApiMetrics` per app
and serves it at ``GET /metrics``. docs/operations.md lists every metric and what it counts.

The touchpoint counters are counted per *delivery* at the journeys stage, so that

    received = applied + duplicate + dead_lettered

holds at every scrape between batches (`count_touchpoint` classifies each delivery exactly
once; a delivery forwarded to where its journey moved is counted where it lands, and one of a
forgotten person is dropped and counted as suppressed, not received).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("tandem.metrics")

TouchpointOutcome = Literal["applied", "duplicate", "forwarded", "suppressed", "dead_lettered"]

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a batch of hundreds of messages takes milliseconds, an outage seconds."""


class WorkerMetrics:
    """What the worker's agents count (see docs/operations.md for each metric)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.ingested = Counter(
            "tandem_ingest_messages", "Input messages validated by the ingest agent, by domain "
            "and outcome (accepted: sent on to identity; dead_lettered: rejected)",
            ["domain", "outcome"], registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "tandem_dead_letters", "Dead letters sent, by the (unprefixed) topic the input was "
            "read from and the reason code", ["topic", "reason"], registry=r,
        )  # fmt: skip
        self._touchpoint_counters(r)
        self.forgotten = Counter(
            "tandem_journeys_forgotten", "Journeys erased by a forget request", registry=r
        )
        self.signals = Counter(
            "tandem_signals", "Signals published, by signal type", ["type"], registry=r
        )
        self.merges = Counter(
            "tandem_merges", "Journeys moved into another (identity merges carried out)",
            registry=r,
        )  # fmt: skip
        self.merges_refused = Counter(
            "tandem_merges_refused", "Identity merges the playbook's guards refused", registry=r
        )
        self.batch_seconds = Histogram(
            "tandem_batch_seconds", "Time to process one batch, by agent", ["agent"],
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_messages = Counter(
            "tandem_batch_messages", "Messages processed, by agent", ["agent"], registry=r
        )
        self.redis_errors = Counter(
            "tandem_redis_errors", "Failed Redis operations (each retry counts), by operation",
            ["operation"], registry=r,
        )  # fmt: skip
        self.kafka_errors = Counter(
            "tandem_kafka_errors", "Messages the broker did not acknowledge (each is sent "
            "again), by (unprefixed) topic", ["topic"], registry=r,
        )  # fmt: skip
        self.timer_ticks = Counter(
            "tandem_timer_ticks", "Due journeys the timer sweep found, by outcome: sent a "
            "tick, or held (its last tick not handled yet)", ["outcome"], registry=r,
        )  # fmt: skip

    def _touchpoint_counters(self, r: CollectorRegistry) -> None:
        """The per-delivery counters of the journeys stage (``received = applied + duplicate
        + dead_lettered``); registered here, in the middle, so the exposition order stays."""
        self.received = Counter(
            "tandem_touchpoints_received",
            "Touchpoint deliveries that reached their journey at the journeys stage "
            "(= applied + duplicate + dead_lettered)", registry=r,
        )  # fmt: skip
        self.applied = Counter(
            "tandem_touchpoints_applied", "Touchpoint deliveries new to their journey", registry=r
        )
        self.duplicate = Counter(
            "tandem_touchpoints_duplicate",
            "Touchpoint deliveries whose event_id the journey already held (republished, "
            "or a batch repeated after a restart)", registry=r,
        )  # fmt: skip
        self.touchpoints_dead_lettered = Counter(
            "tandem_touchpoints_dead_lettered",
            "Touchpoint deliveries that failed at the journeys stage and were dead-lettered, "
            "by reason code", ["reason"], registry=r,
        )  # fmt: skip
        self.forwarded = Counter(
            "tandem_touchpoints_forwarded",
            "Touchpoint deliveries sent on to the journey theirs had moved to (not received: "
            "they are received where they land)", registry=r,
        )  # fmt: skip
        self.suppressed = Counter(
            "tandem_touchpoints_suppressed",
            "Touchpoints of forgotten people dropped (not received), by stage (identity, "
            "journeys)", ["stage"], registry=r,
        )  # fmt: skip

    def count_touchpoint(self, outcome: TouchpointOutcome, reason: str = "invalid") -> None:
        """Count one touchpoint delivery at the journeys stage, by what became of it."""
        if outcome == "forwarded":
            self.forwarded.inc()
            return
        if outcome == "suppressed":
            self.suppressed.labels(stage="journeys").inc()
            return
        self.received.inc()
        if outcome == "applied":
            self.applied.inc()
        elif outcome == "duplicate":
            self.duplicate.inc()
        else:
            self.touchpoints_dead_lettered.labels(reason=reason).inc()

    def batch(self, agent: str, size: int) -> _BatchTimer:
        """Time one batch of `size` messages: ``with WORKER.batch("journeys", n): ...``."""
        return _BatchTimer(self, agent, size)


class _BatchTimer:
    def __init__(self, metrics: WorkerMetrics, agent: str, size: int) -> None:
        self.metrics, self.agent, self.size = metrics, agent, size
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.metrics.batch_seconds.labels(agent=self.agent).observe(
            time.perf_counter() - self.started
        )
        self.metrics.batch_messages.labels(agent=self.agent).inc(self.size)


WORKER = WorkerMetrics()
"""The worker process's metrics (one registry; `serve_worker_metrics` serves it)."""


class ConsumerLag(Collector):
    """``tandem_consumer_lag{topic,partition}``: the end offset the worker last fetched minus
    its last committed offset, for the agents' input partitions this worker holds.

    Read from the Faust app's monitor when scraped (a copy of two dicts, safe from another
    thread); nothing before the worker has made its monitor.
    """

    def __init__(self, app: Any, topics: frozenset[str], topic_prefix: str) -> None:
        self.app = app
        self.topics = topics
        self.topic_prefix = topic_prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tandem_consumer_lag",
            "Messages of an input partition not yet committed by this worker",
            labels=["topic", "partition"],
        )
        # `app.monitor` would make one on this thread; only the worker's own counts.
        monitor = getattr(self.app, "_monitor", None)
        ends = dict(getattr(monitor, "tp_end_offsets", None) or {})
        committed = dict(getattr(monitor, "tp_committed_offsets", None) or {})
        for tp, end in sorted(ends.items()):
            if tp.topic in self.topics and tp in committed:
                topic = tp.topic.removeprefix(self.topic_prefix)
                family.add_metric([topic, str(tp.partition)], max(0, end - committed[tp]))
        yield family


class LiveJourneys(Collector):
    """``tandem_journeys``: the live journeys in the Redis read model (one SCARD per scrape)."""

    def __init__(self, count: Callable[[], int], on_error: Callable[[], None]) -> None:
        self.count = count
        self.on_error = on_error

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            value = self.count()
        except Exception as exc:  # Redis down: no sample rather than a wrong one
            log.debug("tandem_journeys not collected: %s", exc)
            self.on_error()
            return
        yield GaugeMetricFamily(
            "tandem_journeys", "Live (not merged away) journeys in the Redis read model", value
        )


def redis_journey_count(redis_url: str, redis_prefix: str) -> Callable[[], int]:
    """A blocking counter of live journeys (the metrics are scraped on their own thread)."""
    from redis import Redis

    client = Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    key = f"{redis_prefix}journeys"

    def count() -> int:
        return int(client.scard(key))

    return count


def serve_worker_metrics(
    port: int, host: str, *, app: Any, topics: frozenset[str], topic_prefix: str,
    redis_url: str, redis_prefix: str, metrics: WorkerMetrics = WORKER,
) -> WSGIServer | None:  # fmt: skip
    """Serve the worker's metrics over HTTP on a daemon thread (any path; by convention
    ``/metrics``); the server, for `shutdown()`.

    None, with a warning, when the port is taken: the worker runs without metrics rather
    than not at all.
    """
    registry = metrics.registry
    registry.register(ConsumerLag(app, topics, topic_prefix))
    registry.register(
        LiveJourneys(
            redis_journey_count(redis_url, redis_prefix),
            metrics.redis_errors.labels(operation="metrics").inc,
        )
    )
    ProcessCollector(registry=registry)
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning("metrics not served: %s:%d: %s (set TANDEM_METRICS_PORT)", host, port, exc)
        return None
    return server


class ApiMetrics:
    """What the HTTP API counts; each app has its own registry (tests build many apps)."""

    def __init__(self, redis_url: str, redis_prefix: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tandem_api_requests", "HTTP requests, by method, route template and status",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "tandem_api_request_seconds", "HTTP request latency, by route template", ["route"],
            registry=r,
        )  # fmt: skip
        self.dependency_up = Gauge(
            "tandem_dependency_up", "1 if the dependency answered the last /readyz check",
            ["dependency"], registry=r,
        )  # fmt: skip
        self.redis_errors = Counter(
            "tandem_redis_errors", "Failed Redis operations, by operation", ["operation"],
            registry=r,
        )  # fmt: skip
        self.kafka_errors = Counter(
            "tandem_kafka_errors", "Failed Kafka operations, by operation", ["operation"],
            registry=r,
        )  # fmt: skip
        r.register(
            LiveJourneys(
                redis_journey_count(redis_url, redis_prefix),
                self.redis_errors.labels(operation="metrics").inc,
            )
        )
