"""The KPI aggregates in Redis: written cheaply by the worker, aggregated lazily by readers,
exact under at-least-once redelivery, restarts and concurrent readers.

The worker's part (`queue_facts`, one Lua call per changed journey, pipelined per batch):
keep the journey's latest facts in ``{prefix}kpi:pending`` (``""``: moved away) if their
version is newer than ``{prefix}kpi:versions`` holds (a trailing ``d`` marks a drop, so a
stale write can never bring a moved journey back). ``pending`` doubles as the set of
customers whose facts changed since they were last aggregated.

The readers' part (`catch_up`, before every answer and every few seconds in ``tandem api``):
take pending customers in chunks, read their pending facts and the facts last aggregated
(``{prefix}kpi:aggregated`` with their version in ``{prefix}kpi:aggregated_versions``),
compute the contribution delta in Python and apply it with a Lua script that re-checks both
versions it was computed from: aggregates, aggregated facts and the pending entry change
together or not at all, so concurrent catch-ups and repeated ones never count twice.

Aggregates: hashes ``{prefix}kpi:{bucket}`` (day buckets and 32-day block buckets) and
sorted sets ``{prefix}kpi:z:…`` (layout: `streams.journey.kpis.contributions`), the sorted
set of days that have any, and exact medians by bisection inside Redis (`MEDIAN`).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from schemas.kpis import GroupBy, JourneyFacts, KpiReport
from streams.journey.kpis import AggregateQuery, contributions, delta
from streams.journey.kpis.aggregates import MedianAsk
from streams.journey.kpis.contributions import Delta

FactsInput = JourneyFacts | Mapping[str, Any] | str | None
"""A journey's facts: the model, its JSON decoded, its JSON text, or None (moved away)."""

# KEYS: versions, pending; ARGV: id, version, facts ('' = moved away). A write needs a newer
# version; a drop also wins a tie with the live facts of its version.
WRITE_FACTS = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local new = tonumber(ARGV[2])
if current then
  local dropped = string.sub(current, -1) == 'd'
  local v = tonumber(dropped and string.sub(current, 1, -2) or current)
  if ARGV[3] == '' then
    if v > new or (v == new and dropped) then return 0 end
  elseif v >= new then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] == '' and (ARGV[2] .. 'd') or ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

# KEYS: versions, pending, aggregated, aggregated versions, days, then aggregate keys;
# ARGV: id, aggregated version it was computed from ('' none), pending version it was
# computed from, #sums, (key index, field, change)…, #ranked, (key index, member, score)…,
# #unranked, (key index, member)…, days…
APPLY = """
if (redis.call('HGET', KEYS[4], ARGV[1]) or '') ~= ARGV[2] then return -1 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return -1 end
local text = redis.call('HGET', KEYS[2], ARGV[1])
if not text then return -1 end
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local key = KEYS[tonumber(ARGV[i])]
  if redis.call('HINCRBY', key, ARGV[i + 1], ARGV[i + 2]) == 0 then
    redis.call('HDEL', key, ARGV[i + 1])
  end
  i = i + 3
end
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('ZADD', KEYS[tonumber(ARGV[i])], ARGV[i + 2], ARGV[i + 1])
  i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('ZREM', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('ZADD', KEYS[5], ARGV[i], ARGV[i])
  i = i + 1
end
if text == '' then
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('HSET', KEYS[3], ARGV[1], text)
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

# KEYS: sorted sets to count, then sorted sets whose members to leave out (each a subset of
# the first ones); ARGV[1]: how many to count. Twice the median of the scores (integers),
# as text, by bisection on the value: ~45 rounds of ZCOUNT per key; false when empty.
MEDIAN = """
local np = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  local c = redis.call('ZCARD', KEYS[i])
  if i <= np then n = n + c else n = n - c end
end
if n <= 0 then return false end
local function at(k)
  if #KEYS == 1 then
    return tonumber(redis.call('ZRANGE', KEYS[1], k, k, 'WITHSCORES')[2])
  end
  local lo, hi
  for i = 1, np do
    local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2]
    local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')[2]
    if first then
      first, last = tonumber(first), tonumber(last)
      if not lo or first < lo then lo = first end
      if not hi or last > hi then hi = last end
    end
  end
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local bound = string.format('%.0f', mid)
    local c = 0
    for i = 1, #KEYS do
      local found = redis.call('ZCOUNT', KEYS[i], '-inf', bound)
      if i <= np then c = c + found else c = c - found end
    end
    if c >= k + 1 then hi = mid else lo = mid + 1 end
  end
  return lo
end
local twice
if n % 2 == 1 then
  twice = 2 * at((n - 1) / 2)
else
  twice = at(n / 2 - 1) + at(n / 2)
end
return string.format('%.0f', twice)
"""

CHUNK = 1_000
"""Customers per catch-up round (three round trips each)."""


def facts_text(facts: FactsInput) -> str:
    """The stored form of facts: JSON text, or '' for a journey that moved away."""
    if facts is None:
        return ""
    if isinstance(facts, str):
        return facts
    if isinstance(facts, JourneyFacts):
        return facts.model_dump_json(exclude_defaults=True)
    return json.dumps(facts, separators=(",", ":"), default=str)


def _days(keys: Iterable[str]) -> set[int]:
    return {int(k.split(":")[1]) for k in keys if k[:2] in ("d:", "c:")}


def _decoded(text: str | None) -> Any:
    return json.loads(text) if text else None


class KpiStore:
    """KPI facts and their aggregates in Redis, under a key prefix."""

    def __init__(self, redis: Redis, prefix: str = "tandem:") -> None:
        self.redis = redis
        self.prefix = f"{prefix}kpi:"
        self._write = redis.register_script(WRITE_FACTS)
        self._apply = redis.register_script(APPLY)
        self._median = redis.register_script(MEDIAN)

    @property
    def versions_key(self) -> str:
        return self.prefix + "versions"

    @property
    def pending_key(self) -> str:
        return self.prefix + "pending"

    @property
    def aggregated_key(self) -> str:
        return self.prefix + "aggregated"

    @property
    def aggregated_versions_key(self) -> str:
        return self.prefix + "aggregated_versions"

    @property
    def days_key(self) -> str:
        return self.prefix + "days"

    def bucket_key(self, bucket: str) -> str:
        return self.prefix + bucket

    # --- the worker's part -------------------------------------------------------------------

    async def queue_facts(
        self, pipe: Pipeline, customer_id: str, version: int, facts: FactsInput
    ) -> None:
        """Add a journey's facts write (None: moved away) to the worker's pipeline."""
        await self._write(
            keys=[self.versions_key, self.pending_key],
            args=[customer_id, version, facts_text(facts)],
            client=pipe,
        )

    async def write_facts(self, items: Sequence[tuple[str, int, FactsInput]]) -> list[bool]:
        """Keep journeys' new facts, each only if its version is newer (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for customer_id, version, facts in items:
            await self.queue_facts(pipe, customer_id, version, facts)
        return [bool(done) for done in await pipe.execute()]

    # --- the readers' part -------------------------------------------------------------------

    async def catch_up(self, chunk: int = CHUNK) -> int:
        """Aggregate the facts written since the last catch-up; how many journeys changed.

        Bounded: a customer whose facts keep changing meanwhile is left for the next one."""
        pending = int(await self.redis.hlen(self.pending_key))
        done = 0
        for _ in range(math.ceil(pending / chunk) + 2):
            found: Any = await self.redis.hrandfield(self.pending_key, chunk)
            ids = [str(i) for i in found or ()]
            if not ids:
                break
            done += await self._round(ids)
        return done

    async def _round(self, ids: list[str]) -> int:
        reads = self.redis.pipeline(transaction=True)  # one moment of the four hashes
        reads.hmget(self.pending_key, ids)
        reads.hmget(self.versions_key, ids)
        reads.hmget(self.aggregated_key, ids)
        reads.hmget(self.aggregated_versions_key, ids)
        texts, versions, olds, old_versions = await reads.execute()
        writes = self.redis.pipeline(transaction=False)
        for customer_id, text, version, old, old_version in zip(
            ids, texts, versions, olds, old_versions, strict=True
        ):
            if text is None or version is None:
                continue  # aggregated meanwhile by another catch-up
            change = delta(contributions(_decoded(old)), contributions(_decoded(text)))
            keys, args = self._script_args(change)
            await self._apply(
                keys=keys,
                args=[customer_id, old_version or "", version, *args],
                client=writes,
            )
        results = await writes.execute() if len(writes) else []
        return sum(1 for r in results if r == 1)

    def _script_args(self, change: Delta) -> tuple[list[str], list[Any]]:
        keys = [
            self.versions_key,
            self.pending_key,
            self.aggregated_key,
            self.aggregated_versions_key,
            self.days_key,
        ]
        index: dict[str, int] = {}

        def at(bucket: str) -> int:
            found = index.get(bucket)
            if found is None:
                keys.append(self.bucket_key(bucket))
                found = index[bucket] = len(keys)  # Lua's KEYS are 1-based
            return found

        args: list[Any] = [len(change.sums)]
        for (bucket, name), diff in change.sums.items():
            args += [at(bucket), name, diff]
        args.append(len(change.ranked))
        for (key, member), score in change.ranked.items():
            args += [at(key), member, score]
        args.append(len(change.unranked))
        for key, member in change.unranked:
            args += [at(key), member]
        return keys, args + sorted(_days(index))

    async def pending(self) -> int:
        """How many journeys' facts changed since they were last aggregated."""
        return int(await self.redis.hlen(self.pending_key))

    # --- answers -----------------------------------------------------------------------------

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

    async def medians(self, asks: Sequence[MedianAsk]) -> dict[tuple[str, str, str], int | None]:
        """Twice the median of each ask, computed inside Redis (one pipelined round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for ask in asks:
            keys = [self.bucket_key(k) for k in (*ask.plus, *ask.minus)]
            await self._median(keys=keys, args=[len(ask.plus)], client=pipe)
        found = await pipe.execute() if asks else []
        return {a.slot: None if v is None else int(v) for a, v in zip(asks, found, strict=True)}

    async def report(
        self,
        *,
        now: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        by: GroupBy | None = None,
        currency: str | None = None,
        daily: bool = False,
        catch_up: bool = True,
    ) -> KpiReport:
        """The KPI report of a whole-day window: catch up, then read only the buckets of the
        window's days (and those before it that hold customer stays) and the medians."""
        if catch_up:
            await self.catch_up()
        q = AggregateQuery.of(
            now=now, since=since, until=until, by=by, currency=currency, daily=daily
        )
        days = await self.days()
        answer = q.answer(days, await self.read(q.buckets(days)))
        return answer.report(await self.medians(answer.medians))

    async def facts(self, customer_id: str) -> dict[str, Any] | None:
        """A journey's latest facts, decoded (None: none, or moved away)."""
        raw = await self.redis.hget(self.pending_key, customer_id)
        if raw is None:
            raw = await self.redis.hget(self.aggregated_key, customer_id)
        found: dict[str, Any] | None = _decoded(str(raw)) if raw else None
        return found

    # --- first loads -------------------------------------------------------------------------

    async def bulk_load(
        self, items: Iterable[tuple[str, int, FactsInput]], chunk: int = 20_000
    ) -> int:
        """Load journeys into an empty store at once, already aggregated: contributions summed
        in Python, written with pipelined bulk commands (for first loads and benchmarks)."""
        sums: dict[str, dict[str, int]] = defaultdict(dict)
        count = 0
        batch: list[tuple[str, int, str]] = []
        for customer_id, version, facts in items:
            batch.append((customer_id, version, facts_text(facts)))
            count += 1
            if len(batch) >= chunk:
                await self._load_chunk(batch, sums)
                batch = []
        await self._load_chunk(batch, sums)
        pipe = self.redis.pipeline(transaction=False)
        for bucket, fields in sums.items():
            nonzero = {k: v for k, v in fields.items() if v}
            if nonzero:
                pipe.hset(self.bucket_key(bucket), mapping=nonzero)  # type: ignore[arg-type]
            if len(pipe) >= 1_000:
                await pipe.execute()
        days = _days(sums)
        if days:
            pipe.zadd(self.days_key, {str(d): d for d in days})
        await pipe.execute()
        return count

    async def _load_chunk(
        self, batch: list[tuple[str, int, str]], sums: dict[str, dict[str, int]]
    ) -> None:
        ranked: dict[str, dict[str, int]] = defaultdict(dict)
        versions: dict[str, str] = {}
        texts: dict[str, str] = {}
        for customer_id, version, text in batch:
            versions[customer_id] = f"{version}d" if not text else str(version)
            if not text:
                continue
            texts[customer_id] = text
            c = contributions(json.loads(text))
            for (bucket, name), value in c.sums.items():
                fields = sums[bucket]
                fields[name] = fields.get(name, 0) + value
            for (key, member), score in c.ranked.items():
                ranked[key][member] = score
        pipe = self.redis.pipeline(transaction=False)
        if versions:
            pipe.hset(self.versions_key, mapping=versions)  # type: ignore[arg-type]
            pipe.hset(self.aggregated_versions_key, mapping=versions)  # type: ignore[arg-type]
        if texts:
            pipe.hset(self.aggregated_key, mapping=texts)  # type: ignore[arg-type]
        for key, members in ranked.items():
            pipe.zadd(self.bucket_key(key), members)
            if len(pipe) >= 1_000:
                await pipe.execute()
        await pipe.execute()
