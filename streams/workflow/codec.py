"""How a stored journey is written to the journeys table: compact bytes, read back exactly.

A record is compressed JSON (zlib, fast level): a journey's touchpoints repeat the same field
names and values, so it shrinks several-fold for a few tens of microseconds. Its playbook
version stays readable in a short header, so the worker can find journeys to re-evaluate
under a new playbook without decoding them. A pointer left by a moved journey is small JSON.
The first byte names the format; a record written before the codec existed (plain JSON,
starting with ``{``) still reads.
"""

from __future__ import annotations

import zlib

from schemas.journey import JourneyRecord
from streams.workflow.ports import MovedJourney, StoredJourney

_RECORD = b"Z"
_POINTER = b"M"
_LEVEL = 1  # zlib's fastest level already removes most of the repetition


def encode_journey(journey: StoredJourney) -> bytes:
    """The table bytes of a journey (or of the pointer a moved journey left)."""
    if isinstance(journey, MovedJourney):
        return _POINTER + journey.model_dump_json().encode()
    header = (journey.playbook_version or "").encode()
    return _RECORD + header + b"\n" + zlib.compress(journey.model_dump_json().encode(), _LEVEL)


def playbook_version_of(raw: bytes) -> str | None:
    """The playbook version a stored record was last evaluated under, without decoding it
    (None for a pointer, or a record never evaluated)."""
    tag = raw[:1]
    if tag == _RECORD:
        version = raw[1 : raw.index(b"\n")].decode()
        return version or None
    if tag == b"{":
        record = JourneyRecord.model_validate_json(raw)
        return record.playbook_version
    return None


def decode_journey(raw: bytes) -> StoredJourney:
    """A journey (or pointer) from its table bytes; raises ValueError on anything else."""
    tag = raw[:1]
    if tag == _RECORD:
        return JourneyRecord.model_validate_json(zlib.decompress(raw[raw.index(b"\n") + 1 :]))
    if tag == _POINTER:
        return MovedJourney.model_validate_json(raw[1:])
    if tag == b"{":
        return JourneyRecord.model_validate_json(raw)
    raise ValueError(f"not a stored journey (starts with {raw[:8]!r})")
