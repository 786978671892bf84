"""Dead letters: deterministic ids, exact original bytes, JSON that matches its schema."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from events import MAX_MESSAGE_BYTES, ReasonCode, Rejection, decode_touchpoint
from events.examples import INVALID_EXAMPLES, InvalidExample
from schemas.deadletter import DeadLetter, Origin, dead_letter_for, dead_letter_id
from streams.cli.deadletter import select

AT = datetime(2025, 3, 4, 9, 15, tzinfo=UTC)
ORIGIN = Origin(topic="touchpoints.marketing", partition=2, offset=1041, key="anon:a-1")
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas/json/dead_letter.schema.json").read_text()
)


def rejection_of(raw: bytes) -> Rejection:
    outcome = decode_touchpoint(raw, "marketing", now=datetime.now(UTC))
    assert isinstance(outcome, Rejection)
    return outcome


def test_a_dead_letter_keeps_everything_about_the_rejection() -> None:
    invalid = INVALID_EXAMPLES[0]
    raw = invalid.raw()
    letter = dead_letter_for(rejection_of(raw), raw, ORIGIN, AT)
    assert letter.dead_letter_id == "touchpoints.marketing/2/1041"
    assert letter.reason_code is ReasonCode.INVALID
    assert letter.reason.startswith("marketing.page_viewed failed validation")
    assert letter.errors == ["properties.url: Field required"]
    assert letter.origin == ORIGIN
    assert letter.original_bytes() == raw
    assert letter.original_text == raw.decode()
    assert letter.event_id == invalid.document["event_id"]
    assert letter.type == "marketing.page_viewed"
    assert letter.rejected_at == AT
    assert letter.original_key() == b"anon:a-1"


def test_the_id_is_deterministic() -> None:
    raw = b'{"broken'
    one = dead_letter_for(rejection_of(raw), raw, ORIGIN, AT)
    two = dead_letter_for(rejection_of(raw), raw, ORIGIN, AT + timedelta(hours=1))
    assert one.dead_letter_id == two.dead_letter_id
    other = ORIGIN.model_copy(update={"offset": 1042})
    assert dead_letter_id(raw, other) != one.dead_letter_id


def test_without_an_origin_the_id_is_the_content_hash() -> None:
    raw = b"\xff\xfe not utf-8"
    letter = dead_letter_for(rejection_of(raw), raw, None, AT)
    assert letter.dead_letter_id.startswith("sha256:") and len(letter.dead_letter_id) == 71
    assert letter.dead_letter_id == dead_letter_id(raw, None)
    assert letter.dead_letter_id != dead_letter_id(raw + b"!", None)
    assert letter.origin is None and letter.original_key() is None


def test_bytes_that_are_not_utf8_survive_exactly() -> None:
    raw = bytes(range(256))
    letter = dead_letter_for(rejection_of(raw), raw, ORIGIN, AT)
    assert letter.reason_code is ReasonCode.BAD_UTF8
    assert letter.original_text is None
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.original_bytes() == raw
    assert again == letter


def test_oversized_input_keeps_its_bytes_but_not_a_second_copy_as_text() -> None:
    raw = b'{"x": "' + b"a" * MAX_MESSAGE_BYTES + b'"}'
    letter = dead_letter_for(rejection_of(raw), raw, ORIGIN, AT)
    assert letter.reason_code is ReasonCode.TOO_LARGE
    assert letter.original_text is None
    assert letter.original_bytes() == raw


def test_empty_input() -> None:
    letter = dead_letter_for(rejection_of(b""), b"", ORIGIN, AT)
    assert letter.reason_code is ReasonCode.BAD_JSON
    assert letter.original_b64 == "" and letter.original_bytes() == b""


@pytest.mark.parametrize("invalid", INVALID_EXAMPLES[:6], ids=lambda e: e.description)
def test_the_json_matches_the_checked_in_schema(invalid: InvalidExample) -> None:
    raw = invalid.raw()
    letter = dead_letter_for(rejection_of(raw), raw, ORIGIN, AT)
    document = json.loads(letter.model_dump_json())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["reason_code"] == letter.reason_code.value
    assert base64.b64decode(document["original_b64"]) == raw


def test_rejected_at_must_carry_a_timezone() -> None:
    with pytest.raises(ValidationError):
        dead_letter_for(rejection_of(b"{"), b"{", ORIGIN, datetime(2025, 3, 4, 9, 15))
    tz = timezone(timedelta(hours=2))
    assert dead_letter_for(rejection_of(b"{"), b"{", ORIGIN, AT.astimezone(tz)).rejected_at == AT


def test_unknown_fields_are_refused_when_reading_dead_letters() -> None:
    letter = dead_letter_for(rejection_of(b"{"), b"{", ORIGIN, AT)
    document = json.loads(letter.model_dump_json())
    document["surprise"] = 1
    with pytest.raises(ValidationError):
        DeadLetter.model_validate(document)


def _letters() -> list[DeadLetter]:
    letters = []
    for offset, (raw, topic) in enumerate(
        [
            (b"{", "touchpoints.marketing"),
            (b"[]", "touchpoints.sales"),
            (INVALID_EXAMPLES[0].raw(), "touchpoints.marketing"),
        ]
    ):
        origin = Origin(topic=topic, partition=0, offset=offset, key=None)
        letters.append(dead_letter_for(rejection_of(raw), raw, origin, AT))
    return letters


def test_select_filters_by_id_reason_and_origin_topic() -> None:
    letters = _letters()
    ids = [letter.dead_letter_id for letter in letters]
    assert select(letters) == letters
    assert select(letters, ids=[ids[1]]) == [letters[1]]
    assert select(letters, reason="bad_json") == [letters[0]]
    assert select(letters, origin_topic="touchpoints.marketing") == [letters[0], letters[2]]
    assert select(letters, origin_topic="p.touchpoints.sales", topic_prefix="p.") == [letters[1]]
    assert select(letters, ids=[ids[0]], reason="invalid") == []
