"""How a stored journey is written to the journeys table: bounded entries, read back exactly.

A journey is a *head* entry under its customer id plus, once it is long, *segments*: sealed
chunks of its touchpoints and of its compacted prefix's summaries, each under a key of its own
(the customer id, a NUL, the segment's digest). No entry is larger than `MAX_JOURNEY_BYTES`,
whatever the journey's length (docs/performance.md, "A hard cap on a journey's entries"):

* a chunk is sealed once it holds `SEGMENT_ITEMS` items or `SEGMENT_BYTES` bytes of JSON, so
  a segment is at most `SEGMENT_BYTES` (or one touchpoint, itself under the input limit);
* the head keeps what the fold needs as it stands — the bookkeeping, the prefix's fold state,
  the unsealed tails of both lists — and the digests of its segments (8 bytes each);
* `journey_entries` raises `JourneyTooLarge` for a head over the cap (bookkeeping no real
  journey reaches): the worker then dead-letters the message that would have grown it.

A segment's key names its content, so it is written once and only read after: a long journey's
change rewrites its head, plus the chunks it seals — a full tail, or at a compaction (every 125
appends) the kept touchpoints' chunks, which then start elsewhere. The store writes new
segments before the head and deletes the ones the head no longer lists after it
(`TableJourneyStore.put`); the changelog is one partition, in order, so a crash part-way leaves
the old head whole, or the new.

Entries are compressed JSON (zlib, fast level): touchpoints repeat the same field names and
values, so they shrink several-fold for a few tens of microseconds. The head's playbook version
stays readable before the compressed part, so the worker finds journeys to re-evaluate under a
new playbook without decoding them. A pointer left by a moved journey, or the marker a forgotten
one leaves, is small JSON. The first byte names the format; records written by earlier versions
(``Z``: one entry with the whole prefix; plain JSON, starting with ``{``) still read.

Layout of a head: ``J`` playbook-version ``\\n`` touchpoint-segment-count (2 bytes) summary-
segment-count (2 bytes) digests (8 bytes each) compressed(record ``\\n`` tail-touchpoints
``\\n`` tail-summaries), the record's own lists left empty. A segment: ``G`` compressed(JSON
array).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import TypeAdapter

from events.vocabulary import Touchpoint
from schemas.journey import CompactedPrefix, CompactedTouchpoint, JourneyRecord
from streams.workflow.ports import ForgottenJourney, MovedJourney, StoredJourney

MAX_JOURNEY_BYTES = 1_000_000
"""The hard cap on any table entry of a journey (under Kafka's default 1 MB message)."""

SEGMENT_BYTES = 384 * 1024
"""JSON bytes at which a chunk is sealed: the head's two tails stay under twice this."""

SEGMENT_ITEMS = {"touchpoints": 32, "summaries": 128}
"""Items at which a chunk is sealed. Small, because every change rewrites and compresses the
head with its unsealed tails: with 128 touchpoints and 1,024 summaries a 10,000-touchpoint
journey's head was 26 KB and took 1.4 ms to encode per change; with these, 5 KB and 0.6 ms."""

_HEAD = b"J"
_SEGMENT = b"G"
_RECORD = b"Z"  # one entry, the prefix compressed apart (written until 2026-12-01)
_POINTER = b"M"
_FORGOTTEN = b"F"
_LEVEL = 1  # zlib's fastest level already removes most of the repetition
_DIGEST = 8
_SEPARATOR = b"\x00"
_TOUCHPOINTS = TypeAdapter(list[Touchpoint])
_SUMMARIES = TypeAdapter(list[CompactedTouchpoint])


class JourneyTooLarge(ValueError):
    """A journey's head would be over `MAX_JOURNEY_BYTES`."""


@dataclass(frozen=True)
class Segment:
    """A sealed chunk of a journey's touchpoints or summaries."""

    digest: bytes
    items: tuple[Any, ...]
    packed: bytes | None = None
    """Its entry's bytes, when this encoding made them (None: sealed before; see `entry`)."""

    def entry(self) -> bytes:
        """The segment's table entry."""
        if self.packed is not None:
            return self.packed
        return _pack(_join([_item_json(item) for item in self.items]))


@dataclass(frozen=True)
class JourneyEntries:
    """A journey's table entries: its head, and the segments the head lists."""

    head: bytes
    segments: tuple[Segment, ...] = ()


def segment_key(customer_id: str, digest: bytes) -> bytes:
    """The table key of one of a customer's segments."""
    return customer_id.encode() + _SEPARATOR + digest.hex().encode()


def is_segment_key(key: bytes) -> bool:
    """Whether a journeys-table key is a segment's (not a customer's head)."""
    return _SEPARATOR in key


# --- sealed chunks, reused while their items are the same objects ---------------------------


class _SealedChunks:
    """Chunks sealed (or read) lately, by the id of their first item, for reuse.

    A chunk keeps its items alive, so no id is reused while it is kept. Most items are the
    live records' own objects; `items_kept` bounds what records evicted since leave behind.
    """

    def __init__(self, items_kept: int) -> None:
        self.items_kept = items_kept
        self._chunks: OrderedDict[int, Segment] = OrderedDict()
        self._items = 0

    def remember(self, segment: Segment) -> None:
        key = id(segment.items[0])
        replaced = self._chunks.pop(key, None)
        self._items -= 0 if replaced is None else len(replaced.items)
        self._chunks[key] = Segment(segment.digest, segment.items)  # its bytes are written
        self._items += len(segment.items)
        while self._items > self.items_kept and len(self._chunks) > 1:
            self._items -= len(self._chunks.popitem(last=False)[1].items)

    def starts(self, item: Any) -> bool:
        """Whether a chunk kept starts with this very item."""
        return id(item) in self._chunks

    def at(self, items: Sequence[Any], start: int) -> Segment | None:
        """The chunk sealed earlier whose items are those from `start` on, if any."""
        known = self._chunks.get(id(items[start]))
        if known is None or len(known.items) > len(items) - start:
            return None
        following = items[start : start + len(known.items)]
        if all(a is b for a, b in zip(known.items, following, strict=True)):
            self._chunks.move_to_end(id(items[start]))
            return known
        return None


_SEALED = _SealedChunks(items_kept=262_144)


def _item_json(item: Any) -> bytes:
    return item.model_dump_json().encode()  # type: ignore[no-any-return]


class _ItemJson:
    """The JSON of items encoded lately, by id (each kept alive with it, so no id is reused).

    Every change to a journey encodes its unsealed touchpoints again (up to
    `SEGMENT_ITEMS["touchpoints"]`), nearly all of them the same objects as last time: their
    JSON is looked up instead of made again. The least recently used go first once `kept` are
    held: ~0.5 KB of JSON each, and a touchpoint no journey holds any more (~3 KB) lives on
    until it goes.
    """

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._json: dict[int, tuple[Any, bytes]] = {}

    def of(self, item: Any) -> bytes:
        """`item`'s JSON, as `_item_json` makes it."""
        json = self._json
        known = json.pop(id(item), None)  # put back last: dicts keep insertion order
        if known is not None and known[0] is item:
            json[id(item)] = known
            return known[1]
        text = _item_json(item)
        json[id(item)] = (item, text)
        if len(json) > self.kept:
            del json[next(iter(json))]
        return text

    def many(self, items: Sequence[Any]) -> bytes:
        """The JSON array of `items`."""
        return _join([self.of(item) for item in items])


_TOUCHPOINT_JSON = _ItemJson(kept=16_384)


def _summaries_json(summaries: Sequence[Any]) -> bytes:
    # A prefix's summaries change only at a compaction (and are kept per prefix): one call.
    return _SUMMARIES.dump_json(cast(list[CompactedTouchpoint], summaries))


def _join(parts: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def _pack(array_json: bytes) -> bytes:
    return _SEGMENT + zlib.compress(array_json, _LEVEL)


def _seal(items: Sequence[Any], parts: list[bytes]) -> Segment:
    array = _join(parts)
    digest = hashlib.blake2b(array, digest_size=_DIGEST).digest()
    segment = Segment(digest, tuple(items), _pack(array))
    _SEALED.remember(segment)
    return segment


def _chunked(
    items: Sequence[Any],
    limit: int,
    dump_all: Callable[[Sequence[Any]], bytes],
    dump_one: Callable[[Any], bytes] = _item_json,
) -> tuple[list[Segment], bytes]:
    """The sealed segments of a list and the JSON array of its unsealed tail."""
    if len(items) < limit and not any(_SEALED.starts(item) for item in items):
        whole = dump_all(items)
        if len(whole) <= SEGMENT_BYTES:  # nothing to seal (most journeys): one call
            return [], whole
    sealed: list[Segment] = []
    pending: list[Any] = []
    parts: list[bytes] = []
    size = 0
    index = 0
    while index < len(items):
        known = _SEALED.at(items, index)
        if known is not None:
            if pending:  # what came before a chunk sealed earlier is sealed too
                sealed.append(_seal(pending, parts))
                pending, parts, size = [], [], 0
            sealed.append(known)
            index += len(known.items)
            continue
        part = dump_one(items[index])
        if pending and (len(pending) >= limit or size + len(part) > SEGMENT_BYTES):
            sealed.append(_seal(pending, parts))
            pending, parts, size = [], [], 0
        pending.append(items[index])
        parts.append(part)
        size += len(part) + 1
        index += 1
    return sealed, _join(parts)


_PREFIXES: OrderedDict[int, tuple[CompactedPrefix, list[Segment], bytes]] = OrderedDict()
_PREFIXES_KEPT = 1024


def _prefix_chunks(prefix: CompactedPrefix) -> tuple[list[Segment], bytes]:
    # A prefix changes only when its journey compacts: between, its chunks are the same.
    # Keyed by the (immutable) object, kept alive with them so its id cannot be reused.
    kept = _PREFIXES.get(id(prefix))
    if kept is not None and kept[0] is prefix:
        _PREFIXES.move_to_end(id(prefix))
        return kept[1], kept[2]
    sealed, tail = _chunked(prefix.touchpoints, SEGMENT_ITEMS["summaries"], _summaries_json)
    _PREFIXES[id(prefix)] = (prefix, [Segment(s.digest, s.items) for s in sealed], tail)
    while len(_PREFIXES) > _PREFIXES_KEPT:
        _PREFIXES.popitem(last=False)
    return sealed, tail


# --- encoding and decoding -------------------------------------------------------------------


def journey_entries(journey: StoredJourney) -> JourneyEntries:
    """The table entries of a journey (or of the pointer or marker it left).

    Raises `JourneyTooLarge` if the head would be over `MAX_JOURNEY_BYTES`.
    """
    if isinstance(journey, MovedJourney):
        return JourneyEntries(_POINTER + journey.model_dump_json().encode())
    if isinstance(journey, ForgottenJourney):
        return JourneyEntries(_FORGOTTEN + journey.model_dump_json().encode())
    prefix = journey.compacted
    touchpoint_segments, touchpoints = _chunked(
        journey.touchpoints,
        SEGMENT_ITEMS["touchpoints"],
        _TOUCHPOINT_JSON.many,
        _TOUCHPOINT_JSON.of,
    )
    summary_segments, summaries = ([], b"[]") if prefix is None else _prefix_chunks(prefix)
    bare = journey.model_copy(
        update={
            "touchpoints": [],
            "compacted": None if prefix is None else prefix.model_copy(update={"touchpoints": []}),
        }
    )
    body = b"\n".join((bare.model_dump_json().encode(), touchpoints, summaries))
    segments = (*touchpoint_segments, *summary_segments)
    head = b"".join(
        (
            _HEAD,
            (journey.playbook_version or "").encode(),
            b"\n",
            len(touchpoint_segments).to_bytes(2, "big"),
            len(summary_segments).to_bytes(2, "big"),
            *(s.digest for s in segments),
            zlib.compress(body, _LEVEL),
        )
    )
    if len(head) > MAX_JOURNEY_BYTES:
        raise JourneyTooLarge(
            f"journey {journey.customer_id} would take {len(head):,} bytes, over the "
            f"{MAX_JOURNEY_BYTES:,}-byte cap"
        )
    return JourneyEntries(head, segments)


def _index(raw: bytes) -> tuple[list[bytes], list[bytes], int]:
    """A head's segment digests (its touchpoints', its summaries') and where its body starts."""
    start = raw.index(b"\n") + 1
    counts = (
        int.from_bytes(raw[start : start + 2], "big"),
        int.from_bytes(raw[start + 2 : start + 4], "big"),
    )
    first = start + 4
    digests = [raw[first + i * _DIGEST : first + (i + 1) * _DIGEST] for i in range(sum(counts))]
    return digests[: counts[0]], digests[counts[0] :], first + len(digests) * _DIGEST


def segment_digests(raw: bytes) -> list[bytes]:
    """The digests of the segments a head lists (none for anything else)."""
    if raw[:1] != _HEAD:
        return []
    touchpoints, summaries, _ = _index(raw)
    return [*touchpoints, *summaries]


def playbook_version_of(raw: bytes) -> str | None:
    """The playbook version a stored record was last evaluated under, without decoding it
    (None for a pointer, a segment, or a record never evaluated)."""
    tag = raw[:1]
    if tag in (_HEAD, _RECORD):
        version = raw[1 : raw.index(b"\n")].decode()
        return version or None
    if tag == b"{":
        record = JourneyRecord.model_validate_json(raw)
        return record.playbook_version
    return None


def decode_journey(
    raw: bytes, segment: Callable[[bytes], bytes | None] | None = None
) -> StoredJourney:
    """A journey (or pointer) from its head's bytes, reading its segments by digest with
    `segment`; raises ValueError on anything else, or on a segment that can't be read."""
    tag = raw[:1]
    if tag == _HEAD:
        return _decode_head(raw, segment)
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


def _decode_head(raw: bytes, segment: Callable[[bytes], bytes | None] | None) -> JourneyRecord:
    touchpoint_digests, summary_digests, body = _index(raw)
    bare_json, touchpoints_json, summaries_json = zlib.decompress(raw[body:]).split(b"\n", 2)
    record = JourneyRecord.model_validate_json(bare_json)
    touchpoints = _read(touchpoint_digests, segment, _TOUCHPOINTS)
    touchpoints += _TOUCHPOINTS.validate_json(touchpoints_json)
    update: dict[str, Any] = {"touchpoints": touchpoints}
    if record.compacted is not None:
        summaries = _read(summary_digests, segment, _SUMMARIES)
        summaries += _SUMMARIES.validate_json(summaries_json)
        update["compacted"] = record.compacted.model_copy(update={"touchpoints": summaries})
    return record.model_copy(update=update)


def _read(
    digests: list[bytes], segment: Callable[[bytes], bytes | None] | None, items: TypeAdapter[Any]
) -> list[Any]:
    found: list[Any] = []
    for digest in digests:
        packed = None if segment is None else segment(digest)
        if packed is None or packed[:1] != _SEGMENT:
            raise ValueError(f"segment {digest.hex()} of the journey is missing")
        chunk = items.validate_json(zlib.decompress(packed[1:]))
        _SEALED.remember(Segment(digest, tuple(chunk)))  # the next encoding reuses it unwritten
        found += chunk
    return found
