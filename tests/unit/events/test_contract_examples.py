"""Every type has a valid example that the model and the checked-in JSON Schema accept, and
invalid examples that `decode_touchpoint` rejects with the right reason code."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from events import TYPE_NAMES, Rejection, decode_touchpoint
from events.examples import (
    INVALID_EXAMPLES,
    RECEIVED_AT,
    VALID_EXAMPLES,
    InvalidExample,
    example,
    example_json,
    invalid_examples_for,
)
from events.topics import domain_of
from events.vocabulary import parse_touchpoint

JSON_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(name: str, document: Any) -> list[str]:
    return [error.message for error in validator(name).iter_errors(document)]


def test_every_type_has_a_valid_and_an_invalid_example() -> None:
    assert set(VALID_EXAMPLES) == set(TYPE_NAMES)
    assert {example.type for example in INVALID_EXAMPLES} == set(TYPE_NAMES)
    for type_name in TYPE_NAMES:
        assert invalid_examples_for(type_name), type_name


@pytest.mark.parametrize("type_name", sorted(VALID_EXAMPLES))
def test_valid_example_validates_with_the_model(type_name: str) -> None:
    touchpoint = parse_touchpoint(example(type_name))
    assert type(touchpoint) is TYPE_NAMES[type_name]
    assert touchpoint.event_id == VALID_EXAMPLES[type_name]["event_id"]


@pytest.mark.parametrize("type_name", sorted(VALID_EXAMPLES))
def test_valid_example_decodes_on_its_own_topic(type_name: str) -> None:
    decoded = decode_touchpoint(example_json(type_name), domain_of(type_name), now=RECEIVED_AT)
    assert not isinstance(decoded, Rejection), decoded


@pytest.mark.parametrize("type_name", sorted(VALID_EXAMPLES))
def test_valid_example_validates_against_the_checked_in_json_schemas(type_name: str) -> None:
    assert schema_errors(f"touchpoint.{type_name}", VALID_EXAMPLES[type_name]) == []
    assert schema_errors("touchpoint", VALID_EXAMPLES[type_name]) == []


@pytest.mark.parametrize("type_name", sorted(VALID_EXAMPLES))
def test_canonical_json_of_an_example_still_validates_everywhere(type_name: str) -> None:
    canonical = json.loads(parse_touchpoint(example(type_name)).model_dump_json(exclude_none=True))
    assert schema_errors(f"touchpoint.{type_name}", canonical) == []
    decoded = decode_touchpoint(json.dumps(canonical).encode(), now=RECEIVED_AT)
    assert not isinstance(decoded, Rejection)


def _id(example: InvalidExample) -> str:
    return f"{example.type}: {example.description}"


@pytest.mark.parametrize("invalid", INVALID_EXAMPLES, ids=_id)
def test_invalid_example_is_rejected_with_its_reason_code(invalid: InvalidExample) -> None:
    decoded = decode_touchpoint(invalid.raw(), invalid.domain, now=RECEIVED_AT)
    assert isinstance(decoded, Rejection), f"accepted: {invalid.description}"
    assert decoded.code == invalid.code, decoded
    text = "\n".join(decoded.errors) or decoded.message
    assert invalid.error in text
    assert decoded.event_id == invalid.document.get("event_id")


@pytest.mark.parametrize("invalid", [e for e in INVALID_EXAMPLES if e.json_schema_rejects], ids=_id)
def test_structurally_invalid_examples_fail_the_json_schema_too(invalid: InvalidExample) -> None:
    assert schema_errors("touchpoint", invalid.document)
    if invalid.document.get("type") in TYPE_NAMES:
        assert schema_errors(f"touchpoint.{invalid.document['type']}", invalid.document)


def test_examples_are_not_shared_mutable_state() -> None:
    copy = example("sales.deal_won")
    copy["properties"]["amount"] = "1"
    assert VALID_EXAMPLES["sales.deal_won"]["properties"]["amount"] != "1"
