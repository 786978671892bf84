"""The consumer hardening: no read offsets on input topics, no acks from another generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streams.adapters.consumer import ReadOffsets, acknowledge_only_current_generation

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

    def ack(self, message: Message) -> bool:
        self.acked.append(message)
        return True


@dataclass
class App:
    consumer_generation_id: int


def test_an_ack_from_an_older_generation_is_not_recorded_on_input_topics() -> None:
    consumer, app = Consumer(), App(consumer_generation_id=5)
    acknowledge_only_current_generation(consumer, app, [INPUT])
    stale, current = Message(INPUT, 4), Message(INPUT, 5)
    changelog = Message(CHANGELOG, 4)
    assert consumer.ack(stale) is False
    assert stale.acked  # the stream sees it as done; the partition's owner fetches it again
    assert consumer.ack(current) is True
    assert consumer.ack(changelog) is True
    assert consumer.acked == [current, changelog]
