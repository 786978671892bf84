"""The metrics module: what each counter counts, the touchpoint identity, the collectors."""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry

from events.vocabulary import parse_touchpoint
from streams import journey as core
from streams.adapters.agents import _touchpoint_outcome
from streams.metrics import ConsumerLag, LiveJourneys, WorkerMetrics, serve_worker_metrics
from streams.workflow import handlers
from streams.workflow.memory import InMemoryJourneyStore
from streams.workflow.messages import Move, TouchpointArrived
from streams.workflow.unit import JourneyUnit

PB = core.default_playbook()
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def visit(n: int, email: str = "ada@example.com") -> Any:
    return parse_touchpoint(
        {
            "event_id": f"e{n}",
            "type": "marketing.page_viewed",
            "occurred_at": (T0 + timedelta(hours=n)).isoformat(),
            "source": "website",
            "identity": {"email": email},
            "properties": {"url": f"https://example.com/{n}"},
        }
    )


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def deliver(unit: JourneyUnit, customer_id: str, touchpoint: Any) -> str:
    """Handle one touchpoint delivery as the journeys agent does; its outcome."""
    unit.begin()
    before = unit.counters.duplicates, unit.counters.suppressed, len(unit.outbox)
    handlers.handle_journey_message(customer_id, TouchpointArrived(touchpoint=touchpoint), unit)
    return _touchpoint_outcome(unit, *before)


def test_each_touchpoint_delivery_gets_one_outcome_from_the_real_handlers() -> None:
    unit = JourneyUnit(InMemoryJourneyStore(), PB)
    assert deliver(unit, "cus_a", visit(1)) == "applied"
    assert deliver(unit, "cus_a", visit(2)) == "applied"
    assert deliver(unit, "cus_a", visit(1)) == "duplicate"  # the same event_id again
    handlers.journey_moved("cus_a", Move(to="cus_b", cause_event_id="e9", at=T0), unit)
    assert deliver(unit, "cus_a", visit(3)) == "forwarded"  # lands at cus_b, counted there
    assert deliver(unit, "cus_b", visit(3)) == "applied"


def test_received_is_applied_plus_duplicate_plus_dead_lettered() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    outcomes = ["applied"] * 5 + ["duplicate"] * 2 + ["forwarded"] * 3 + ["dead_lettered"]
    outcomes += ["suppressed"] * 4
    for outcome in outcomes:
        metrics.count_touchpoint(outcome)  # type: ignore[arg-type]
    received = value(metrics, "tandem_touchpoints_received_total")
    assert received == 8  # forwarded ones are received where they land; suppressed ones never
    assert value(metrics, "tandem_touchpoints_applied_total") == 5
    assert value(metrics, "tandem_touchpoints_duplicate_total") == 2
    assert value(metrics, "tandem_touchpoints_dead_lettered_total", reason="invalid") == 1
    assert value(metrics, "tandem_touchpoints_forwarded_total") == 3
    assert value(metrics, "tandem_touchpoints_suppressed_total", stage="journeys") == 4


def test_a_batch_is_timed_and_its_messages_counted_per_agent() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    with metrics.batch("journeys", 120):
        pass
    with metrics.batch("journeys", 30):
        pass
    assert value(metrics, "tandem_batch_seconds_count", agent="journeys") == 2
    assert value(metrics, "tandem_batch_seconds_sum", agent="journeys") >= 0
    assert value(metrics, "tandem_batch_messages_total", agent="journeys") == 150
    assert value(metrics, "tandem_batch_messages_total", agent="ingest") == 0


def test_consumer_lag_is_end_minus_committed_for_input_partitions_only() -> None:
    a0, a1, changelog = (
        TP("p.touchpoints.resolved", 0),
        TP("p.touchpoints.resolved", 1),
        TP("p.tandem-journeys-changelog", 0),
    )
    monitor = SimpleNamespace(
        tp_end_offsets={a0: 120, a1: 50, changelog: 999},
        tp_committed_offsets={a0: 100, a1: 50, changelog: 1},
    )
    registry = CollectorRegistry()
    registry.register(ConsumerLag(SimpleNamespace(_monitor=monitor), frozenset({a0.topic}), "p."))
    get = registry.get_sample_value
    assert get("tandem_consumer_lag", {"topic": "touchpoints.resolved", "partition": "0"}) == 20
    assert get("tandem_consumer_lag", {"topic": "touchpoints.resolved", "partition": "1"}) == 0
    assert (
        get("tandem_consumer_lag", {"topic": "tandem-journeys-changelog", "partition": "0"}) is None
    )


def test_consumer_lag_is_empty_before_the_worker_has_a_monitor() -> None:
    registry = CollectorRegistry()
    registry.register(ConsumerLag(SimpleNamespace(_monitor=None), frozenset({"x"}), ""))
    assert "tandem_consumer_lag{" not in _exposition(registry)


def test_live_journeys_reports_the_count_or_nothing_and_an_error() -> None:
    errors: list[int] = []
    registry = CollectorRegistry()
    registry.register(LiveJourneys(lambda: 42, lambda: errors.append(1)))
    assert registry.get_sample_value("tandem_journeys") == 42

    def unreachable() -> int:
        raise ConnectionError("redis down")

    broken = CollectorRegistry()
    broken.register(LiveJourneys(unreachable, lambda: errors.append(1)))
    assert broken.get_sample_value("tandem_journeys") is None
    assert errors == [1]


def _exposition(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_worker_metrics_are_served_over_http_and_a_taken_port_is_survived() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.count_touchpoint("applied")
    port = _free_port()
    options: dict[str, Any] = dict(
        app=SimpleNamespace(_monitor=None), topics=frozenset(), topic_prefix="",
        redis_url="redis://127.0.0.1:1/0", redis_prefix="x:", metrics=metrics,
    )  # fmt: skip
    server = serve_worker_metrics(port, "127.0.0.1", **options)
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert "tandem_touchpoints_applied_total 1.0" in text
        assert "process_cpu_seconds_total" in text
        # Redis at port 1 does not answer: no journeys sample, one error counted.
        assert "\ntandem_journeys " not in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            again_text = answer.read().decode()  # counted while collecting: shown next time
        assert 'tandem_redis_errors_total{operation="metrics"} 1.0' in again_text
        other = WorkerMetrics(CollectorRegistry())
        assert serve_worker_metrics(port, "127.0.0.1", **{**options, "metrics": other}) is None
    finally:
        server.shutdown()
        server.server_close()
