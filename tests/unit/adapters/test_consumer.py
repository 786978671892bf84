"""The consumer hardening: no read offsets on input topics, no acks from another generation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP

import streams.adapters.consumer as consumer_module
from streams.adapters.consumer import ProcessedMessages, ReadOffsets, commit_only_processed

INPUT = "t.touchpoints.resolved"
CHANGELOG = "t.tandem-journeys-changelog"


def test_input_topics_keep_no_read_offset_so_nothing_is_dropped_or_taken_as_a_gap() -> None:
    offsets = ReadOffsets([INPUT])
    offsets[TP(INPUT, 0)] = 552
    offsets.update({TP(INPUT, 1): 7})
    assert offsets[TP(INPUT, 0)] is None
    assert offsets[TP(INPUT, 1)] is None
    assert TP(INPUT, 0) not in offsets  # `_seek_wait` deletes only what `keys()` holds


def test_changelog_topics_keep_fausts_read_offsets() -> None:
    offsets = ReadOffsets([INPUT])
    assert offsets[TP(CHANGELOG, 0)] is None  # like Faust's defaultdict(lambda: None)
    offsets[TP(CHANGELOG, 0)] = 12
    offsets.update({TP(CHANGELOG, 1): 3})
    assert offsets[TP(CHANGELOG, 0)] == 12
    assert offsets[TP(CHANGELOG, 1)] == 3
    del offsets[TP(CHANGELOG, 0)]
    assert offsets[TP(CHANGELOG, 0)] is None


@dataclass(eq=False)
class Message:
    topic: str
    generation_id: int | None
    acked: bool = False


@dataclass
class Consumer:
    acked: list[Message] = field(default_factory=list)
    _unacked_messages: set[Message] = field(default_factory=set)
    _read_offset: Any = None
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)

    def ack(self, message: Message) -> bool:
        self.acked.append(message)
        return True

    def _new_offset(self, tp: TP) -> int | None:
        return None


@dataclass
class Event:
    message: Message


@dataclass
class App:
    consumer_generation_id: int


def test_an_ack_from_an_older_generation_is_not_recorded_on_input_topics() -> None:
    consumer, app = Consumer(), App(consumer_generation_id=5)
    processed = ProcessedMessages()
    commit_only_processed(consumer, app, [INPUT], processed)
    stale, current = Message(INPUT, 4), Message(INPUT, 5)
    changelog = Message(CHANGELOG, 4)
    processed.mark([Event(stale), Event(current)])
    assert consumer.ack(stale) is False
    assert stale.acked  # the stream sees it as done; the partition's owner fetches it again
    assert consumer.ack(current) is True
    assert consumer.ack(changelog) is True
    assert consumer.acked == [current, changelog]


@dataclass
class Committer:
    """What `_new_offset` reads of Faust's consumer, and its seek."""

    _acked: dict[TP, list[int]]
    _committed_offset: dict[TP, int | None]
    sought: list[tuple[TP, int]] = field(default_factory=list)
    _unacked_messages: set[Message] = field(default_factory=set)
    _read_offset: Any = None

    def _new_offset(self, tp: TP) -> int | None:  # Faust's: contiguous from the lowest ack
        acked = sorted(self._acked[tp])
        end = acked[0]
        while end + 1 in acked:
            end += 1
        return end + 1

    def ack(self, message: Message) -> bool:
        return True

    async def seek(self, tp: TP, offset: int) -> None:
        self.sought.append((tp, offset))


async def test_a_hole_right_after_the_committed_offset_is_not_committed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tp = TP(INPUT, 0)
    consumer = Committer(_acked={tp: [794, 795, 796]}, _committed_offset={tp: 793})
    commit_only_processed(consumer, App(consumer_generation_id=6), [INPUT], ProcessedMessages())
    assert consumer._new_offset(tp) is None  # Faust alone would commit 797 over offset 793
    await asyncio.sleep(0.01)
    assert consumer.sought == []  # a rebalance's own seek may still fill it
    monkeypatch.setattr(consumer_module, "REFETCH_AFTER_S", 0.0)
    assert consumer._new_offset(tp) is None
    await asyncio.sleep(0.01)
    assert consumer.sought == [(tp, 793)]  # the hole stayed: fetched again from it


async def test_contiguous_acks_commit_as_before() -> None:
    tp, changelog = TP(INPUT, 0), TP(CHANGELOG, 0)
    consumer = Committer(
        _acked={tp: [793, 794], changelog: [10, 11]},
        _committed_offset={tp: 793, changelog: 5},
    )
    commit_only_processed(consumer, App(consumer_generation_id=6), [INPUT], ProcessedMessages())
    assert consumer._new_offset(tp) == 795
    assert consumer._new_offset(changelog) == 12  # not an input topic: Faust's rule
    assert consumer.sought == []


def test_an_ack_of_a_message_no_agent_processed_is_not_recorded() -> None:
    consumer, app = Consumer(), App(consumer_generation_id=5)
    processed = ProcessedMessages()
    commit_only_processed(consumer, app, [INPUT], processed)
    skipped, done = Message(INPUT, 5), Message(INPUT, 5)
    processed.mark([Event(done)])
    assert consumer.ack(skipped) is False  # e.g. acknowledged by Faust without processing
    assert consumer.ack(done) is True
    assert consumer.acked == [done]


# --- in-order admission ---------------------------------------------------------------------


@dataclass(eq=False)
class Fetched:
    offset: int
    generation_id: int = 6
    topic: str = INPUT
    partition: int = 0

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Seeking:
    _committed_offset: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def offsets(events: list[Event]) -> list[int]:
    return [e.message.offset for e in events]


def batch(*fetched: Fetched) -> list[Event]:
    return [Event(f) for f in fetched]  # type: ignore[arg-type]


async def test_messages_are_admitted_in_offset_order_from_the_committed_offset() -> None:
    consumer = Seeking({TP(INPUT, 0): 546})
    gate = consumer_module.InOrder(consumer, App(consumer_generation_id=6), [INPUT])
    # A restarted worker's first batch skipped 546 (seen in a crash-loop run): held back.
    assert offsets(await gate.admit(batch(Fetched(673), Fetched(674)))) == []
    await asyncio.sleep(0)
    assert consumer.seeks == [(TP(INPUT, 0), 546)]
    # Fetched again from the hole: in order, and what was processed is not processed twice.
    again = batch(Fetched(546), Fetched(547), Fetched(546), Fetched(548))
    assert offsets(await gate.admit(again)) == [546, 547, 548]
    assert consumer.seeks == [(TP(INPUT, 0), 546)]  # one fetch per hole


async def test_other_partitions_generations_and_topics_are_judged_on_their_own() -> None:
    consumer = Seeking({TP(INPUT, 0): 10})
    gate = consumer_module.InOrder(consumer, App(consumer_generation_id=6), [INPUT])
    fetched = batch(
        Fetched(10), Fetched(0, partition=1), Fetched(11, generation_id=5),
        Fetched(99, topic=CHANGELOG), Fetched(11),
    )  # fmt: skip
    assert offsets(await gate.admit(fetched)) == [10, 0, 99, 11]
    assert consumer.seeks == []


async def test_a_new_generation_starts_again_from_the_committed_offset() -> None:
    consumer, app = Seeking({TP(INPUT, 0): 3}), App(consumer_generation_id=6)
    gate = consumer_module.InOrder(consumer, app, [INPUT])
    assert offsets(await gate.admit(batch(Fetched(3), Fetched(4)))) == [3, 4]
    app.consumer_generation_id = 7  # a rebalance: the new owner seeks to what was committed
    assert offsets(await gate.admit(batch(Fetched(3, generation_id=7)))) == [3]


async def test_offsets_fetched_again_for_a_stalled_commit_are_taken_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Taken once, but never committed (an acknowledgement lost): when the commits' hole is
    fetched again, the gate takes those offsets again instead of dropping them as seen."""
    tp = TP(INPUT, 0)
    consumer, app = Seeking({tp: 3}), App(consumer_generation_id=6)
    gate = consumer_module.InOrder(consumer, app, [INPUT])
    assert offsets(await gate.admit(batch(Fetched(3), Fetched(4)))) == [3, 4]
    assert offsets(await gate.admit(batch(Fetched(3)))) == []  # a repeat of this generation
    committer = Committer(_acked={tp: [5]}, _committed_offset={tp: 3})
    commit_only_processed(committer, app, [INPUT], ProcessedMessages(), gate.rewind)
    monkeypatch.setattr(consumer_module, "REFETCH_AFTER_S", 0.0)
    assert committer._new_offset(tp) is None
    assert committer._new_offset(tp) is None  # the hole at 3 stays: fetched again from it
    await asyncio.sleep(0.01)
    assert committer.sought == [(tp, 3)]
    assert offsets(await gate.admit(batch(Fetched(3), Fetched(4), Fetched(5)))) == [3, 4, 5]


async def test_a_hole_that_never_fills_is_given_up_with_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(consumer_module, "HOLE_GIVEN_UP_AFTER_S", 0.0)
    consumer = Seeking({TP(INPUT, 0): 5})
    gate = consumer_module.InOrder(consumer, App(consumer_generation_id=6), [INPUT])
    assert offsets(await gate.admit(batch(Fetched(9)))) == []  # retention removed 5 to 8
    assert offsets(await gate.admit(batch(Fetched(9), Fetched(10)))) == [9, 10]
    assert "offsets 5 to 8 never arrived" in caplog.text


@dataclass
class Broker:
    """The aiokafka consumer behind Faust's consumer thread: what the group committed."""

    offsets: dict[TP, int]

    async def committed(self, tp: TP) -> int | None:
        return self.offsets.get(tp)


@dataclass
class ConsumerThread:
    broker: Broker

    def _ensure_consumer(self) -> Broker:
        return self.broker

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)


async def test_an_offset_faust_has_not_read_yet_is_asked_of_the_broker() -> None:
    consumer = Seeking()
    consumer._thread = ConsumerThread(Broker({TP(INPUT, 0): 546}))  # type: ignore[attr-defined]
    gate = consumer_module.InOrder(consumer, App(consumer_generation_id=6), [INPUT])
    assert offsets(await gate.admit(batch(Fetched(673)))) == []
    assert offsets(await gate.admit(batch(Fetched(546)))) == [546]
    # A partition the group never committed: the consumer started at its earliest message.
    assert offsets(await gate.admit(batch(Fetched(0, partition=1)))) == [0]


def test_a_stale_read_of_the_committed_offset_never_takes_it_back_on_input_topics() -> None:
    tp, changelog = TP(INPUT, 0), TP(CHANGELOG, 0)
    consumer = Committer(_acked={}, _committed_offset={changelog: 9})
    commit_only_processed(consumer, App(consumer_generation_id=2), [INPUT], ProcessedMessages())
    committed = consumer._committed_offset
    assert committed[changelog] == 9 and committed[TP(INPUT, 1)] is None
    committed.update({tp: 683})  # the agents' first commit of the generation
    committed.update({tp: 672, changelog: 4})  # then Faust's seek records what it read before
    assert committed[tp] == 683  # so acknowledgements from 683 on are not taken as past a hole
    assert committed[changelog] == 4  # changelogs keep Faust's behaviour
    committed.update({tp: None})
    assert committed[tp] == 683
    committed.pop(tp)  # revoked: the next assignment starts from what the broker says
    committed.update({tp: 500})
    assert committed[tp] == 500
