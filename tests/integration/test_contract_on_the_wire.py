"""Everything Tandem emits on the real broker validates against its checked-in JSON Schema.

Signals, journey snapshots and dead letters are read back from the topics the worker wrote
them to, and `tandem journey --json` is checked too: the language-neutral contract in
`schemas/json/` is what tools in any language can rely on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings
from streams.topics import ALERTS, DEADLETTER, HANDOFF, JOURNEYS, NURTURE, full_name
from tests.integration.conftest import WorkerProcess, settings_env
from tests.integration.helpers import eventually, publish_documents, read_topic

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"


def validator(name: str) -> Draft202012Validator:
    documents = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents.values() if "$id" in doc
    )
    return Draft202012Validator(documents[f"{name}.schema.json"], registry=registry)


def problems(check: Draft202012Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in check.iter_errors(document)]


async def test_signals_snapshots_and_dead_letters_match_their_schemas(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=30)
    documents = demo_journeys(now, prefix="wire")
    await publish_documents(settings, documents)
    from events.publisher import TouchpointPublisher

    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        await publisher.publish_raw(
            b"{broken", full_name("touchpoints.marketing", settings.topic_prefix), b"wire"
        )
    customer = await eventually(
        lambda: projection.resolve("email:ada@wire-lovelace.example"), lambda c: c is not None
    )
    assert customer is not None
    handoffs = await eventually(
        lambda: read_topic(settings, HANDOFF), lambda m: any(k == customer for k, _ in m)
    )

    signal_check = validator("signal")
    emitted = handoffs + await read_topic(settings, NURTURE) + await read_topic(settings, ALERTS)
    assert emitted
    for _, signal in emitted:
        assert problems(signal_check, signal) == [], signal.get("signal_type")
    kinds = {signal["signal_type"] for _, signal in emitted}
    assert {"handoff", "nurture"} <= kinds

    snapshot_check = validator("journey_snapshot")
    snapshots = [v for _, v in await read_topic(settings, JOURNEYS) if v is not None]
    assert snapshots
    for snapshot in snapshots:
        assert problems(snapshot_check, snapshot) == [], snapshot["customer_id"]

    letters = [v for _, v in await read_topic(settings, DEADLETTER)]
    assert letters
    letter_check = validator("dead_letter")
    for letter in letters:
        assert problems(letter_check, letter) == []

    shown = subprocess.run(
        [sys.executable, "-m", "streams.cli", "journey", "ada@wire-lovelace.example", "--json"],
        env=settings_env(settings),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr.decode()
    journey = json.loads(shown.stdout)
    assert journey["customer_id"] == customer
    assert problems(snapshot_check, journey) == []
