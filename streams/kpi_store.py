"""The KPI aggregates in Redis: exact under at-least-once redelivery, restarts and races.

Per customer, Redis keeps the journey's latest KPI facts (``{prefix}kpi:facts``) and their
version (``{prefix}kpi:versions``; a trailing ``d`` marks a moved journey's tombstone, so a
stale write can never bring it back). The aggregates are hashes ``{prefix}kpi:{bucket}``
(layout: `streams.journey.kpis.contributions`) plus the sorted set of days that have any.

A write reads the stored facts and version, computes the contribution delta in Python, and
applies it with a Lua script that re-checks the version it was computed against: the facts,
the version and the aggregates change together or not at all. On a conflict (someone wrote
in between) the item is retried against the new state; a stale item is skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from schemas.kpis import GroupBy, JourneyFacts, KpiReport
from streams.journey.kpis import AggregateQuery, contributions, delta

FactsInput = JourneyFacts | Mapping[str, Any] | str | None
"""A journey's facts: the model, its JSON decoded, its JSON text, or None (moved away)."""

# KEYS: versions, facts, days, bucket keys…; ARGV: id, expected stored version ('' none), new
# version, facts ('' = drop), number of ops, then (key index, field, change) per op, then days.
_APPLY = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then
  return -1
end
local ops = tonumber(ARGV[5])
local i = 6
for _ = 1, ops do
  local key = KEYS[tonumber(ARGV[i])]
  if redis.call('HINCRBY', key, ARGV[i + 1], ARGV[i + 2]) == 0 then
    redis.call('HDEL', key, ARGV[i + 1])
  end
  i = i + 3
end
while i <= #ARGV do
  redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i])
  i = i + 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
end
return 1
"""

MAX_ATTEMPTS = 20


def _facts_text(facts: FactsInput) -> str:
    if facts is None:
        return ""
    if isinstance(facts, str):
        return facts
    if isinstance(facts, JourneyFacts):
        return facts.model_dump_json(exclude_defaults=True)
    return json.dumps(facts, separators=(",", ":"), default=str)


def _stored_version(raw: str | None) -> tuple[int, bool] | None:
    """(version, dropped) of a stored version field."""
    if not raw:
        return None
    return (int(raw[:-1]), True) if raw.endswith("d") else (int(raw), False)


def _is_stale(stored: tuple[int, bool] | None, version: int, dropping: bool) -> bool:
    # A write needs a newer version; a drop wins a tie with the live facts of its version.
    if stored is None:
        return False
    current, dropped = stored
    if dropping:
        return current > version or (current == version and dropped)
    return current >= version


def _days(keys: Iterable[str]) -> set[int]:
    return {int(k.split(":")[1]) for k in keys if k[:2] in ("d:", "q:", "c:")}


class KpiStore:
    """KPI facts and their per-day aggregates in Redis, under a key prefix."""

    def __init__(self, redis: Redis, prefix: str = "tandem:") -> None:
        self.redis = redis
        self.prefix = f"{prefix}kpi:"
        self._apply = redis.register_script(_APPLY)

    @property
    def versions_key(self) -> str:
        return self.prefix + "versions"

    @property
    def facts_key(self) -> str:
        return self.prefix + "facts"

    @property
    def days_key(self) -> str:
        return self.prefix + "days"

    def bucket_key(self, bucket: str) -> str:
        return self.prefix + bucket

    async def write_facts(self, items: Sequence[tuple[str, int, FactsInput]]) -> None:
        """Apply journeys' new facts (None: the journey moved away), each only if its version
        is newer than the stored one; one pipelined round trip per attempt."""
        pending = list(items)
        for _ in range(MAX_ATTEMPTS):
            if not pending:
                return
            pending = await self._attempt(pending)
        raise RuntimeError(f"KPI facts of {len(pending)} journeys kept conflicting")

    async def _attempt(
        self, items: list[tuple[str, int, FactsInput]]
    ) -> list[tuple[str, int, FactsInput]]:
        reads = self.redis.pipeline(transaction=True)  # version and facts of one moment
        for customer_id, _, _ in items:
            reads.hget(self.versions_key, customer_id)
            reads.hget(self.facts_key, customer_id)
        stored = await reads.execute()
        writes = self.redis.pipeline(transaction=False)
        sent: list[tuple[str, int, FactsInput]] = []
        for n, (customer_id, version, facts) in enumerate(items):
            raw_version, old_text = stored[2 * n], stored[2 * n + 1]
            text = _facts_text(facts)
            if _is_stale(_stored_version(raw_version), version, not text):
                continue
            old = contributions(json.loads(old_text) if old_text else None)
            new = contributions(json.loads(text) if text else None)
            new_version = f"{version}d" if not text else str(version)
            keys, args = self._script_args(delta(old, new))
            await self._apply(
                keys=keys,
                args=[customer_id, raw_version or "", new_version, text, *args],
                client=writes,
            )
            sent.append((customer_id, version, facts))
        results = await writes.execute()
        return [item for item, done in zip(sent, results, strict=True) if done == -1]

    def _script_args(self, change: Mapping[tuple[str, str], int]) -> tuple[list[str], list[Any]]:
        keys = [self.versions_key, self.facts_key, self.days_key]
        index: dict[str, int] = {}
        ops: list[Any] = []
        for (bucket, name), diff in change.items():
            if bucket not in index:
                keys.append(self.bucket_key(bucket))
                index[bucket] = len(keys)  # Lua's KEYS are 1-based
            ops += [index[bucket], name, diff]
        days = sorted(_days(index))
        return keys, [len(change), *ops, *days]

    async def bulk_load(
        self, items: Iterable[tuple[str, int, FactsInput]], chunk: int = 20_000
    ) -> int:
        """Load journeys into an empty store at once: contributions summed in Python, written
        with pipelined increments (no version checks: for first loads and benchmarks)."""
        totals: dict[str, Counter[str]] = {}
        count = 0
        pipe = self.redis.pipeline(transaction=False)
        queued = 0
        for customer_id, version, facts in items:
            text = _facts_text(facts)
            pipe.hset(self.versions_key, customer_id, str(version) if text else f"{version}d")
            if text:
                pipe.hset(self.facts_key, customer_id, text)
                for (bucket, name), value in contributions(json.loads(text)).items():
                    totals.setdefault(bucket, Counter())[name] += value
            count += 1
            queued += 1
            if queued >= chunk:
                await pipe.execute()
                queued = 0
        for bucket, fields in totals.items():
            nonzero = {k: v for k, v in fields.items() if v}
            for start in range(0, len(nonzero), chunk):
                part = dict(list(nonzero.items())[start : start + chunk])
                for name, value in part.items():
                    pipe.hincrby(self.bucket_key(bucket), name, value)
                await pipe.execute()
        days = _days(totals)
        if days:
            pipe.zadd(self.days_key, {str(d): d for d in days})
        await pipe.execute()
        return count

    async def days(self) -> list[int]:
        """Every day that has aggregates (or had: emptied days stay listed, harmlessly)."""
        found: list[Any] = await self.redis.zrange(self.days_key, 0, -1)
        return [int(d) for d in found]

    async def read(self, buckets: Sequence[str]) -> dict[str, dict[str, int]]:
        """The contents of buckets, in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hgetall(self.bucket_key(bucket))
        found = await pipe.execute()
        return {
            b: {k: int(v) for k, v in fields.items()}
            for b, fields in zip(buckets, found, strict=True)
            if fields
        }

    async def report(
        self,
        *,
        now: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        by: GroupBy | None = None,
        currency: str | None = None,
        daily: bool = False,
    ) -> KpiReport:
        """The KPI report of a whole-day window from the aggregates: reads only the buckets
        of the window's days (and those before it that hold customer stays)."""
        q = AggregateQuery.of(
            now=now, since=since, until=until, by=by, currency=currency, daily=daily
        )
        days = await self.days()
        return q.report(days, await self.read(q.buckets(days)))

    async def facts(self, customer_id: str) -> dict[str, Any] | None:
        """A journey's stored facts, decoded (None: none, or moved away)."""
        raw = await self.redis.hget(self.facts_key, customer_id)
        return json.loads(raw) if raw else None
