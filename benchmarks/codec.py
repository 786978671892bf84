"""How the worker stores a journey in its table: the one place the benchmarks encode one.

Today the journeys table holds ``record.model_dump_json()`` (streams/app.py,
``publish_outcome``). When the engine gets its compact encoding, switch these two functions
to it and every byte count and per-change cost follows.
"""

from __future__ import annotations

from schemas.journey import JourneyRecord
from streams import journey as core

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""The broker's default ``message.max.bytes``: a bigger table entry no longer fits a message."""


def encode_journey(record: JourneyRecord) -> bytes:
    """The bytes the worker writes to its journeys table (and changelog) for this record."""
    return record.model_dump_json().encode()


def decode_journey(raw: bytes) -> JourneyRecord:
    """The record back from its table bytes."""
    return JourneyRecord.model_validate_json(raw)


def journey_cap() -> tuple[int, str]:
    """The hard cap on a serialized journey, and where it comes from.

    The engine's own cap when it declares one (``streams.journey.MAX_JOURNEY_BYTES``);
    otherwise the broker's default message size, past which a journey stops.
    """
    declared = getattr(core, "MAX_JOURNEY_BYTES", None)
    if isinstance(declared, int):
        return declared, "streams.journey.MAX_JOURNEY_BYTES"
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES, "Kafka's default message.max.bytes (no cap declared)"
