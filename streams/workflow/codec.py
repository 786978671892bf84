"""How a stored journey is written to the journeys table: compact bytes, read back exactly.

A record is compressed JSON (zlib, fast level): a journey's touchpoints repeat the same field
names and values, so it shrinks several-fold for a few tens of microseconds. Its playbook
version stays readable in a short header, so the worker can find journeys to re-evaluate
under a new playbook without decoding them. The compacted prefix of a long journey is
compressed on its own and kept compressed while it is unchanged (it changes only when the
journey compacts again), so a change to a long journey re-encodes only its retained part.
A pointer left by a moved journey, or the marker a forgotten one leaves, is small JSON. The
first byte names the format; a record
written before the codec existed (plain JSON, starting with ``{``) still reads.

Layout of a record: ``Z`` playbook-version ``\\n`` prefix-length (4 bytes, big-endian)
compressed-prefix compressed-rest (prefix length 0: no prefix).
"""

from __future__ import annotations

import zlib
from collections import OrderedDict

from schemas.journey import CompactedPrefix, JourneyRecord
from streams.workflow.ports import ForgottenJourney, MovedJourney, StoredJourney

_RECORD = b"Z"
_POINTER = b"M"
_FORGOTTEN = b"F"
_LEVEL = 1  # zlib's fastest level already removes most of the repetition
_PREFIXES: OrderedDict[int, tuple[CompactedPrefix, bytes]] = OrderedDict()
_PREFIXES_KEPT = 1024


def _compressed_prefix(prefix: CompactedPrefix) -> bytes:
    # Keyed by the (immutable) object, kept alive with its bytes so its id cannot be reused.
    kept = _PREFIXES.get(id(prefix))
    if kept is not None and kept[0] is prefix:
        _PREFIXES.move_to_end(id(prefix))
        return kept[1]
    packed = zlib.compress(prefix.model_dump_json().encode(), _LEVEL)
    _PREFIXES[id(prefix)] = (prefix, packed)
    while len(_PREFIXES) > _PREFIXES_KEPT:
        _PREFIXES.popitem(last=False)
    return packed


def encode_journey(journey: StoredJourney) -> bytes:
    """The table bytes of a journey (or of the pointer a moved journey left)."""
    if isinstance(journey, MovedJourney):
        return _POINTER + journey.model_dump_json().encode()
    if isinstance(journey, ForgottenJourney):
        return _FORGOTTEN + journey.model_dump_json().encode()
    header = _RECORD + (journey.playbook_version or "").encode() + b"\n"
    prefix = b"" if journey.compacted is None else _compressed_prefix(journey.compacted)
    rest = journey if journey.compacted is None else journey.model_copy(update={"compacted": None})
    body = zlib.compress(rest.model_dump_json().encode(), _LEVEL)
    return header + len(prefix).to_bytes(4, "big") + prefix + body


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
        start = raw.index(b"\n") + 1
        length = int.from_bytes(raw[start : start + 4], "big")
        packed_prefix, body = raw[start + 4 : start + 4 + length], raw[start + 4 + length :]
        record = JourneyRecord.model_validate_json(zlib.decompress(body))
        if not packed_prefix:
            return record
        prefix = CompactedPrefix.model_validate_json(zlib.decompress(packed_prefix))
        return record.model_copy(update={"compacted": prefix})
    if tag == _POINTER:
        return MovedJourney.model_validate_json(raw[1:])
    if tag == _FORGOTTEN:
        return ForgottenJourney.model_validate_json(raw[1:])
    if tag == b"{":
        return JourneyRecord.model_validate_json(raw)
    raise ValueError(f"not a stored journey (starts with {raw[:8]!r})")
