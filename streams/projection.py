"""The Redis read model: journey snapshots, identifier lookups, moved-journey pointers.

A snapshot write carries the journey's version and is applied atomically only when it is newer
than what Redis holds, so a stale or replayed write can never overwrite a newer snapshot.

Identifier pointers (``identity:<identifier>`` → customer id) are version-checked the same way:
each is stored with the version of the journey that wrote it (``identity_version:<identifier>``)
and re-pointed only by a journey at least as new. An identifier's new owner — the journey a
merge, rename or unmerge gave it to — is always newer than its former owner (an absorb or split
takes the larger version + 1), so a former owner's write arriving late, from another partition
or a replayed batch, can no longer re-point it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from streams.kpi_store import KpiStore

log = logging.getLogger("tandem.projection")

# The account index: ``account:<id>`` is the set of its members' customer ids, ``accounts`` the
# set of account ids with members; a journey's hash keeps its account in the ``account`` field,
# so a change of account, a move or an erasure takes it out of the former account's set in the
# same script. (Account keys are built in the script from ARGV: one Redis, not a cluster.)
_LEAVE_ACCOUNT = """
local function leave_account(hash, id, prefix)
  local old = redis.call('HGET', hash, 'account')
  if old then
    redis.call('SREM', prefix .. 'account:' .. old, id)
    if redis.call('SCARD', prefix .. 'account:' .. old) == 0 then
      redis.call('SREM', prefix .. 'accounts', old)
    end
  end
  return old
end
"""

# KEYS[1] journey hash, KEYS[2] set of live customer ids; ARGV: version, snapshot, stage, id,
# account ('' for none), key prefix
_WRITE_IF_NEWER = (
    _LEAVE_ACCOUNT
    + """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
local old = redis.call('HGET', KEYS[1], 'account')
if old and old ~= ARGV[5] then
  leave_account(KEYS[1], ARGV[4], ARGV[6])
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'snapshot', ARGV[2], 'stage', ARGV[3])
redis.call('HDEL', KEYS[1], 'moved_to')
redis.call('SADD', KEYS[2], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'account', ARGV[5])
  redis.call('SADD', ARGV[6] .. 'account:' .. ARGV[5], ARGV[4])
  redis.call('SADD', ARGV[6] .. 'accounts', ARGV[5])
else
  redis.call('HDEL', KEYS[1], 'account')
end
return 1
"""
)

# KEYS[1] journey hash, KEYS[2] set of live ids; ARGV: version, moved_to, id, key prefix
_MARK_MOVED = (
    _LEAVE_ACCOUNT
    + """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) > tonumber(ARGV[1]) then
  return 0
end
leave_account(KEYS[1], ARGV[3], ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'moved_to', ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return 1
"""
)

# KEYS: (identifier key, identifier version key) pairs; ARGV: customer id, journey version
_POINT_IF_NEWER = """
local written = 0
for i = 1, #KEYS, 2 do
  local current = redis.call('GET', KEYS[i + 1])
  if not current or tonumber(current) <= tonumber(ARGV[2]) then
    redis.call('SET', KEYS[i], ARGV[1])
    redis.call('SET', KEYS[i + 1], ARGV[2])
    written = written + 1
  end
end
return written
"""


# KEYS[1] journey hash, KEYS[2] set of live ids, KEYS[3..] (pointer, pointer version) pairs of
# the person's identifiers; ARGV: version, id, forget request id, key prefix. The snapshot goes
# (and its account membership); a bare
# version stays where there was one (a stale write must not bring the journey back); pointers
# and their versions go if they point here (or nowhere): no identifier of the person is kept.
_ERASE = (
    _LEAVE_ACCOUNT
    + """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) > tonumber(ARGV[1]) then
  return 0
end
leave_account(KEYS[1], ARGV[2], ARGV[4])
redis.call('DEL', KEYS[1])
if current then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'forgotten', ARGV[3])
end
redis.call('SREM', KEYS[2], ARGV[2])
for i = 3, #KEYS, 2 do
  local owner = redis.call('GET', KEYS[i])
  if owner == ARGV[2] or not owner then
    redis.call('DEL', KEYS[i], KEYS[i + 1])
  end
end
return 1
"""
)


@dataclass(frozen=True)
class ErasedJourney:
    """A forgotten person's journey (or pointer) at a customer id: what the read model drops."""

    customer_id: str
    version: int
    request_id: str
    identifiers: tuple[str, ...]


@dataclass(frozen=True)
class LiveJourney:
    """A journey's read-model write: its snapshot (JSON) and KPI facts, at a version."""

    customer_id: str
    version: int
    snapshot_json: str
    stage: str
    identities: tuple[str, ...]
    facts_json: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class MovedPointer:
    """A journey that moved: the read model points its old id at the new one."""

    customer_id: str
    moved_to: str
    version: int


class JourneyProjection:
    """Writes and reads journey snapshots in Redis under a key prefix."""

    def __init__(self, redis: Redis, prefix: str = "tandem:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._write = redis.register_script(_WRITE_IF_NEWER)
        self._moved = redis.register_script(_MARK_MOVED)
        self._point = redis.register_script(_POINT_IF_NEWER)
        self._erase = redis.register_script(_ERASE)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "tandem:", *, timeout_s: float = 5.0
    ) -> JourneyProjection:
        """A projection on its own client. Every call gives up after `timeout_s`: a Redis that
        hangs (paused, swapping, a stuck failover) then looks like one that is down, and the
        worker waits it out with its retries instead of blocking forever on a socket."""
        client = Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, prefix)

    def _journey_key(self, customer_id: str) -> str:
        return f"{self.prefix}journey:{customer_id}"

    @property
    def _live_key(self) -> str:
        return f"{self.prefix}journeys"

    def _identity_key(self, identifier: str) -> str:
        return f"{self.prefix}identity:{identifier}"

    def _pointer_keys(self, identifiers: list[str] | tuple[str, ...]) -> list[str]:
        keys: list[str] = []
        for identifier in identifiers:
            keys += [self._identity_key(identifier), f"{self.prefix}identity_version:{identifier}"]
        return keys

    async def write_snapshot(
        self, customer_id: str, version: int, snapshot: dict[str, Any], stage: str
    ) -> bool:
        """Store the snapshot if it is newer than the stored one (and index it under its
        `account_id`); True when written."""
        account = snapshot.get("account_id") or ""
        written = await self._write(
            keys=[self._journey_key(customer_id), self._live_key],
            args=[version, json.dumps(snapshot, separators=(",", ":")), stage, customer_id,
                  account, self.prefix],
        )  # fmt: skip
        return bool(written)

    async def mark_moved(self, customer_id: str, moved_to: str, version: int) -> bool:
        """Replace an absorbed journey by a pointer to the journey that absorbed it."""
        done = await self._moved(
            keys=[self._journey_key(customer_id), self._live_key],
            args=[version, moved_to, customer_id, self.prefix],
        )
        return bool(done)

    async def link_identifiers(
        self, customer_id: str, identifiers: list[str], version: int = 0
    ) -> int:
        """Point each identifier at its customer id, unless a newer journey (`version`) holds
        it; returns how many were pointed."""
        if not identifiers:
            return 0
        written = await self._point(
            keys=self._pointer_keys(identifiers), args=[customer_id, version]
        )
        return int(written)

    async def resolve(self, reference: str) -> str | None:
        """A customer id for a customer id or any identifier (``email:…``, bare values too)."""
        candidates = [reference]
        if ":" not in reference or reference.split(":", 1)[0] not in ("contact", "email", "anon"):
            candidates += [f"email:{reference.strip().lower()}", f"contact:{reference}",
                           f"anon:{reference}"]  # fmt: skip
        for candidate in candidates:
            if await self.redis.exists(self._journey_key(candidate)):
                return await self._follow(candidate)
            found = await self.redis.get(self._identity_key(candidate))
            if found:
                return await self._follow(str(found))
        return None

    async def _follow(self, customer_id: str) -> str:
        seen = {customer_id}
        while True:
            moved_to = await self.redis.hget(self._journey_key(customer_id), "moved_to")
            if not moved_to or str(moved_to) in seen:
                return customer_id
            customer_id = str(moved_to)
            seen.add(customer_id)

    async def snapshot(self, customer_id: str) -> dict[str, Any] | None:
        """The stored snapshot of a customer's journey, if any."""
        raw = await self.redis.hget(self._journey_key(customer_id), "snapshot")
        return json.loads(raw) if raw else None

    async def version(self, customer_id: str) -> int | None:
        raw = await self.redis.hget(self._journey_key(customer_id), "version")
        return int(raw) if raw is not None else None

    async def customer_ids(self) -> set[str]:
        """Every live (not absorbed) journey's customer id."""
        return {str(member) for member in await self.redis.smembers(self._live_key)}

    async def snapshots(self) -> dict[str, dict[str, Any]]:
        """Every live snapshot, by customer id."""
        ids = sorted(await self.customer_ids())
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for customer_id in ids:
            pipe.hget(self._journey_key(customer_id), "snapshot")
        raws = await pipe.execute()
        return {cid: json.loads(raw) for cid, raw in zip(ids, raws, strict=True) if raw}

    # --- accounts (docs/accounts.md) ------------------------------------------------------

    async def account_ids(self) -> set[str]:
        """Every account with at least one live member."""
        return {str(a) for a in await self.redis.smembers(f"{self.prefix}accounts")}

    async def account_members(self, account_id: str) -> set[str]:
        """The customer ids of the account's live journeys (the index, as written)."""
        found = await self.redis.smembers(f"{self.prefix}account:{account_id}")
        return {str(member) for member in found}

    async def account_snapshots(self, account_id: str) -> list[dict[str, Any]]:
        """The snapshots of the account's members, by customer id; a member whose stored
        snapshot names another account (a write racing this read) is left out."""
        ids = sorted(await self.account_members(account_id))
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for customer_id in ids:
            pipe.hget(self._journey_key(customer_id), "snapshot")
        raws = await pipe.execute()
        found = [json.loads(raw) for raw in raws if raw]
        return [s for s in found if s.get("account_id") == account_id]

    async def account_handoffs_sent(self, account_ids: list[str]) -> dict[str, str]:
        """The accounts among `account_ids` whose hand-off was sent: account → signal id."""
        if not account_ids:
            return {}
        found = await self.redis.hmget(f"{self.prefix}account_handoffs", account_ids)
        return {a: str(s) for a, s in zip(account_ids, found, strict=True) if s}

    async def mark_account_handoffs_sent(self, sent: dict[str, str]) -> None:
        """Record account hand-offs as sent (after the broker has them): account → signal id."""
        if not sent:
            return
        pipe = self.redis.pipeline(transaction=False)
        for account_id, signal_id in sent.items():
            pipe.hset(f"{self.prefix}account_handoffs", account_id, signal_id)
        await pipe.execute()

    # --- KPI facts and aggregates (see streams.kpi_store, docs/kpis.md) --------------------

    @property
    def kpis(self) -> KpiStore:
        """The KPI facts and per-day aggregates, on the same connection and prefix."""
        store: KpiStore | None = self.__dict__.get("_kpi_store")
        if store is None:
            store = self.__dict__["_kpi_store"] = KpiStore(self.redis, self.prefix)
        return store

    async def kpi_snapshot(self) -> dict[str, Any] | None:
        """The dashboard's all-time report with the daily series, computed on demand from
        the aggregates after a catch-up (its cost is that of the changes since the last
        catch-up and of the days with data, not of the journeys)."""
        report = await self.kpis.report(now=datetime.now(UTC), daily=True)
        data: dict[str, Any] = json.loads(report.model_dump_json())
        return data

    async def publish_many(
        self,
        journeys: list[LiveJourney],
        moved: list[MovedPointer],
        erased: list[ErasedJourney] | None = None,
    ) -> None:
        """A batch in one round trip: each live journey's snapshot, KPI facts and identifier
        links, each moved journey's pointer (as `mark_moved` writes it) with its facts
        dropped, and each erased journey's snapshot, identifier links and facts removed. Every
        write is version-checked, so a replayed batch changes nothing."""
        if not journeys and not moved and not erased:
            return
        kpis = self.kpis
        pipe = self.redis.pipeline(transaction=False)
        for journey in journeys:
            customer_id, version = journey.customer_id, journey.version
            await self._write(
                keys=[self._journey_key(customer_id), self._live_key],
                args=[version, journey.snapshot_json, journey.stage, customer_id,
                      journey.account or "", self.prefix],
                client=pipe,
            )  # fmt: skip
            if journey.facts_json is not None:
                await kpis.queue_facts(pipe, customer_id, version, journey.facts_json)
            if journey.identities:
                await self._point(
                    keys=self._pointer_keys(journey.identities),
                    args=[customer_id, version],
                    client=pipe,
                )
        for customer_id, moved_to, version in (
            (m.customer_id, m.moved_to, m.version) for m in moved
        ):
            await self._moved(
                keys=[self._journey_key(customer_id), self._live_key],
                args=[version, moved_to, customer_id, self.prefix],
                client=pipe,
            )
            await kpis.queue_facts(pipe, customer_id, version, None)
        for gone in erased or ():
            await self._erase(
                keys=[self._journey_key(gone.customer_id), self._live_key,
                      *self._pointer_keys(gone.identifiers)],
                args=[gone.version, gone.customer_id, gone.request_id, self.prefix],
                client=pipe,
            )  # fmt: skip
            await kpis.queue_facts(pipe, gone.customer_id, gone.version, None)
        await pipe.execute()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Close the client's connections, waiting at most `timeout_s`: redis-py's close can
        wait forever on a connection whose command was cancelled (redis/redis-py#3941), and a
        shutdown must not hang on it."""
        closing = asyncio.ensure_future(self.redis.aclose())
        done, _ = await asyncio.wait({closing}, timeout=timeout_s)
        if not done:
            log.warning("closing the Redis client took over %.0f s; left behind", timeout_s)
