"""A real worker's ``/metrics`` after a workload: the counters add up (issue 11, item 3).

100 people's shuffled touchpoints with 10 % duplicates and a few invalid inputs go through a
worker with its own metrics port; once it has drained, one scrape must show

    tandem_touchpoints_received = applied + duplicate + dead_lettered

and agree with what was published, what Redis holds and the consumer group's lag.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.settings import Settings
from streams.topics import MARKETING, full_name
from streams.workload import build
from tests.integration.conftest import WorkerProcess
from tests.integration.equivalence import (
    expected_journeys,
    isolated_deployment,
    publish,
    wait_until_drained,
)

pytestmark = pytest.mark.integration

PEOPLE = 100
INVALID = [b"not json", b"{}", b'{"event_id": "x", "type": "marketing.no_such_type"}']

Samples = dict[str, list[tuple[dict[str, str], float]]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape(port: int) -> Samples:
    """Every sample of the worker's metrics, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


async def publish_invalid(settings: Settings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in INVALID:
            await producer.send_and_wait(full_name(MARKETING, settings.topic_prefix), value)
    finally:
        await producer.stop()


async def test_the_worker_counters_add_up_after_a_workload(
    settings: Settings, tmp_path: Path
) -> None:
    workload = build(
        PEOPLE, seed=11, now=datetime.now(UTC) - timedelta(hours=1), prefix="mx", short=True
    )
    started = time.monotonic()
    async with isolated_deployment(settings, "metrics", tmp_path) as (own, projection):
        port = free_port()
        own = own.model_copy(update={"metrics_port": port})
        worker = WorkerProcess(own, tmp_path / "worker.log")
        try:
            await asyncio.gather(asyncio.to_thread(worker.start), publish(own, workload.documents))
            await publish_invalid(own)
            expected = expected_journeys(workload.documents, own)
            await wait_until_drained(own, projection, expected_journeys=len(expected), timeout=60)
            samples = scrape(port)
            live = len(await projection.customer_ids())
        finally:
            worker.stop()
    elapsed = time.monotonic() - started

    received = total(samples, "tandem_touchpoints_received_total")
    applied = total(samples, "tandem_touchpoints_applied_total")
    duplicate = total(samples, "tandem_touchpoints_duplicate_total")
    dead = total(samples, "tandem_touchpoints_dead_lettered_total")
    forwarded = total(samples, "tandem_touchpoints_forwarded_total")
    deliveries, events = len(workload.documents), len(workload.events)
    print(
        f"\n{deliveries} deliveries ({events} events, {workload.duplicates} duplicates) of "
        f"{PEOPLE} people + {len(INVALID)} invalid, {elapsed:.1f} s: received {received:.0f}, "
        f"applied {applied:.0f}, duplicate {duplicate:.0f}, dead-lettered {dead:.0f}, "
        f"forwarded {forwarded:.0f}, merges {total(samples, 'tandem_merges_total'):.0f}, "
        f"signals {total(samples, 'tandem_signals_total'):.0f}, journeys {live}"
    )
    assert received == applied + duplicate + dead
    # Each delivery reaches its journey once (more only if a batch was repeated: a duplicate).
    assert received >= deliveries
    # Every distinct event is new to the first journey it reaches.
    assert applied >= events
    assert dead == 0

    accepted = total(samples, "tandem_ingest_messages_total", outcome="accepted")
    rejected = total(samples, "tandem_ingest_messages_total", outcome="dead_lettered")
    assert accepted >= deliveries
    assert rejected == len(INVALID)
    assert total(samples, "tandem_dead_letters_total", topic="touchpoints.marketing") == len(
        INVALID
    )

    assert total(samples, "tandem_journeys") == live
    assert total(samples, "tandem_merges_total") > 0  # identity chains merge journeys
    assert total(samples, "tandem_signals_total") > 0
    assert total(samples, "tandem_batch_seconds_count", agent="journeys") > 0
    assert total(samples, "tandem_batch_messages_total", agent="ingest") >= deliveries
    lags = samples["tandem_consumer_lag"]
    assert {labels["topic"] for labels, _ in lags} >= {"touchpoints.resolved"}
    assert all(value == 0 for _, value in lags), lags
    assert total(samples, "tandem_kafka_errors_total") == 0
    assert elapsed < 60
