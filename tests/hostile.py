"""A seeded corpus of hostile inputs: the contract's valid examples, mutated.

Each input is the raw bytes a tool (or an attacker) could send as one touchpoint. Half are
structural mutations of a valid document (a field set to a hostile value, dropped, added, a
type swapped for another), half textual mutations of its JSON (truncated, a byte flipped, a key
repeated, deep nesting, lone surrogates, huge numbers, NaN, a BOM). The same seed gives the
same corpus, so a failure is reproducible from its index.
"""

from __future__ import annotations

import copy
import json
import random
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from events.examples import EARLIER_VERSION_EXAMPLES, VALID_EXAMPLES

Document = dict[str, Any]

_TIMES = [
    "9999-12-31T00:00:00Z", "9999-12-31T23:59:59-23:59", "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "2025-02-29T00:00:00Z",
    "2024-02-29T12:00:00+05:00", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
    "2025-03-04T09:15:00", "2025-03-04 09:15:00Z", "2025-03-04T09:15:00.123456789Z",
    "2025-03-04T09:15:00z", "2025-03-04T24:00:00Z", "2025-03-04T09:15:60Z",
    "2025-03-04T09:15:00+24:00", "2025-03-04T09:15:00Z\n", "2025-03-05T09:00:00Z",
    "2025-03-06T09:00:00Z", "2026-01-01T00:00:00Z", "+2025-03-04T09:15:00Z", "2025-3-4T9:15:00Z",
    "２０２５-03-04T09:15:00Z", "2025-03-04T09:15:00.Z", "2025-03-04T09:15:00,5Z",
]  # fmt: skip
_STRINGS = [
    "", " ", "\t", "\x00", "a\x00b", "\u200b", "ada\u200b@x.io", "a\u202eb", "\ufeffada",
    "Ade\u0301@X.io", unicodedata.normalize("NFD", "crm-é"), "ADA@X.IO", " ada@x.io\t",
    "ada@x.io\n", "a@b.c", "a@b", "@x.io", "a b@x.io", "\U000e0041ada@x.io", "İ@x.io",
    "EUR", "EUR\n", "eur", "EURO", "2025-03", "2025-13", "2025-03-32", "2025-03\n",
    "12.5", "12.34567", "-1", "1e3", "00012.5", "1_000", " 5", "NaN", "99999999999999.9999",
    "999999999999999", "0", "x" * 129, "x" * 257, "y" * 2001, "paid_search", "Paid Search",
    "email", "call", "positive", "price", "\u2028", "\\", '"', "\U0001f600", "1",
]  # fmt: skip
_SCALARS: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 5.0, 1.5, -0.0, 0.5, 10, 11, 2**53 - 1, 10**14 - 1,
    10**14, 1e15, 1e308, 1700000000, 10_000_001, 10_001, [], {}, ["a"], [""], ["x"] * 51,
    {"a": 1}, [[[[["deep"]]]]],
]  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _parent(document: Document, path: tuple[Any, ...]) -> Any:
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    return target


def _hostile_value(rng: random.Random) -> Any:
    pool = rng.choice((_TIMES, _STRINGS, _SCALARS, _STRINGS))
    return copy.deepcopy(rng.choice(pool))


def _set_field(document: Document, rng: random.Random) -> Document:
    path = rng.choice([p for p in _paths(document) if p])
    _parent(document, path)[path[-1]] = _hostile_value(rng)
    return document


def _drop_field(document: Document, rng: random.Random) -> Document:
    path = rng.choice([p for p in _paths(document) if p])
    parent = _parent(document, path)
    del parent[path[-1]]
    return document


def _add_field(document: Document, rng: random.Random) -> Document:
    containers = [p for p in _paths(document) if isinstance(_get(document, p), dict)]
    target = _get(document, rng.choice(containers))
    target[rng.choice(["extra", "phone", "properties", "identity", "schema_version", "x"])] = (
        _hostile_value(rng)
    )
    return document


def _get(document: Document, path: tuple[Any, ...]) -> Any:
    target: Any = document
    for part in path:
        target = target[part]
    return target


def _swap_type(document: Document, rng: random.Random) -> Document:
    document["type"] = rng.choice([*VALID_EXAMPLES, "sales.won", "", "marketing.", 7])
    return document


def _version(document: Document, rng: random.Random) -> Document:
    document["schema_version"] = rng.choice([1, 1.0, True, False, "1", 2, 2.0, 3, 0, None, 1.5])
    return document


def _occurred_at(document: Document, rng: random.Random) -> Document:
    document["occurred_at"] = rng.choice([*_TIMES, 1700000000, 1.7e9, None, ""])
    return document


def _identity(document: Document, rng: random.Random) -> Document:
    kind = rng.choice(["email", "contact_id", "anonymous_id", "account_id"])
    identity = document.get("identity")
    if not isinstance(identity, dict):
        identity = document["identity"] = {}
    identity[kind] = rng.choice(_STRINGS)
    return document


def _many(document: Document, rng: random.Random) -> Document:
    for _ in range(rng.randint(2, 4)):
        document = rng.choice(_STRUCTURAL[:-1])(document, rng)
    return document


_STRUCTURAL: list[Callable[[Document, random.Random], Document]] = [
    _set_field, _set_field, _drop_field, _add_field, _swap_type, _version, _occurred_at,
    _identity, _identity, _many,
]  # fmt: skip


def _textual(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    at = rng.randrange(len(raw) + 1)
    if kind == 0:
        return raw[:at]
    if kind == 1:
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
    if kind == 2:
        return raw[:1] + b'"event_id": "dup", ' + raw[1:]
    if kind == 3:
        depth = rng.choice([33, 500, 5000, 100_000])
        return b"[" * depth + raw + b"]" * rng.choice([0, depth])
    if kind == 4:
        return raw.replace(b'"website"', b'"\\ud800"').replace(b'"', b'"\\udfff', 1)
    if kind == 5:
        return raw.replace(b"2025", b"2" * rng.choice([17, 400, 5000]), 1)
    if kind == 6:
        return (
            raw[:-1] + b', "n": ' + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400"]) + b"}"
        )
    if kind == 7:
        return b"\xef\xbb\xbf" + raw
    if kind == 8:
        return raw[:at] + rng.choice(_STRINGS).encode("utf-8", "surrogatepass") + raw[at:]
    if kind == 9:
        return raw.replace(b'": "', b'": "\\u0000', 1)
    if kind == 10:
        return raw.replace(b'"occurred_at": "', b'"occurred_at": 1700000000, "x": "', 1)
    return raw + rng.choice([b"\n", b" ", b"{}", b"\x00", b"]"])


def hostile_inputs(count: int, seed: int = 20251130) -> Iterator[bytes]:
    """`count` hostile inputs, reproducibly, cycling over every type's valid example (and the
    examples of earlier schema versions)."""
    rng = random.Random(seed)
    bases = [VALID_EXAMPLES[name] for name in sorted(VALID_EXAMPLES)]
    bases += [EARLIER_VERSION_EXAMPLES[key] for key in sorted(EARLIER_VERSION_EXAMPLES)]
    for index in range(count):
        document = copy.deepcopy(bases[index % len(bases)])
        if rng.random() < 0.55:
            yield json.dumps(rng.choice(_STRUCTURAL)(document, rng)).encode()
        else:
            yield _textual(json.dumps(document, ensure_ascii=rng.random() < 0.5).encode(), rng)
