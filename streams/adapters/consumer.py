"""Faust's consumer, made to commit only what an agent has processed, in this generation.

Around a rebalance, Faust's consumer loses input for good through shortcuts in its offset
bookkeeping (seen in `tests/integration/test_several_workers.py`, about one run in ten, and in
a stress run with six joins and leaves, every few runs):

- a message whose offset is not the next one after the read offset makes Faust mark the
  offsets in between as acknowledged ("gaps", meant for compacted or transactional topics).
  After a rebalance, messages fetched before a seek arrive with the read offset of another
  moment, so offsets that no agent ever saw are committed;
- a message below the read offset is dropped, so what was fetched, cleared from the agents'
  queues by the rebalance and fetched again is never delivered (the commit then stalls on
  the hole until the next rebalance);
- a message fetched in an older generation is skipped *and acknowledged* by the stream;
- when committing, Faust takes acknowledged offsets as contiguous with the last commit if the
  first of them is at most one *past* the committed offset: the one message in between (the
  next to read, never processed) is committed over;
- after an assignment, messages flow before Faust's seek to the committed offsets has ended;
  the seek then records the committed offset it read from the broker *before* the agents'
  first commit of the generation, so its view of the committed offset goes back (seen: 672
  read, 683 committed, 672 recorded). Every later acknowledgement then looks like it lies
  past a hole that no fetch can fill, since the messages in it were processed already, and
  the partition is never committed again.

Tandem's input topics are neither compacted nor transactional, and every handler is
idempotent, so on those topics the consumer keeps no read offsets (every fetched message is
delivered, a repeat is harmless), records acknowledgements only of messages an agent marked
processed in the current generation (`ProcessedMessages`), and
commits only offsets contiguous with the last commit; a hole makes it fetch the partition
again from the committed offset (the repeats are recognised as duplicates). Changelog topics
keep Faust's behaviour: table recovery relies on it to apply changelog entries in order.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from faust.types import TP

log = logging.getLogger("tandem.worker")


class ReadOffsets(dict[TP, int | None]):
    """Faust's read offsets, kept only for topics other than `untracked`."""

    def __init__(self, untracked: Iterable[str]) -> None:
        super().__init__()
        self.untracked = frozenset(untracked)

    def __missing__(self, tp: TP) -> None:
        return None

    def __getitem__(self, tp: TP) -> int | None:
        if tp.topic in self.untracked:
            return None
        return super().__getitem__(tp)

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        if tp.topic not in self.untracked:
            super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


class CommittedOffsets(dict[TP, int | None]):
    """Faust's committed offsets, never going back on `untracked` topics while assigned.

    A partition's committed offset only grows while this consumer holds it: a smaller value
    is a stale read of the broker (a revocation removes the entry, so a new assignment
    starts from what the broker says then).
    """

    def __init__(self, untracked: Iterable[str], known: Any = ()) -> None:
        super().__init__()
        self.untracked = frozenset(untracked)
        self.update(known)

    def __missing__(self, tp: TP) -> None:
        return None

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        known = super().get(tp)
        if tp.topic in self.untracked and known is not None and (offset or 0) < known:
            return
        super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


class ProcessedMessages:
    """The input messages the agents have processed (held weakly, like Faust's unacked set).

    An agent marks its batch once every effect of it is done; the consumer records an
    acknowledgement only for a marked message. Whatever path inside Faust acknowledges a
    message no agent processed (a skipped message, a batch cut short), it is never committed:
    the hole it leaves makes the consumer fetch it again.
    """

    def __init__(self) -> None:
        self._messages: weakref.WeakSet[Any] = weakref.WeakSet()

    def mark(self, events: Iterable[Any]) -> None:
        """Mark the messages of processed events."""
        for event in events:
            self._messages.add(event.message)

    def __contains__(self, message: object) -> bool:
        return message in self._messages


def commit_only_processed(
    consumer: Any,
    app: Any,
    topics: Iterable[str],
    processed: ProcessedMessages,
    on_refetch: Callable[[TP, int], None] | None = None,
) -> None:
    """Harden a Faust consumer for `topics` (full names) as the module doc explains.

    `on_refetch(tp, offset)` is told when a partition is fetched again from a hole in its
    commits, before the seek (`InOrder.rewind`: those offsets must be taken again).
    """
    untracked = frozenset(topics)
    consumer._read_offset = ReadOffsets(untracked)
    consumer._committed_offset = CommittedOffsets(untracked, consumer._committed_offset)
    acknowledge = consumer.ack

    def ack(message: Any) -> bool:
        if message.topic in untracked:
            stale = getattr(message, "generation_id", None) != app.consumer_generation_id
            if stale or message not in processed:
                # Not ours to commit: fetched again (by this partition's owner) and processed.
                message.acked = True
                consumer._unacked_messages.discard(message)
                return False
        result: bool = acknowledge(message)
        return result

    consumer.ack = ack
    consumer._new_offset = _contiguous_only(consumer, untracked, on_refetch)


REFETCH_AFTER_S = 10.0
"""How long a hole may stay before the partition is fetched again from it. A rebalance makes
holes that its own seek to the committed offsets fills within a moment; only a hole that
stays means a message was skipped for good."""


def _contiguous_only(
    consumer: Any, untracked: frozenset[str], on_refetch: Callable[[TP, int], None] | None
) -> Any:
    """Faust's `_new_offset`, refusing to commit over a hole after the committed offset."""
    new_offset = consumer._new_offset
    holes: dict[TP, tuple[int, float]] = {}  # where each hole is, and since (or last fetched)
    refetching: dict[TP, asyncio.Future[None]] = {}

    async def refetch(tp: TP, offset: int) -> None:
        log.warning("%s: offset %d was never processed; fetching from it again", tp, offset)
        if on_refetch is not None:
            on_refetch(tp, offset)
        try:
            await consumer.seek(tp, offset)
        except Exception as exc:  # e.g. revoked meanwhile: its next owner starts there anyway
            log.warning("%s: could not fetch again from %d (%s)", tp, offset, exc)
        finally:
            refetching.pop(tp, None)

    def hole_at(tp: TP, offset: int) -> None:
        now = asyncio.get_running_loop().time()
        where, since = holes.get(tp, (None, now))
        if where != offset:
            holes[tp] = (offset, now)
        elif now - since >= REFETCH_AFTER_S and tp not in refetching:
            holes[tp] = (offset, now)
            refetching[tp] = asyncio.ensure_future(refetch(tp, offset))

    def contiguous(tp: TP) -> int | None:
        if tp.topic in untracked:
            acked = consumer._acked[tp]
            committed = consumer._committed_offset.get(tp)
            if acked and committed is not None and min(acked) > committed:
                hole_at(tp, committed)
                return None
            holes.pop(tp, None)
        result: int | None = new_offset(tp)
        return result

    return contiguous


HOLE_GIVEN_UP_AFTER_S = 30.0
"""How long a hole at the next offset to process may stay, through fetches from it, before the
messages after it are taken anyway (the offsets are gone: retention moved the log start)."""


class InOrder:
    """Admits each input partition's messages strictly in offset order, from its committed
    offset, within the consumer's current generation.

    Faust's consumer may deliver messages after a hole — notably a restarted worker's first
    messages, past the committed offset it seeks to. Handled out of order, a customer's
    messages would give its journey other intermediate states than before a crash, and a
    version or signal version the read model already holds with other content. A message
    past a hole is held back (not processed, so never acknowledged) and the partition fetched
    again from the hole at once; one below it was processed in this generation already.
    """

    def __init__(self, consumer: Any, app: Any, untracked: Iterable[str]) -> None:
        self.consumer = consumer
        self.app = app
        self.untracked = frozenset(untracked)
        self._generation: int | None = None
        self._next: dict[TP, int] = {}
        # The next offset, since when it is missing, when it was last fetched again.
        self._holes: dict[TP, tuple[int, float, float]] = {}
        self._seeking: set[asyncio.Future[None]] = set()
        self._watchdog: asyncio.Future[None] | None = None

    async def admit(self, events: Sequence[Any]) -> list[Any]:
        """The events to process now, in their order: each partition's next offsets."""
        generation = self.app.consumer_generation_id
        if generation != self._generation:
            self._generation, self._next, self._holes = generation, {}, {}
        admitted: list[Any] = []
        for event in events:
            message = event.message
            if message.topic not in self.untracked:
                admitted.append(event)
                continue
            if getattr(message, "generation_id", None) != generation:
                continue  # fetched again by whoever owns the partition now
            tp = message.tp
            expected = self._next.get(tp)
            if expected is None:
                expected = self._next[tp] = await self._committed(tp, message.offset)
            if message.offset == expected or self._given_up(tp, expected, message.offset):
                admitted.append(event)
                self._next[tp] = message.offset + 1
                self._holes.pop(tp, None)
            elif message.offset > expected:
                self._hole(tp, expected)
        return admitted

    def rewind(self, tp: TP, offset: int) -> None:
        """Take `tp`'s messages again from `offset`: it is fetched again from there because
        its commits stall on it, so what was taken after it was never committed (an
        acknowledgement lost); handled again, each is a recognised repeat."""
        if self._next.get(tp, offset) > offset:
            log.warning("%s: taking offsets from %d again", tp, offset)
            self._next[tp] = offset
            self._holes.pop(tp, None)

    async def _committed(self, tp: TP, first: int) -> int:
        """Where this generation starts on a partition: its committed offset (from the
        broker if Faust has not read it yet); with none, the first message fetched (the
        consumer started at the earliest one)."""
        known = self.consumer._committed_offset.get(tp)
        if known is not None:
            return int(known)
        try:
            thread = self.consumer._thread
            committed = await thread.call_thread(thread._ensure_consumer().committed, tp)
        except Exception as exc:  # stopping, or revoked meanwhile: nothing is lost by waiting
            log.warning("%s: committed offset unknown (%s); starting at %d", tp, exc, first)
            return first
        return int(committed) if committed is not None and committed >= 0 else first

    def _hole(self, tp: TP, offset: int) -> None:
        hole = self._holes.get(tp)
        if hole is not None and hole[0] == offset:
            return  # fetching from it already; what was fetched before arrives meanwhile
        now = asyncio.get_running_loop().time()
        self._holes[tp] = (offset, now, now)
        log.warning("%s: offset %d comes next; fetching from it again", tp, offset)
        self._fetch_again(tp, offset)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.ensure_future(self._watch())

    def _fetch_again(self, tp: TP, offset: int) -> None:
        seeking = asyncio.ensure_future(self._seek(tp, offset))
        self._seeking.add(seeking)
        seeking.add_done_callback(self._seeking.discard)

    async def _watch(self) -> None:
        """Fetch again from every hole that stays: a fetch may be overtaken (a rebalance, a
        fetch already under way), and nothing else would notice when nothing arrives."""
        while self._holes:
            await asyncio.sleep(1.0)
            now = asyncio.get_running_loop().time()
            for tp, (offset, since, fetched) in list(self._holes.items()):
                if now - fetched >= REFETCH_AFTER_S / 2:
                    log.warning("%s: offset %d still missing after %.0f s; fetching again",
                                tp, offset, now - since)  # fmt: skip
                    self._holes[tp] = (offset, since, now)
                    self._fetch_again(tp, offset)

    async def _seek(self, tp: TP, offset: int) -> None:
        try:
            await self.consumer.seek(tp, offset)
        except Exception as exc:  # e.g. revoked meanwhile: its next owner starts there anyway
            log.warning("%s: could not fetch again from %d (%s)", tp, offset, exc)

    def _given_up(self, tp: TP, expected: int, offset: int) -> bool:
        hole = self._holes.get(tp)
        if hole is None or offset < expected:
            return False
        since = asyncio.get_running_loop().time() - hole[1]
        if since < HOLE_GIVEN_UP_AFTER_S:
            return False
        log.error("%s: offsets %d to %d never arrived in %.0f s (gone from the topic?); "
                  "going on from %d", tp, expected, offset - 1, since, offset)  # fmt: skip
        return True
