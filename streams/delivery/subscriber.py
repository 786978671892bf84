"""A consumer of the signal topics for sales and marketing tooling (`tandem subscribe`).

    async with SignalSubscriber(settings, ["handoff"], group="crm-sync") as subscriber:
        stats = await subscriber.run(handle, limit=10, idle_exit=5.0)

The subscriber is a member of its own consumer group, so several tools each see every signal
and a restarted tool resumes where it left off: the offset of a message is committed only after
`handle` returned for it (at-least-once — a crash between the two shows a signal again).

Within a run it deduplicates by ``(signal_id, version)`` — Kafka may deliver a message twice,
and the worker may re-publish a signal after a restart — and it classifies each signal against
the versions already seen: a first version (`Status.NEW`), a later version of the same id (a
`Status.CORRECTION`: a late touchpoint changed what the signal says), a hand-off taken back
(`Status.REVOCATION`), or an older version arriving after a newer one (`Status.STALE`, skipped:
consumers keep the highest version per id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from schemas.signals import SIGNAL, Signal
from streams.delivery._kafka import (
    SIGNAL_KINDS,
    IdleClock,
    SignalKind,
    signal_consumer,
    start_and_subscribe,
)
from streams.settings import Settings

POLL_MS = 500


def default_group(kinds: Sequence[SignalKind]) -> str:
    """``tandem-subscribe-<kind>`` (kinds joined by ``+`` when there are several)."""
    return "tandem-subscribe-" + "+".join(kinds)


class Status(StrEnum):
    """What a delivered signal is, given the versions of its id seen earlier in the run."""

    NEW = "new"
    CORRECTION = "correction"
    REVOCATION = "revocation"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass
class VersionTracker:
    """Deduplicates ``(signal_id, version)`` and classifies each signal (see `Status`)."""

    latest: dict[str, int] = field(default_factory=dict)
    seen: set[tuple[str, int]] = field(default_factory=set)

    def classify(self, signal: Signal) -> tuple[Status, int | None]:
        """The signal's status and the highest version of its id seen before (or None)."""
        key = (signal.signal_id, signal.version)
        previous = self.latest.get(signal.signal_id)
        if key in self.seen:
            return Status.DUPLICATE, previous
        self.seen.add(key)
        if previous is not None and signal.version < previous:
            return Status.STALE, previous
        self.latest[signal.signal_id] = signal.version
        if signal.signal_type in ("handoff_revoked", "nurture_withdrawn"):
            return Status.REVOCATION, previous
        if signal.version > 1:
            return Status.CORRECTION, previous
        return Status.NEW, previous


@dataclass(frozen=True)
class Received:
    """A signal read from its topic, with what it is relative to the run so far."""

    signal: Signal
    status: Status
    topic: str
    partition: int
    offset: int
    previous_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON line `tandem subscribe --json` prints."""
        return {
            "status": self.status.value,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "previous_version": self.previous_version,
            "signal": self.signal.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class Undecodable:
    """A message on a signal topic that is not a signal (skipped, counted, reported)."""

    topic: str
    partition: int
    offset: int
    error: str


@dataclass
class SubscribeStats:
    """What a run read: shown signals by status, skipped duplicates and stale versions."""

    by_status: dict[Status, int] = field(default_factory=dict)
    undecodable: int = 0

    @property
    def shown(self) -> int:
        """Signals handed to the handler (new, corrections, revocations)."""
        skipped = (Status.DUPLICATE, Status.STALE)
        return sum(n for status, n in self.by_status.items() if status not in skipped)

    def count(self, status: Status) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "shown": self.shown,
            **{status.value: self.by_status.get(status, 0) for status in Status},
            "undecodable": self.undecodable,
        }


Handler = Callable[[Received | Undecodable], Awaitable[None] | None]


def decode_signal(raw: bytes | None) -> Signal | str:
    """The signal in a message value, or why it is not one."""
    if not raw:
        return "empty message"
    try:
        return SIGNAL.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        return f"not a signal: {where}: {first['msg']}"
    except ValueError as exc:  # pragma: no cover - validate_json raises ValidationError
        return f"not JSON: {exc}"


class SignalSubscriber:
    """A consumer-group reader of one or more signal topics (an async context manager)."""

    def __init__(
        self,
        settings: Settings,
        kinds: Sequence[SignalKind],
        group: str | None = None,
        *,
        from_beginning: bool = False,
    ) -> None:
        unknown = [k for k in kinds if k not in SIGNAL_KINDS]
        if unknown or not kinds:
            raise ValueError(f"signal kinds are {', '.join(SIGNAL_KINDS)}; got {list(kinds)}")
        self.settings = settings
        self.kinds = list(kinds)
        self.group = group or default_group(self.kinds)
        self.tracker = VersionTracker()
        self.stats = SubscribeStats()
        self._consumer: AIOKafkaConsumer = signal_consumer(
            settings,
            self.kinds,
            self.group,
            from_beginning=from_beginning,
            client_id="tandem-subscribe",
        )
        self._pending: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> Self:
        await start_and_subscribe(self._consumer, self.settings, self.kinds)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # Also on Ctrl-C: what was shown is handled, so the next run starts after it.
            await self.commit()
        finally:
            await self._consumer.stop()

    async def commit(self) -> None:
        """Commit the offsets of every message handled so far."""
        if self._pending:
            pending, self._pending = self._pending, {}
            await self._consumer.commit(pending)

    def _read(self, message: ConsumerRecord[bytes, bytes]) -> Received | Undecodable:
        topic = message.topic.removeprefix(self.settings.topic_prefix)
        decoded = decode_signal(message.value)
        if isinstance(decoded, str):
            self.stats.undecodable += 1
            return Undecodable(topic, message.partition, message.offset, decoded)
        status, previous = self.tracker.classify(decoded)
        self.stats.count(status)
        return Received(decoded, status, topic, message.partition, message.offset, previous)

    async def run(
        self,
        handle: Handler,
        *,
        limit: int | None = None,
        idle_exit: float | None = None,
        skip_duplicates: bool = True,
    ) -> SubscribeStats:
        """Read signals and pass each to `handle` until `limit` were shown or the topics were
        idle for `idle_exit` seconds (None: forever). Duplicates and stale versions are not
        passed on unless `skip_duplicates` is False. Offsets are committed after every batch.
        """
        clock = IdleClock()
        while limit is None or self.stats.shown < limit:
            batch = await self._consumer.getmany(timeout_ms=POLL_MS)
            if not batch:
                assigned = bool(self._consumer.assignment())
                if idle_exit is not None and clock.idle_for(assigned) >= idle_exit:
                    break
                continue
            clock.busy()
            for tp, messages in sorted(batch.items()):
                for message in messages:
                    if limit is not None and self.stats.shown >= limit:
                        # Fetched but not handled: rewind, so a later run() on this
                        # subscriber reads it (a new process resumes from the commit anyway).
                        self._consumer.seek(tp, message.offset)
                        break
                    item = self._read(message)
                    skipped = isinstance(item, Received) and item.status in (
                        Status.DUPLICATE,
                        Status.STALE,
                    )
                    if not skipped or not skip_duplicates:
                        result = handle(item)
                        if result is not None:
                            await result
                    # Handled (or deliberately skipped): safe to commit past it.
                    self._pending[tp] = message.offset + 1
            await self.commit()
        return self.stats
