"""The publishing client for tools: touchpoints to the right Kafka topic with the right key.

    async with TouchpointPublisher("127.0.0.1:9092") as publisher:
        await publisher.publish(parse_touchpoint(document))
    # leaving the block flushes: every touchpoint is acknowledged by all in-sync replicas

Delivery is idempotent per producer session (``enable_idempotence``, ``acks="all"``) and
batched (``linger_ms``). Re-publishing the same touchpoint is harmless: Tandem deduplicates on
``event_id``, and this client never invents or changes ids.

Routing: ``marketing.*`` -> ``touchpoints.marketing``, ``sales.*`` -> ``touchpoints.sales``
(with the deployment's topic prefix). Key: the touchpoint's strongest person identifier
(``contact:…`` > ``email:…`` > ``anon:…``), or ``ledger`` for spend/cost records without an
identity, so each person's touchpoints keep their order within a partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from events.decode import MAX_MESSAGE_BYTES
from events.envelope import Envelope
from events.topics import topic_for
from events.vocabulary import touchpoint_to_json

LEDGER_KEY = b"ledger"
"""The key of ledger records (spend, cost) that are about no person."""

COMPRESSION_TYPES = ("gzip", "snappy", "lz4", "zstd")
MAX_KEPT_FAILURES = 100


class PublishError(RuntimeError):
    """One or more messages were not acknowledged by the broker."""

    def __init__(self, failures: Sequence[BaseException], count: int | None = None) -> None:
        self.failures = list(failures)
        self.count = len(self.failures) if count is None else count
        first = self.failures[0]
        super().__init__(
            f"{self.count} message(s) not delivered; first: {type(first).__name__}: {first}"
        )


class _Producer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def flush(self) -> None: ...
    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> asyncio.Future[Any]: ...


def available_compression() -> tuple[str, ...]:
    """The compression codecs whose libraries are installed (gzip always is)."""
    from aiokafka.codec import has_gzip, has_lz4, has_snappy, has_zstd

    checks = {"gzip": has_gzip, "snappy": has_snappy, "lz4": has_lz4, "zstd": has_zstd}
    return tuple(name for name, check in checks.items() if check())


def key_for(touchpoint: Envelope) -> bytes:
    """The partitioning key: the strongest person identifier, UTF-8; ``ledger`` without one."""
    identity = touchpoint.identity
    if identity is None:
        return LEDGER_KEY
    identifiers = identity.identifiers()
    return identifiers[0].encode("utf-8") if identifiers else LEDGER_KEY


class TouchpointPublisher:
    """An async context manager around an idempotent, batching aiokafka producer."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic_prefix: str = "",
        *,
        client_id: str = "tandem-publisher",
        linger_ms: int = 20,
        compression_type: str | None = None,
        request_timeout_ms: int = 30_000,
        producer: _Producer | None = None,
    ) -> None:
        """Configure (not connect): `start()` or ``async with`` connects.

        `compression_type` is None (default) or one of `available_compression()`; `producer`
        replaces the aiokafka producer (tests).
        """
        if compression_type is not None:
            if compression_type not in COMPRESSION_TYPES:
                raise ValueError(
                    f"unknown compression {compression_type!r}; use one of {COMPRESSION_TYPES}"
                )
            if compression_type not in available_compression():
                raise ValueError(
                    f"compression {compression_type!r} needs its codec library, which is not "
                    f"installed (available: {', '.join(available_compression())})"
                )
        self.bootstrap_servers = bootstrap_servers
        self.topic_prefix = topic_prefix
        self.client_id = client_id
        self.linger_ms = linger_ms
        self.compression_type = compression_type
        self.request_timeout_ms = request_timeout_ms
        self._producer = producer
        self._started = False
        self._pending: set[asyncio.Future[Any]] = set()
        self._failures: list[BaseException] = []
        self._failed = 0
        self.sent = 0
        """Messages handed to the producer so far."""

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the cluster (idempotent)."""
        if self._started:
            return
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=self.linger_ms,
                compression_type=self.compression_type,
                request_timeout_ms=self.request_timeout_ms,
            )
        await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        """Deliver what is pending, then disconnect; raises `PublishError` if any failed."""
        if not self._started or self._producer is None:
            return
        try:
            await self.flush()
        finally:
            self._started = False
            await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        except PublishError:
            if exc is None:
                raise  # do not mask the error that ended the block

    # --- publishing --------------------------------------------------------------------

    def topic_for(self, touchpoint: Envelope) -> str:
        """The (prefixed) topic of a touchpoint, from its type's domain."""
        return topic_for(touchpoint.type, self.topic_prefix)

    @staticmethod
    def key_for(touchpoint: Envelope) -> bytes:
        """The partitioning key of a touchpoint (see `key_for`)."""
        return key_for(touchpoint)

    async def publish(self, touchpoint: Envelope) -> asyncio.Future[Any]:
        """Queue a touchpoint (canonical JSON) for its topic; returns the delivery future.

        Most callers ignore the future and rely on `flush()` (or leaving the ``async with``
        block), which raises `PublishError` if anything was not delivered. Await the future
        for the record's partition and offset.
        """
        value = self._value(touchpoint)
        return await self.publish_raw(value, self.topic_for(touchpoint), key_for(touchpoint))

    async def publish_raw(
        self, value: bytes, topic: str, key: bytes | str | None
    ) -> asyncio.Future[Any]:
        """Queue arbitrary bytes for a (full, prefixed) topic: for redrive and tests.

        Nothing is validated: invalid input is dead-lettered by Tandem's worker.
        """
        future = await self._send(value, topic, key)
        self._pending.add(future)
        future.add_done_callback(self._settled)
        return future

    async def publish_batch(self, touchpoints: Sequence[Envelope]) -> list[Any]:
        """Publish touchpoints and wait for exactly their acknowledgements.

        Returns one record metadata (topic, partition, offset) per touchpoint; raises
        `PublishError` if any was not delivered (some others may have been: re-publishing
        the batch is safe, Tandem deduplicates on ``event_id``). Failures are reported
        here only, not again by `flush()`: safe for concurrent callers sharing a publisher.
        """
        messages = [(self._value(t), self.topic_for(t), key_for(t)) for t in touchpoints]
        futures = [await self._send(value, topic, key) for value, topic, key in messages]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise PublishError(failures)
        return list(outcomes)

    @staticmethod
    def _value(touchpoint: Envelope) -> bytes:
        value = touchpoint_to_json(touchpoint)
        if len(value) > MAX_MESSAGE_BYTES:
            raise ValueError(
                f"{touchpoint.event_id}: {len(value)} bytes is over the "
                f"{MAX_MESSAGE_BYTES}-byte limit; Tandem would dead-letter it"
            )
        return value

    async def _send(self, value: bytes, topic: str, key: bytes | str | None) -> asyncio.Future[Any]:
        if not self._started or self._producer is None:
            raise RuntimeError("the publisher is not started; use `async with` or start()")
        raw_key = key.encode("utf-8") if isinstance(key, str) else key
        future = await self._producer.send(topic, value=value, key=raw_key)
        self.sent += 1
        return future

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            error: BaseException | None = asyncio.CancelledError("delivery cancelled")
        else:
            error = future.exception()
        if error is not None and len(self._failures) < MAX_KEPT_FAILURES:
            self._failures.append(error)
        if error is not None:
            self._failed += 1

    async def flush(self) -> None:
        """Wait until every queued message is acknowledged; raise `PublishError` otherwise."""
        if self._producer is None:
            return
        if self._started:
            await self._producer.flush()
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
            await asyncio.sleep(0)  # let the done-callbacks record their outcome
        if self._failures:
            failures, self._failures = self._failures, []
            failed, self._failed = self._failed, 0
            raise PublishError(failures, failed)
