"""The publishing client: topic routing, keys, delivery tracking (with an in-memory producer)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from events import parse_touchpoint
from events.examples import VALID_EXAMPLES, example
from events.publisher import (
    LEDGER_KEY,
    PublishError,
    TouchpointPublisher,
    available_compression,
    key_for,
)
from events.topics import MARKETING, SALES, domain_of, domain_of_topic, topic_for


class FakeProducer:
    """Records sends; deliveries succeed unless the topic is in `failing`."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.failing = failing or set()
        self.started = self.stopped = False
        self.flushes = 0

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def flush(self) -> None:
        self.flushes += 1

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, value, key))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if topic in self.failing:
            future.set_exception(RuntimeError(f"broker refused {topic}"))
        else:
            future.set_result((topic, 0, len(self.sent) - 1))
        return future


def touchpoint(type_name: str, **identity: str) -> Any:
    document = example(type_name)
    if identity:
        document["identity"] = identity
    return parse_touchpoint(document)


def test_touchpoint_topic_names_are_owned_by_the_contract() -> None:
    from streams import topics

    assert topics.MARKETING == MARKETING == "touchpoints.marketing"
    assert topics.SALES == SALES == "touchpoints.sales"
    assert topic_for("sales.deal_won", "t1.") == "t1.touchpoints.sales"
    assert domain_of("marketing.page_viewed") == "marketing"
    assert domain_of("other.thing") is None
    assert domain_of_topic("t1.touchpoints.marketing", "t1.") == "marketing"
    assert domain_of_topic("touchpoints.deadletter") is None
    with pytest.raises(ValueError):
        topic_for("nope")


@pytest.mark.parametrize(
    ("identity", "key"),
    [
        ({"anonymous_id": "a-1", "email": "A@B.io", "contact_id": "c-1"}, b"contact:c-1"),
        ({"anonymous_id": "a-1", "email": "A@B.io"}, b"email:a@b.io"),
        ({"anonymous_id": "a-1", "account_id": "acct-1"}, b"anon:a-1"),
        ({"email": "zo\u00eb@b.io"}, "email:zo\u00eb@b.io".encode()),
    ],
)
def test_key_is_the_strongest_identifier_in_utf8(identity: dict[str, str], key: bytes) -> None:
    assert key_for(touchpoint("sales.demo_held", **identity)) == key


def test_ledger_records_without_identity_are_keyed_ledger() -> None:
    assert key_for(touchpoint("marketing.spend_recorded")) == LEDGER_KEY == b"ledger"
    assert key_for(touchpoint("sales.cost_recorded", contact_id="c-7")) == b"contact:c-7"


async def test_publish_routes_by_domain_with_prefix_and_keeps_the_event_id() -> None:
    producer = FakeProducer()
    async with TouchpointPublisher("unused:9092", "t1.", producer=producer) as publisher:
        for type_name in VALID_EXAMPLES:
            await publisher.publish(touchpoint(type_name))
    assert producer.started and producer.stopped and producer.flushes >= 1
    assert len(producer.sent) == len(VALID_EXAMPLES)
    for (topic, value, key), type_name in zip(producer.sent, VALID_EXAMPLES, strict=True):
        domain = type_name.split(".")[0]
        assert topic == f"t1.touchpoints.{domain}"
        assert value is not None and key
        sent = json.loads(value)
        assert sent["event_id"] == VALID_EXAMPLES[type_name]["event_id"]
        assert sent["type"] == type_name
        assert "null" not in value.decode()  # canonical: no nulls


async def test_publishing_twice_sends_identical_messages() -> None:
    producer = FakeProducer()
    async with TouchpointPublisher("unused:9092", producer=producer) as publisher:
        for _ in range(2):
            await publisher.publish(touchpoint("sales.deal_won"))
    assert producer.sent[0] == producer.sent[1]


async def test_publish_returns_the_delivery_future() -> None:
    async with TouchpointPublisher("unused:9092", producer=FakeProducer()) as publisher:
        future = await publisher.publish(touchpoint("marketing.page_viewed"))
        assert await future == ("touchpoints.marketing", 0, 0)
        assert publisher.sent == 1


async def test_publish_raw_sends_bytes_untouched() -> None:
    producer = FakeProducer()
    async with TouchpointPublisher("unused:9092", producer=producer) as publisher:
        await publisher.publish_raw(b"\xff not json", "t.touchpoints.sales", "k\u00e9y")
        await publisher.publish_raw(b"{}", "t.touchpoints.sales", None)
    assert producer.sent == [
        ("t.touchpoints.sales", b"\xff not json", "k\u00e9y".encode()),
        ("t.touchpoints.sales", b"{}", None),
    ]


async def test_failed_deliveries_surface_on_flush_and_exit() -> None:
    producer = FakeProducer(failing={"touchpoints.sales"})
    publisher = TouchpointPublisher("unused:9092", producer=producer)
    await publisher.start()
    await publisher.publish(touchpoint("marketing.page_viewed"))
    await publisher.publish(touchpoint("sales.deal_won"))
    with pytest.raises(PublishError) as caught:
        await publisher.flush()
    assert caught.value.count == 1
    assert "broker refused" in str(caught.value)
    await publisher.flush()  # reported once
    await publisher.stop()

    with pytest.raises(PublishError):
        async with TouchpointPublisher("unused:9092", producer=FakeProducer({SALES})) as p:
            await p.publish(touchpoint("sales.deal_won"))


async def test_an_error_in_the_block_is_not_masked_by_delivery_errors() -> None:
    with pytest.raises(KeyError):
        async with TouchpointPublisher("unused:9092", producer=FakeProducer({SALES})) as p:
            await p.publish(touchpoint("sales.deal_won"))
            raise KeyError("the caller's own error")


async def test_publish_batch_waits_for_exactly_its_deliveries() -> None:
    producer = FakeProducer(failing={SALES})
    async with TouchpointPublisher("unused:9092", producer=producer) as publisher:
        metadata = await publisher.publish_batch(
            [touchpoint("marketing.page_viewed"), touchpoint("marketing.ad_clicked")]
        )
        assert [m[0] for m in metadata] == [MARKETING, MARKETING]
        with pytest.raises(PublishError):
            await publisher.publish_batch([touchpoint("sales.deal_won")])
    # the batch failure was reported to its caller, not again at exit


async def test_publishing_before_start_is_an_error() -> None:
    publisher = TouchpointPublisher("unused:9092", producer=FakeProducer())
    with pytest.raises(RuntimeError, match="not started"):
        await publisher.publish(touchpoint("marketing.page_viewed"))


def test_compression_is_off_by_default_and_checked() -> None:
    assert TouchpointPublisher("h:1").compression_type is None
    assert "gzip" in available_compression()
    assert TouchpointPublisher("h:1", compression_type="gzip").compression_type == "gzip"
    with pytest.raises(ValueError, match="unknown compression"):
        TouchpointPublisher("h:1", compression_type="brotli")
    missing = [c for c in ("snappy", "lz4", "zstd") if c not in available_compression()]
    for codec in missing:
        with pytest.raises(ValueError, match="not installed"):
            TouchpointPublisher("h:1", compression_type=codec)


async def test_the_kafka_producer_is_idempotent_acks_all_and_batching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiokafka

    seen: dict[str, Any] = {}

    class Recorder(FakeProducer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__()
            seen.update(kwargs)

    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", Recorder)
    async with TouchpointPublisher("broker:9092", client_id="tool-x"):
        pass
    assert seen["bootstrap_servers"] == "broker:9092"
    assert seen["enable_idempotence"] is True
    assert seen["acks"] == "all"
    assert seen["linger_ms"] == 20
    assert seen["compression_type"] is None
    assert seen["client_id"] == "tool-x"
