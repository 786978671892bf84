"""How the worker stores a journey in its table: the one place the benchmarks encode one.

The worker writes `streams.workflow.codec.journey_entries` (compressed JSON with a readable
playbook-version header). Should the engine change its encoding, these functions follow it;
should it move, change the import here and every byte count and per-change cost follows.
"""

from __future__ import annotations

from schemas.journey import JourneyRecord
from streams import journey as core
from streams.workflow import codec

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""The broker's default ``message.max.bytes``: a bigger table entry no longer fits a message."""


def encode_journey(record: JourneyRecord, table: dict[bytes, bytes]) -> bytes:
    """What the worker writes to its journeys table (and changelog) on a change: the head
    entry, returned, and the segments not written before, added to `table` (digest → bytes)."""
    entries = codec.journey_entries(record)
    for segment in entries.segments:
        if segment.digest not in table:
            table[segment.digest] = segment.entry()
    return entries.head


def entry_sizes(record: JourneyRecord) -> list[int]:
    """The sizes of every table entry of this record: its head first, then its segments."""
    entries = codec.journey_entries(record)
    return [len(entries.head), *(len(s.entry()) for s in entries.segments)]


def decode_journey(raw: bytes, table: dict[bytes, bytes]) -> object:
    """The record back from its head's bytes and its segments in `table`."""
    return codec.decode_journey(raw, table.get)


def journey_cap() -> tuple[int, str]:
    """The hard cap on a serialized journey, and where it comes from.

    The engine's own cap on any one entry when it declares one (``MAX_JOURNEY_BYTES`` in
    `streams.journey` or
    `streams.workflow.codec`); otherwise the broker's default message size, past which a
    journey stops.
    """
    for module, name in ((core, "streams.journey"), (codec, "streams.workflow.codec")):
        declared = getattr(module, "MAX_JOURNEY_BYTES", None)
        if isinstance(declared, int):
            return declared, f"{name}.MAX_JOURNEY_BYTES"
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES, "Kafka's default message.max.bytes (no cap declared)"
