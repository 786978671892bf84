"""Fuzz: over 10,000 hostile inputs, the decoder never raises, and the pydantic models and the
checked-in JSON Schemas give the same verdict on every JSON document among them.

`validate_structure` (the models without the clock) must give the schema's verdict on every
document; the decoder at a realistic receipt time (`NOW`) must give the same verdict too,
except for documents dated after ``NOW + 24 h``, which it rejects as `out_of_range`.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from events import (
    TYPE_NAMES,
    ReasonCode,
    Rejection,
    decode_touchpoint,
    touchpoint_from_json,
    touchpoint_to_json,
)
from events.decode import load_json, validate_structure
from tests.hostile import hostile_inputs

JSON_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
INPUTS = 12_000


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema_accepts(document: Any, *, union: bool = False) -> bool:
    """The JSON Schema verdict; per type (equivalent to the union's oneOf, and faster)."""
    type_name = document.get("type") if isinstance(document, dict) else None
    if union or not isinstance(type_name, str) or type_name not in TYPE_NAMES:
        return bool(_validator("touchpoint").is_valid(document))
    return bool(_validator(f"touchpoint.{type_name}").is_valid(document))


def _too_late(document: Any) -> bool:
    occurred = datetime.fromisoformat(document["occurred_at"])
    return occurred > NOW + timedelta(hours=24)


def test_hostile_inputs_never_raise_and_model_and_schema_agree() -> None:
    codes: Counter[str] = Counter()
    mismatches: list[tuple[int, bytes, bool, object]] = []
    documents = accepted = too_late = 0
    for index, raw in enumerate(hostile_inputs(INPUTS)):
        outcome = decode_touchpoint(raw, now=NOW)  # must not raise
        codes[outcome.code.value if isinstance(outcome, Rejection) else "accepted"] += 1
        try:
            document = load_json(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # not text: no document for a schema to judge
        if isinstance(document, Rejection) or len(raw) > 256 * 1024:
            assert isinstance(outcome, Rejection)
            continue
        documents += 1
        clockless = validate_structure(document)
        expected = schema_accepts(document, union=index % 40 == 0)
        model = not isinstance(clockless, Rejection)
        if model != expected:
            mismatches.append((index, raw[:300], expected, clockless))
        if model and _too_late(document):
            too_late += 1
            assert isinstance(outcome, Rejection) and outcome.code is ReasonCode.OUT_OF_RANGE
        else:
            assert isinstance(outcome, Rejection) == isinstance(clockless, Rejection)
        if not isinstance(outcome, Rejection):
            accepted += 1
            # What the worker forwards must pass the model again downstream, unchanged.
            assert touchpoint_from_json(touchpoint_to_json(outcome)) == outcome
    print(
        f"\n{INPUTS} inputs, {documents} JSON documents judged by both, {accepted} accepted, "
        f"{too_late} too far in the future, mismatches {len(mismatches)}; {dict(codes)}"
    )
    assert mismatches == [], mismatches[:5]
    assert accepted > 500 and too_late > 10  # the corpus reaches both sides of the line
    assert len(codes) >= 10, codes
