"""Table recovery that reads the changelogs in bulk, not message by message through Faust.

Faust recovers a table by consuming its changelog through the app's consumer: every entry
crosses from the consumer thread to the event loop, is decoded into an event, passes two
queues and three asyncio tasks (`Consumer._drain_messages`'s `wait_first`, the recovery loop's
`wait_for`), and the recovery loop recounts what is left after each one. Profiled on a worker
restarting with `memory://` (which reads every entry at every start): the event loop was busy
the whole time and under 1 % of it went to storing entries — about 2,500 entries a second
on 2 loaded cores, 121 s for the 100,000 journeys of `benchmarks/measures/recovery.py`.

`BulkRecovery` reads the assigned active changelog partitions first, with a consumer of its own
(no group, batches from `getmany`), and applies each batch with the table's own
`apply_changelog_batch`, exactly as Faust's loop would: same entries, same order per partition,
same stores. Then it marks them read; Faust's loop finds nothing left and goes on as after any
recovery (the `on_recovery_completed` callbacks, seeking the streams, resuming). Whatever the
bulk read does not cover — tables with non-raw serializers or an `on_changelog_event`
callback, standby partitions, transactional apps, a read cut short by its deadline — Faust's
own loop reads from where the bulk read stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP
from faust.types.tables import CollectionT

log = logging.getLogger("tandem.recovery")

FETCH_BYTES = 16 * 1024 * 1024
"""Per partition and per fetch: changelog entries are small, so fetch many at once."""

DEADLINE_SHARE = 0.5
"""Of Faust's request timeout, which the recovery step that calls the bulk read runs under:
the read stops in time and leaves the rest to Faust's loop instead of timing the step out."""


class ChangelogEntry:
    """One changelog record, shaped as the stores' `apply_changelog_batch` reads an event
    (`event.key`, `event.value`, `event.message.{key,value,tp,partition,offset}`)."""

    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: TP, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.tp = tp
        self.partition = tp.partition
        self.offset = offset
        self.key = key
        self.value = value

    @property
    def message(self) -> ChangelogEntry:
        """The entry itself: it carries what a Faust message would."""
        return self


def bulk_readable(table: CollectionT) -> bool:
    """Whether a table's changelog can be applied as raw bytes without Faust's decoding."""
    return (
        getattr(table, "key_serializer", None) == "raw"
        and getattr(table, "value_serializer", None) == "raw"
        and not getattr(table, "_on_changelog_event", None)
    )


def bootstrap_servers(app: Any) -> list[str]:
    """The app's brokers as host:port."""
    return [f"{url.host}:{url.port or 9092}" for url in app.conf.broker]


class BulkRecovery(Recovery):
    """Faust's recovery, with the active changelog partitions read in bulk first."""

    async def _build_offsets(
        self, consumer: Any, tps: set[TP], destination: Any, title: str
    ) -> None:
        await super()._build_offsets(consumer, tps, destination, title)
        if destination is not self.active_offsets or self.app.in_transaction:
            return
        behind = {
            tp: (self.active_offsets[tp], self.active_highwaters[tp])
            for tp in tps
            if tp in self.tp_to_table
            and bulk_readable(self.tp_to_table[tp])
            and self.active_highwaters.get(tp) is not None
            and self.active_offsets[tp] is not None
            and self.active_highwaters[tp] > self.active_offsets[tp]
        }
        if behind:
            timeout = float(self.app.conf.broker_request_timeout)
            await self._read_in_bulk(behind, time.monotonic() + timeout * DEADLINE_SHARE)

    async def _read_in_bulk(self, behind: dict[TP, tuple[int, int]], deadline: float) -> None:
        started = time.monotonic()
        counts = [0]

        def apply(tp: TP, records: Sequence[Any]) -> None:
            # Duck-typed events: the stores read only what a ChangelogEntry carries.
            entries = cast(Any, changelog_entries(tp, records))
            self.tp_to_table[tp].apply_changelog_batch(entries)
            self._mark_read(tp, records[-1].offset)
            counts[0] += len(records)

        reader = ChangelogReader(bootstrap_servers(self.app), self.app.conf.broker_client_id)
        try:
            left = await reader.read(behind, apply, self._mark_read, deadline)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an optimisation only: Faust's loop reads what is left
            log.warning("bulk changelog read failed (%s); Faust's recovery reads the rest", exc)
            return
        log.info(
            "Read %d changelog entries of %d partitions in bulk in %.1f s%s",
            counts[0],
            len(behind),
            time.monotonic() - started,
            f"; {len(left)} partitions left to Faust's recovery" if left else "",
        )

    def _mark_read(self, tp: TP, offset: int) -> None:
        """Entries through `offset` are applied. Entries written after the highwater was
        taken may have been read too: the highwater moves with them, as Faust's consistency
        check (offset <= highwater) expects."""
        self.active_offsets[tp] = max(self.active_offsets[tp], offset)
        self.active_highwaters[tp] = max(self.active_highwaters[tp], offset)


class ChangelogReader:
    """Reads changelog partitions in batches with a consumer of its own (no group)."""

    def __init__(self, servers: list[str], client_id: str) -> None:
        self.servers = servers
        self.client_id = f"{client_id}-bulk-recovery"

    async def read(
        self,
        behind: dict[TP, tuple[int, int]],
        apply: Callable[[TP, Sequence[Any]], None],
        read_through: Callable[[TP, int], None],
        deadline: float,
    ) -> set[TP]:
        """Read each partition from after its offset through its highwater (Faust's counting:
        the last offset applied, the last offset there is), calling `apply` per fetched batch
        and `read_through` with the last offset once a partition is done. Stops at `deadline`;
        returns the partitions not read through."""
        if time.monotonic() >= deadline:
            return set(behind)
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.servers,
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=FETCH_BYTES,
            fetch_max_bytes=4 * FETCH_BYTES,
        )
        remaining = dict(behind)
        try:
            await reader.start()
            partitions = {tp: TopicPartition(tp.topic, tp.partition) for tp in behind}
            reader.assign(list(partitions.values()))
            for tp, (offset, _) in behind.items():
                reader.seek(partitions[tp], offset + 1)
            while remaining and time.monotonic() < deadline:
                fetched = await reader.getmany(timeout_ms=500)
                for partition, records in fetched.items():
                    if records:
                        apply(TP(partition.topic, partition.partition), records)
                for tp, (_, highwater) in list(remaining.items()):
                    position = await reader.position(partitions[tp])
                    if position > highwater:
                        read_through(tp, position - 1)
                        del remaining[tp]
        finally:
            # aiokafka's stop awaits a task it cancels: one that never ran raises instead.
            await asyncio.sleep(0)
            await reader.stop()
        return set(remaining)


def changelog_entries(tp: TP, records: Iterable[Any]) -> list[ChangelogEntry]:
    """Fetched records as the entries a store's `apply_changelog_batch` takes."""
    return [ChangelogEntry(tp, r.offset, r.key, r.value) for r in records]


class BulkRecoveryTableManager(TableManager):
    """Faust's table manager, recovering through `BulkRecovery`."""

    @property
    def recovery(self) -> Recovery:
        """The recovery service (created on first use, as Faust's own)."""
        if self._recovery is None:
            self._recovery = BulkRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
