"""The KPI store on the real Redis: version-checked incremental aggregates stay exactly the
aggregation of the latest facts, whatever the order, repetition and concurrency of writes."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

from schemas.kpis import JourneyFacts
from streams import journey as core
from streams.journey import kpis
from streams.kpi_store import KpiStore
from streams.projection import JourneyProjection
from streams.settings import Settings
from tests.property.strategies import T0, law_playbook, parse
from tests.unit.journey.test_kpis import won_journey

PB = law_playbook()
NOW = datetime(2024, 1, 20, 15, tzinfo=UTC)


def pool() -> list[JourneyFacts]:
    events = won_journey("a") + won_journey("b", email="b@x.example")
    records = core.replay(events, PB).records.values()
    facts = [kpis.journey_facts(r, PB) for r in records]
    assert facts and parse  # the core's facts: stages, wins, hand-offs, voices
    return facts


async def read_all(store: KpiStore) -> dict[str, dict[str, int]]:
    keys = [k async for k in store.redis.scan_iter(f"{store.prefix}*")]
    buckets = [
        k[len(store.prefix) :] for k in keys if not k.endswith(("facts", "versions", "days"))
    ]
    return await store.read(buckets)


async def test_redelivered_reordered_concurrent_writes_equal_the_latest_facts(
    settings: Settings, projection: JourneyProjection
) -> None:
    store = KpiStore(projection.redis, f"{settings.redis_prefix}{uuid.uuid4().hex[:6]}:")
    rng = random.Random(9)
    facts = pool()
    changes: list[tuple[str, int, JourneyFacts | None]] = []
    for _ in range(60):
        customer = rng.choice(["c1", "c2", "c3", "c4"])
        f = rng.choice([*facts, None])
        update = None if f is None else f.model_copy(update={"customer_id": customer})
        changes.append((customer, rng.randint(1, 8), update))
    changes += rng.sample(changes, 20)
    rng.shuffle(changes)
    # Several batches at once (conflicts retried), the same customer several times per batch.
    batches = [changes[i : i + 7] for i in range(0, len(changes), 7)]
    await asyncio.gather(*(store.write_facts(b) for b in batches))

    memory = kpis.MemoryKpiStore()
    for customer, version, f in changes:
        memory.write(customer, version, f)
    assert await read_all(store) == {b: dict(c) for b, c in memory.snapshot().items()}
    latest = list(memory.facts.values())
    assert memory.snapshot() == kpis.aggregate(latest)
    for window in ({}, {"since": T0, "until": T0 + timedelta(days=10), "by": "channel"}):
        expected = kpis.compute_kpis(latest, now=NOW, **window)  # type: ignore[arg-type]
        assert await store.report(now=NOW, **window) == expected  # type: ignore[arg-type]
    # A moved journey's contributions go, and a stale write cannot bring them back.
    for customer in ("c1", "c2", "c3", "c4"):
        await store.write_facts([(customer, 100, None), (customer, 99, facts[0])])
    assert await read_all(store) == {}
