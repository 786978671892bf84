"""The KPI store on the real Redis: version-checked facts writes and lazy catch-ups leave the
aggregates exactly the aggregation of the latest facts, whatever the order, repetition and
concurrency of writes and catch-ups; medians by bisection in Redis equal the exact ones."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from schemas.kpis import JourneyFacts
from streams import workflow
from streams.journey import kpis
from streams.journey.kpis.aggregates import MedianAsk, select
from streams.kpi_store import KpiStore
from streams.projection import JourneyProjection
from streams.settings import Settings
from tests.property.strategies import T0, law_playbook, parse
from tests.unit.journey.test_kpis import won_journey

PB = law_playbook()
NOW = datetime(2024, 1, 20, 15, tzinfo=UTC)


def pool() -> list[JourneyFacts]:
    events = won_journey("a") + won_journey("b", email="b@x.example")
    records = workflow.replay(events, PB).records.values()
    facts = [kpis.journey_facts(r, PB) for r in records]
    assert facts and parse  # the core's facts: stages, wins, hand-offs, voices
    return facts


async def read_all(store: KpiStore) -> kpis.Aggregates:
    keys = [k[len(store.prefix) :] async for k in store.redis.scan_iter(f"{store.prefix}*")]
    ranked = [k for k in keys if k.startswith("z:")]
    buckets = [
        k for k in keys if k[:2] in ("d:", "c:", "l:", "r:", "B:", "C:", "X:", "R:") or k == "g"
    ]
    pipe = store.redis.pipeline(transaction=False)
    for key in ranked:
        pipe.zrange(store.bucket_key(key), 0, -1, withscores=True)
    found = await pipe.execute()
    sets = {k: {m: int(s) for m, s in z} for k, z in zip(ranked, found, strict=True) if z}
    read = await store.read(buckets)
    return kpis.Aggregates({b: Counter(f) for b, f in read.items()}, sets)


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
    # Batches of writes with concurrent catch-ups (small chunks) in between and at once.
    batches = [changes[i : i + 7] for i in range(0, len(changes), 7)]
    for i in range(0, len(batches), 3):
        await asyncio.gather(
            *(store.write_facts(b) for b in batches[i : i + 3]),
            store.catch_up(chunk=2),
            store.catch_up(chunk=3),
        )
    await asyncio.gather(store.catch_up(chunk=2), store.catch_up(chunk=2))
    await store.catch_up()
    assert await store.pending() == 0

    memory = kpis.MemoryKpiStore()
    for customer, version, f in changes:
        memory.write(customer, version, f)
    memory.catch_up()
    latest = list(memory.facts.values())
    assert await read_all(store) == memory.snapshot() == kpis.aggregate(latest)
    for window in ({}, {"since": T0, "until": T0 + timedelta(days=10), "by": "channel"}):
        expected = kpis.compute_kpis(latest, now=NOW, **window)  # type: ignore[arg-type]
        answer = await store.report(now=NOW, **window)  # type: ignore[arg-type]
        assert answer.model_dump_json() == expected.model_dump_json()  # money spelled alike
    # A moved journey's contributions go, and a stale write cannot bring them back.
    for customer in ("c1", "c2", "c3", "c4"):
        await store.write_facts([(customer, 100, None), (customer, 99, facts[0])])
    await store.catch_up()
    assert await read_all(store) == kpis.Aggregates()


async def test_medians_by_bisection_in_redis_are_exact(
    settings: Settings, projection: JourneyProjection
) -> None:
    store = KpiStore(projection.redis, f"{settings.redis_prefix}{uuid.uuid4().hex[:6]}:")
    rng = random.Random(3)
    sets: dict[str, dict[str, int]] = {}
    for key in ("a", "b", "c"):
        sets[key] = {f"{key}{i}": rng.randrange(-5, 10**13) for i in range(rng.randrange(1, 40))}
        sets[key][f"{key}x"] = 7  # ties across sets
        await store.redis.zadd(store.bucket_key(key), sets[key])  # type: ignore[arg-type]
    minus = {m: v for m, v in list(sets["b"].items())[:5]}
    await store.redis.zadd(store.bucket_key("m"), minus)  # type: ignore[arg-type]
    asks = [
        MedianAsk(("*", "", "one"), ("a",)),
        MedianAsk(("*", "", "all"), ("a", "b", "c")),
        MedianAsk(("*", "", "less"), ("a", "b", "c"), ("m",)),
        MedianAsk(("*", "", "none"), ("nothing",)),
    ]
    found = await store.medians(asks)
    for ask in asks:
        assert found[ask.slot] == select(ask, sets | {"m": minus}), ask
