"""The whole pipeline, real on every hop: publisher → Kafka → Faust worker → Kafka + Redis.

What the worker computes must equal what the pure core computes from the same events, whatever
the order, duplication and partitioning of delivery.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events import parse_touchpoint
from events.publisher import TouchpointPublisher
from streams import journey as core
from streams import workflow
from streams.playbooks import load_configured_playbook
from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings
from streams.topics import ALERTS, DEADLETTER, HANDOFF, MARKETING, SALES, full_name
from tests.integration.conftest import WorkerProcess
from tests.integration.helpers import comparable, eventually, read_topic

pytestmark = pytest.mark.integration


def expected_snapshots(documents: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    playbook = load_configured_playbook(settings)
    result = workflow.replay([parse_touchpoint(d) for d in documents], playbook)
    return {
        cid: comparable(core.snapshot(record, playbook).model_dump(mode="json"))
        for cid, record in result.records.items()
    }


async def live_snapshots(projection: JourneyProjection, ids: set[str]) -> dict[str, Any]:
    found = {}
    for cid in ids:
        snap = await projection.snapshot(cid)
        if snap is not None:
            found[cid] = comparable(snap)
    return found


async def test_shuffled_duplicated_journeys_equal_the_pure_core(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    documents = demo_journeys(now, prefix="shuffle")
    # The same person under different identifiers, shuffled, with duplicates, across partitions:
    # every event is keyed by whichever identifier it carries, so one person spans partitions.
    delivery = documents + random.Random(3).sample(documents, 10)
    random.Random(4).shuffle(delivery)
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in delivery:
            await publisher.publish(parse_touchpoint(document))

    expected = expected_snapshots(documents, settings)
    expected.pop(core.LEDGER_CUSTOMER)  # shared by all tests; checked in the accounting test
    live = await eventually(
        lambda: live_snapshots(projection, set(expected)),
        lambda found: found == expected,
        timeout=90,
    )

    assert set(live) == set(expected)
    for cid, snapshot in expected.items():
        assert live[cid] == snapshot, f"journey {cid} differs from the pure core's"
    # Exactly one journey per person: Chen's CRM contact and email are one customer.
    chen = [s for s in live.values() if any("crm-chen" in i for i in s["identities"])]
    assert len(chen) == 1
    assert {"contact:shuffle-crm-chen", "email:chen@shuffle-acme.example"} <= set(
        chen[0]["identities"]
    )
    ids = await projection.customer_ids()
    assert set(expected) <= ids


async def test_every_input_is_accounted_for(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    """received = applied + duplicates + dead-lettered, exactly."""
    now = datetime.now(UTC) - timedelta(hours=2)
    valid = demo_journeys(now, prefix="counts")
    duplicates = valid[:7]
    feedback = next(d for d in valid if d["type"] == "sales.feedback_recorded")
    invalid: list[tuple[str, bytes]] = [
        (MARKETING, b"\xff\xfe not utf-8"),
        (MARKETING, b"{not json"),
        (MARKETING, b"[1, 2, 3]"),
        (MARKETING, b'{"event_id": "x1", "type": "marketing.teleported"}'),
        (SALES, b'{"event_id": "x2", "type": "sales.demo_held", "source": "crm"}'),
        (MARKETING, parse_touchpoint(feedback).model_dump_json().encode()),  # sales on marketing
        (MARKETING, b'{"event_id": "x3", "type": "marketing.page_viewed", "pad": "'
         + b"x" * (300 * 1024) + b'"}'),
    ]  # fmt: skip
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in valid + duplicates:
            await publisher.publish(parse_touchpoint(document))
        for topic, raw in invalid:
            await publisher.publish_raw(raw, full_name(topic, settings.topic_prefix), b"bad")

    def dead_for_this_test(letters: list[tuple[str | None, Any]]) -> list[Any]:
        return [v for _, v in letters if v["origin"]["key"] == "bad"]

    letters = await eventually(
        lambda: read_topic(settings, DEADLETTER),
        lambda found: len(dead_for_this_test(found)) >= len(invalid),
    )
    dead = dead_for_this_test(letters)
    reasons = Counter(letter["reason_code"] for letter in dead)
    assert reasons == {
        "bad_utf8": 1, "bad_json": 1, "not_an_object": 1, "unknown_type": 1, "invalid": 1,
        "wrong_topic": 1, "too_large": 1,
    }  # fmt: skip
    for letter, (_, raw) in zip(
        sorted(dead, key=lambda d: d["origin"]["offset"]), invalid, strict=False
    ):
        assert letter["original_b64"]  # original bytes kept (checked exactly in unit tests)
        del raw

    # The spend ledger is one journey shared by every test: check its share by event id.
    expected = expected_snapshots(valid, settings)
    ledger_expected = expected.pop(core.LEDGER_CUSTOMER)
    live = await eventually(
        lambda: live_snapshots(projection, set(expected)),
        lambda found: found == expected,
        timeout=90,
    )
    assert live == expected
    ledger = await projection.snapshot(core.LEDGER_CUSTOMER)
    assert ledger is not None
    ledger_ids = {tp["event_id"] for tp in ledger["recent_touchpoints"]}
    mine = {tp["event_id"] for tp in ledger_expected["recent_touchpoints"]}
    assert mine <= ledger_ids
    applied = sum(s["counts"]["touchpoints"] for s in live.values()) + len(mine)
    received = len(valid) + len(duplicates) + len(invalid)
    # Every re-sent event is recognised: none added a touchpoint (the worker's own count of
    # them, by outcome, is checked in test_worker_metrics).
    assert applied == len(valid)
    assert received == applied + len(duplicates) + len(dead)


async def test_handoff_fires_once_then_the_sla_breaches(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    """Ada becomes sales-ready: one hand-off; nobody answers within the test SLA: an alert."""
    now = datetime.now(UTC)
    documents = [d for d in demo_journeys(now, prefix="sla") if "ada" in str(d.get("identity"))]
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in documents + documents[:3]:
            await publisher.publish(parse_touchpoint(document))
    customer = core.customer_id_for("email:ada@sla-lovelace.example")

    def mine(messages: list[tuple[str | None, Any]]) -> list[Any]:
        return [v for k, v in messages if k == customer]

    handoffs = mine(
        await eventually(lambda: read_topic(settings, HANDOFF), lambda m: len(mine(m)) >= 1)
    )
    assert handoffs, "no hand-off for a sales-ready lead"
    assert {h["signal_type"] for h in handoffs} == {"handoff"}
    assert len({h["signal_id"] for h in handoffs}) == 1
    versions = [h["version"] for h in handoffs]
    assert versions == sorted(set(versions)), "a version was emitted twice"
    handoff = handoffs[-1]
    assert "email:ada@sla-lovelace.example" in handoff["identities"]
    assert "cut-reporting-time-in-half" in str(handoff), "sales must see the promised message"

    alerts = mine(
        await eventually(
            lambda: read_topic(settings, ALERTS),
            lambda m: any(a["signal_type"] == "handoff_sla_breached" for a in mine(m)),
            timeout=60,
        )
    )
    breached = [a for a in alerts if a["signal_type"] == "handoff_sla_breached"]
    assert len({a["signal_id"] for a in breached}) == 1
    assert str(handoff["signal_id"]) in str(breached[0])
