"""The rebuild proof of `tandem forget` (issue 11): a rebuild from the topics never brings a
forgotten person back.

Ada and Bob build journeys on a worker; two of Ada's touchpoints, dated a little more than a
day ahead (a tool with a skewed clock), are dead-lettered. Ada is forgotten and the worker
stops. More than a week later `touchpoints.accepted` and `touchpoints.resolved` have passed
their retention (7 days: the forget request itself is gone), while `touchpoints.marketing`,
`touchpoints.sales` and the dead letters are still there (30 days); the test plays that with
the broker's `DeleteRecords`, which is what retention does. The operator then rebuilds as
docs/operations.md says — a fresh app id (new consumer group and table changelogs) and a fresh
Redis prefix, reading every topic from the beginning — and redrives the dead letters.

Nothing of Ada comes back: not in Redis (either prefix), the rebuilt tables' changelogs,
`journeys.state` (her ids end in tombstones) or the KPI facts; the rebuilt worker counts every
one of her touchpoints as `suppressed`, and Bob's journey is the one he had.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from events.publisher import TouchpointPublisher
from streams import journey as core
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.topics import ACCEPTED, DEADLETTER, JOURNEYS, RESOLVED, full_name
from tests.integration.conftest import WorkerProcess, settings_env
from tests.integration.equivalence import isolated_deployment
from tests.integration.helpers import comparable, eventually, publish_documents, read_topic
from tests.integration.test_forget import ADA, ADA_COOKIE, ADA_CRM, ADA_TRACES, BOB, doc, redis_dump
from tests.integration.test_forget import documents as everyday_documents
from tests.integration.test_worker_metrics import free_port, scrape, total

pytestmark = pytest.mark.integration

AHEAD = timedelta(hours=24, seconds=20)
"""Just past the contract's one-day limit: dead-lettered now, valid 20 s later."""


def ahead_documents(at: datetime) -> list[dict[str, Any]]:
    return [
        doc("fg-late1", "marketing.email_clicked", at, {"email": ADA}),
        doc("fg-late2", "marketing.page_viewed", at, {"anonymous_id": ADA_COOKIE}, {"url": "/"}),
    ]


async def publish_ahead(settings: Settings, documents: list[dict[str, Any]]) -> None:
    """Publish as a tool would, bypassing the client's validation (it refuses the date)."""
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in documents:
            topic = full_name("touchpoints.marketing", settings.topic_prefix)
            await publisher.publish_raw(json.dumps(document).encode(), topic, ADA.encode())


async def expire(settings: Settings, *names: str) -> None:
    """What retention does to a topic: its log start moves to its end (`DeleteRecords`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await admin.start()
    try:
        for name in names:
            topic = full_name(name, settings.topic_prefix)
            parts = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
            ends = await consumer.end_offsets(parts)
            await admin.delete_records(
                {tp: RecordsToDelete(ends[tp]) for tp in parts}, timeout_ms=30_000
            )
            begins = await consumer.beginning_offsets(parts)
            assert begins == ends, (topic, begins, ends)
    finally:
        await admin.close()
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def raw_topic(settings: Settings, topic: str) -> list[tuple[bytes, bytes | None]]:
    """Every record of a topic (full name), raw: for the tables' changelogs."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a background reset to "latest" can land after the seek
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        assert parts, f"no topic {topic}"
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[tuple[bytes, bytes | None]] = []
        for tp in parts:
            while await consumer.position(tp) < ends[tp]:
                for message in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    out.append((message.key or b"", message.value))
        return out
    finally:
        await consumer.stop()


def tandem(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=settings_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_a_rebuild_from_the_topics_and_a_redrive_never_bring_a_forgotten_person_back(
    settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    ada, bob = everyday_documents(now)
    ada_id, bob_id = (
        core.customer_id_for(f"contact:{ADA_CRM}"),
        core.customer_id_for(f"email:{BOB}"),
    )
    ada_ids = {core.customer_id_for(i) for i in
               (f"contact:{ADA_CRM}", f"email:{ADA}", f"anon:{ADA_COOKIE}")}  # fmt: skip
    for where in ("live", "rebuilt"):
        (tmp_path / where).mkdir()
    async with isolated_deployment(settings, "rebuild", tmp_path / "live") as (live, projection):
        worker = WorkerProcess(live, tmp_path / "live.log")
        worker.start()
        try:
            ahead_at = datetime.now(UTC) + AHEAD
            await publish_documents(live, [*ada, *bob])
            await publish_ahead(live, ahead_documents(ahead_at))
            bob_before = await _both_built(projection, ada_id, bob_id)
            letters = await eventually(lambda: read_topic(live, DEADLETTER),
                                       lambda found: len(found) >= 2, 30)  # fmt: skip
            assert len(letters) == 2 and {v["reason_code"] for _, v in letters} == {"out_of_range"}
            forgotten = tandem(live, "forget", ADA, "--yes", "--by", "dpo", "--wait", "45")
            assert forgotten.returncode == 0, forgotten.stdout + forgotten.stderr
            await projection.kpis.catch_up()
        finally:
            worker.stop()
        # More than a week later: the forget request and the resolved messages have expired.
        await expire(live, ACCEPTED, RESOLVED)

        # The two dated ahead are valid by now (so the rebuild accepts them from the topic).
        await asyncio.sleep(max(0.0, (ahead_at - timedelta(hours=24) - datetime.now(UTC))
                                .total_seconds() + 1))  # fmt: skip
        # The rebuild: a fresh app id and Redis prefix, every topic from the beginning.
        port = free_port()
        rebuilt = live.model_copy(update={"app_id": f"{live.app_id}-rebuilt",
                                          "redis_prefix": f"{live.redis_prefix}rebuilt:",
                                          "data_dir": tmp_path / "rebuilt",
                                          "metrics_port": port})  # fmt: skip
        fresh = JourneyProjection.from_url(rebuilt.redis_url, rebuilt.redis_prefix)
        worker = WorkerProcess(rebuilt, tmp_path / "rebuilt.log")
        worker.start()
        try:
            await eventually(lambda: fresh.snapshot(bob_id), lambda s: s is not None, 60)
            # The dead letters are valid now (their date is within a day): redrive them all.
            redriven = tandem(rebuilt, "deadletter", "redrive", "--all", "--json")
            assert redriven.returncode == 0, redriven.stdout + redriven.stderr
            outcome = json.loads(redriven.stdout)
            assert outcome["redriven"] == 2
            # Her 3 touchpoints on marketing/sales, the 2 dated ahead (now valid) and the 2 dead
            # letters redriven: 7.
            expected = len(ada) + 2 + 2

            def counts() -> tuple[float, float]:
                samples = scrape(port)
                return (total(samples, "tandem_touchpoints_suppressed_total"),
                        total(samples, "tandem_touchpoints_applied_total"))  # fmt: skip

            # Bob's snapshot is written after his touchpoints are counted, Ada's redriven ones
            # are suppressed a moment later: wait for both counts, then for anything more.
            counted, _ = await eventually(lambda: asyncio.to_thread(counts),
                                          lambda n: n[0] >= expected and n[1] >= len(bob),
                                          60)  # fmt: skip
            await asyncio.sleep(3)  # anything more would show up now
            samples = scrape(port)
            await fresh.kpis.catch_up()
            rebuilt_dump = await redis_dump(fresh, rebuilt.redis_prefix)
            bob_after = await fresh.snapshot(bob_id)
            kpi_facts = [await fresh.kpis.facts(c) for c in ada_ids]
        finally:
            worker.stop()
            await _drop(fresh, rebuilt.redis_prefix)

        print(f"\nrebuild: suppressed {counted:.0f} of Ada's deliveries, redrove "
              f"{outcome['redriven']} dead letters; applied "
              f"{total(samples, 'tandem_touchpoints_applied_total'):.0f}")  # fmt: skip
        assert total(samples, "tandem_ingest_messages_total", outcome="dead_lettered") == 0
        assert total(samples, "tandem_touchpoints_suppressed_total") == expected
        assert total(samples, "tandem_touchpoints_suppressed_total", stage="identity") == expected
        touchpoints = {k: v for k, v in samples.items() if k.startswith("tandem_touchpoints")}
        assert total(samples, "tandem_touchpoints_applied_total") == len(bob), touchpoints
        assert not any(t in rebuilt_dump for t in ADA_TRACES), rebuilt_dump
        assert all(f is None for f in kpi_facts)
        assert bob_after is not None and comparable(bob_after) == comparable(bob_before)
        old_dump = await redis_dump(projection, live.redis_prefix)
        assert not any(t in old_dump for t in ADA_TRACES), old_dump

        for table in ("identity", "journeys", "deadlines"):
            changelog = f"{rebuilt.topic_prefix}{rebuilt.app_id}-{table}-changelog"
            records = b"\n".join(
                k + b" " + (v or b"") for k, v in await raw_topic(rebuilt, changelog)
            )
            assert not any(t.encode() in records.lower() for t in ADA_TRACES), (table, records)
            assert not any(c.encode() in records for c in ada_ids), (table, records)
        latest: dict[str | None, Any] = dict(await read_topic(live, JOURNEYS))
        assert ada_id in latest and all(latest.get(c) is None for c in ada_ids)
        assert latest[bob_id] is not None


async def _both_built(projection: JourneyProjection, ada_id: str, bob_id: str) -> dict[str, Any]:
    async def both() -> dict[str, Any]:
        return {c: await projection.snapshot(c) for c in (ada_id, bob_id)}

    found = await eventually(both, lambda f: bool(f[ada_id] and f[bob_id]
                                                  and f[ada_id]["counts"]["touchpoints"] == 3
                                                  and f[bob_id]["counts"]["touchpoints"] == 2),
                             60)  # fmt: skip
    assert found[ada_id] is not None and found[bob_id] is not None, found
    bob: dict[str, Any] = found[bob_id]
    return bob


async def _drop(projection: JourneyProjection, prefix: str) -> None:
    keys = [k async for k in projection.redis.scan_iter(f"{prefix}*")]
    if keys:
        await projection.redis.delete(*keys)
    await projection.close()
