"""The publishing client and the contract commands against the real Kafka broker.

Each module run uses its own topic prefix (created here with aiokafka's admin client, with the
catalogue's partition counts, and deleted at the end), so it never sees other runs' data.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from typer.testing import CliRunner

from events import Rejection, decode_touchpoint, parse_touchpoint, touchpoint_to_json
from events.examples import INVALID_EXAMPLES, VALID_EXAMPLES, example
from events.publisher import TouchpointPublisher, key_for
from schemas.deadletter import DeadLetter, Origin, dead_letter_for
from streams import infra
from streams.cli.deadletter import topic_partitions
from streams.settings import Settings, get_settings
from streams.topics import DEADLETTER, MARKETING, SALES, full_name, spec

pytestmark = pytest.mark.integration

TOPICS = (MARKETING, SALES, DEADLETTER)
Record = tuple[str, int, int, bytes | None, bytes | None]  # topic, partition, offset, key, value


@pytest.fixture(scope="module")
def kafka(infrastructure: infra.InfraStatus) -> Iterator[Settings]:
    """Settings with a fresh topic prefix; the touchpoint and dead-letter topics exist."""
    settings = Settings(
        topic_prefix=f"tp{uuid.uuid4().hex[:8]}.", kafka_bootstrap=Settings().kafka_bootstrap
    )

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        full_name(name, settings.topic_prefix),
                        spec(name).partition_count(settings.partitions),
                        1,
                    )
                    for name in TOPICS
                ]
            )
        finally:
            await admin.close()

    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([full_name(name, settings.topic_prefix) for name in TOPICS])
        finally:
            await admin.close()

    asyncio.run(create())
    yield settings
    asyncio.run(delete())


async def consume(settings: Settings, name: str) -> list[Record]:
    """Every record of a topic from its beginning to its current end."""
    topic = full_name(name, settings.topic_prefix)
    ids = await topic_partitions(settings.kafka_bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in ids]
        consumer.assign(partitions)
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, begin[tp])
        records: list[Record] = []
        for _ in range(100):
            positions = [await consumer.position(tp) for tp in partitions]
            if all(at >= end[tp] for at, tp in zip(positions, partitions, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                records += [
                    (tp.topic, m.partition, m.offset, m.key, m.value)
                    for m in messages
                    if m.offset < end[tp]
                ]
        return sorted(records, key=lambda r: (r[1], r[2]))
    finally:
        await consumer.stop()


def partition_of(key: bytes, count: int) -> int:
    """What the Java client (and aiokafka's default partitioner) picks: murmur2 of the key."""
    partitions = list(range(count))
    return int(DefaultPartitioner()(key, partitions, partitions))


async def test_touchpoints_land_on_their_topic_keyed_partitioned_and_byte_exact(
    kafka: Settings,
) -> None:
    touchpoints = [parse_touchpoint(document) for document in VALID_EXAMPLES.values()]
    async with TouchpointPublisher(kafka.kafka_bootstrap, kafka.topic_prefix) as publisher:
        futures = [await publisher.publish(t) for t in touchpoints]
    metadata = [future.result() for future in futures]

    records = await consume(kafka, MARKETING) + await consume(kafka, SALES)
    by_event_id = {json.loads(r[4] or b"")["event_id"]: r for r in records}
    assert len(records) == len(by_event_id) == len(touchpoints)
    count = kafka.partitions
    for touchpoint, meta in zip(touchpoints, metadata, strict=True):
        topic, partition, offset, key, value = by_event_id[touchpoint.event_id]
        assert topic == full_name(publisher.topic_for(touchpoint).removeprefix(kafka.topic_prefix),
                                  kafka.topic_prefix)  # fmt: skip
        assert topic.endswith("touchpoints.marketing" if touchpoint.domain == "marketing"
                              else "touchpoints.sales")  # fmt: skip
        assert key == key_for(touchpoint)
        assert value == touchpoint_to_json(touchpoint)
        assert (partition, offset) == (meta.partition, meta.offset)
        assert partition == partition_of(key, count)
        decoded = decode_touchpoint(value, touchpoint.domain, now=datetime.now(UTC))
        assert not isinstance(decoded, Rejection)
        assert decoded == touchpoint

    # one person, one partition: every touchpoint keyed by the same identifier stays in order
    partitions_by_key: dict[bytes | None, set[int]] = {}
    for _topic, partition, _offset, key, _value in records:
        partitions_by_key.setdefault(key, set()).add(partition)
    assert all(len(found) == 1 for found in partitions_by_key.values())


async def test_publish_raw_delivers_invalid_bytes_untouched(kafka: Settings) -> None:
    before = await consume(kafka, SALES)
    raw = b'{"event_id": "raw-1", "type": "sales.deal_won", \xff'
    topic = full_name(SALES, kafka.topic_prefix)
    async with TouchpointPublisher(kafka.kafka_bootstrap, kafka.topic_prefix) as publisher:
        future = await publisher.publish_raw(raw, topic, "contact:raw-1")
    meta = future.result()
    after = await consume(kafka, SALES)
    (new,) = [r for r in after if r not in before]
    assert new == (topic, meta.partition, meta.offset, b"contact:raw-1", raw)


def test_tandem_publish_sends_the_valid_lines(
    kafka: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.cli import _register, app

    _register()
    monkeypatch.setenv("TANDEM_TOPIC_PREFIX", kafka.topic_prefix)
    monkeypatch.setenv("TANDEM_KAFKA_BOOTSTRAP", kafka.kafka_bootstrap)
    get_settings.cache_clear()
    try:
        before = asyncio.run(consume(kafka, MARKETING))
        lines = [
            example("marketing.page_viewed") | {"event_id": "cli-1"},
            example("marketing.ad_clicked") | {"event_id": "cli-2"},
            INVALID_EXAMPLES[0].document,
        ]
        path = tmp_path / "touchpoints.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = CliRunner().invoke(app, ["publish", str(path), "--json"])
        assert result.exit_code == 1, result.output
        summary = json.loads(result.stdout)
        assert (summary["accepted"], summary["rejected"], summary["published"]) == (2, 1, 2)
        after = asyncio.run(consume(kafka, MARKETING))
        new = [json.loads(r[4] or b"")["event_id"] for r in after if r not in before]
        assert sorted(new) == ["cli-1", "cli-2"]
    finally:
        get_settings.cache_clear()


def test_deadletter_list_and_redrive(
    kafka: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.cli import _register, app

    _register()
    monkeypatch.setenv("TANDEM_TOPIC_PREFIX", kafka.topic_prefix)
    monkeypatch.setenv("TANDEM_KAFKA_BOOTSTRAP", kafka.kafka_bootstrap)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        # Two rejected messages, as the worker would have dead-lettered them (one twice).
        broken = b'{"event_id": "dl-1", "type": "marketing.page_viewed"'
        invalid = INVALID_EXAMPLES[0].raw()
        letters = [
            dead_letter_for(
                decode_touchpoint(raw, "marketing", now=datetime.now(UTC)),  # type: ignore[arg-type]
                raw,
                Origin(topic=MARKETING, partition=0, offset=offset, key=f"anon:dl-{offset}"),
                datetime(2025, 3, 4, tzinfo=UTC),
            )
            for offset, raw in ((7, broken), (8, invalid))
        ]

        async def produce_letters() -> None:
            async with TouchpointPublisher(kafka.kafka_bootstrap) as publisher:
                for letter in [*letters, letters[0]]:
                    await publisher.publish_raw(
                        letter.model_dump_json().encode(),
                        full_name(DEADLETTER, kafka.topic_prefix),
                        letter.dead_letter_id,
                    )

        asyncio.run(produce_letters())

        listed = runner.invoke(app, ["deadletter", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        shown = [DeadLetter.model_validate(d) for d in json.loads(listed.stdout)]
        assert shown == letters  # the duplicate is folded
        only_json = runner.invoke(app, ["deadletter", "list", "--json", "--reason", "bad_json"])
        assert [d["dead_letter_id"] for d in json.loads(only_json.stdout)] == [
            letters[0].dead_letter_id
        ]
        table = runner.invoke(app, ["deadletter", "list", "--limit", "1"])
        assert table.exit_code == 0 and "invalid" in table.output

        before = asyncio.run(consume(kafka, MARKETING))
        dry = runner.invoke(app, ["deadletter", "redrive", "--all", "--dry-run", "--json"])
        assert json.loads(dry.stdout)["redriven"] == 2
        assert asyncio.run(consume(kafka, MARKETING)) == before

        redriven = runner.invoke(
            app, ["deadletter", "redrive", "--id", letters[1].dead_letter_id, "--json"]
        )
        assert redriven.exit_code == 0, redriven.output
        assert json.loads(redriven.stdout)["topics"] == {MARKETING: 1}
        new = [r for r in asyncio.run(consume(kafka, MARKETING)) if r not in before]
        assert [(r[3], r[4]) for r in new] == [(b"anon:dl-8", invalid)]

        unknown = runner.invoke(app, ["deadletter", "redrive", "--id", "nope/0/0"])
        assert unknown.exit_code == 1 and "no dead letter with id nope/0/0" in unknown.output
        nothing = runner.invoke(app, ["deadletter", "redrive"])
        assert nothing.exit_code == 2 and "choose what to redrive" in nothing.output  # usage
    finally:
        get_settings.cache_clear()


async def test_http_ingest_publishes_a_batch_to_kafka(kafka: Settings) -> None:
    import httpx

    from streams.api import create_app
    from streams.api.auth import ApiClient

    keys = {"it-key": ApiClient(tool="it", domains=frozenset({"marketing", "sales"}))}
    app = create_app(kafka, api_keys=keys)
    batch = [
        example("marketing.form_viewed") | {"event_id": "http-1"},
        example("sales.demo_held") | {"event_id": "http-2"},
    ]
    before = await consume(kafka, MARKETING) + await consume(kafka, SALES)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/v1/events", json=batch, headers={"X-API-Key": "it-key"})
    assert response.status_code == 202, response.text
    after = await consume(kafka, MARKETING) + await consume(kafka, SALES)
    new = {json.loads(r[4] or b"")["event_id"]: r for r in after if r not in before}
    assert set(new) == {"http-1", "http-2"}
    assert new["http-1"][0].endswith("touchpoints.marketing")
    assert new["http-2"][0].endswith("touchpoints.sales")
