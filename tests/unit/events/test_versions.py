"""The contract as real tools speak it: sales.lead_qualified in versions 1 and 2 (v1 upcast),
BANT answers optional, UTM tags in `context` — through the decoder and the JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from events import ReasonCode, Rejection, decode_touchpoint, touchpoint_to_json
from events.examples import EARLIER_VERSION_EXAMPLES, RECEIVED_AT, example
from events.upcast import lead_qualified_1_to_2, supported_versions, upcast
from events.vocabulary import Bant, LeadQualified, parse_touchpoint, touchpoint_from_json

JSON_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"
LQ = "sales.lead_qualified"


def decode(document: dict[str, Any]) -> Any:
    return decode_touchpoint(json.dumps(document).encode(), "sales", now=RECEIVED_AT)


def v1(properties: dict[str, Any] | None) -> dict[str, Any]:
    document = json.loads(json.dumps(EARLIER_VERSION_EXAMPLES[(LQ, 1)]))
    if properties is None:
        del document["properties"]
    else:
        document["properties"] = properties
    return document


def schema_accepts(name: str, document: dict[str, Any]) -> bool:
    schema = json.loads((JSON_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return bool(jsonschema.Draft202012Validator(schema).is_valid(document))


def test_version_1_is_accepted_and_upcast_to_version_2() -> None:
    decoded = decode(v1({"budget": True, "authority": False, "need": True, "timeline": True}))
    assert isinstance(decoded, LeadQualified) and decoded.schema_version == 2
    assert decoded.properties.bant == Bant(budget="yes", authority="no", need="yes", timeline="yes")


def test_version_2_is_accepted_as_sent() -> None:
    decoded = decode(example(LQ))
    assert isinstance(decoded, LeadQualified)
    assert decoded.properties.bant.timeline == "unknown"
    assert decoded.properties.note == "budget approved for Q3"


@pytest.mark.parametrize(
    "properties",
    [None, {}, {"budget": None, "timeline": None}, {"note": "qualified in the CRM"}],
)
def test_version_1_without_bant_answers_is_accepted_as_unknown(
    properties: dict[str, Any] | None,
) -> None:
    decoded = decode(v1(properties))
    assert isinstance(decoded, LeadQualified), decoded
    assert decoded.properties.bant == Bant()
    assert set(decoded.properties.bant.model_dump().values()) == {"unknown"}


def test_version_2_without_bant_is_all_unknown() -> None:
    document = example(LQ)
    del document["properties"]
    decoded = decode(document)
    assert isinstance(decoded, LeadQualified) and decoded.properties.bant == Bant()


def test_version_1_errors_name_what_was_sent() -> None:
    rejection = decode(v1({"budget": "unknown"}))
    assert isinstance(rejection, Rejection) and rejection.code is ReasonCode.INVALID
    assert rejection.errors == ["properties.budget: Input should be a valid boolean"]


@pytest.mark.parametrize("version", [3, 0, "2", True, None])
def test_other_versions_are_unsupported(version: Any) -> None:
    rejection = decode(example(LQ) | {"schema_version": version})
    assert isinstance(rejection, Rejection)
    assert rejection.code is ReasonCode.UNSUPPORTED_VERSION
    assert "(supported: 1, 2)" in rejection.message


def test_a_type_with_one_version_still_refuses_version_2() -> None:
    rejection = decode(example("sales.demo_held") | {"schema_version": 2})
    assert isinstance(rejection, Rejection)
    assert rejection.code is ReasonCode.UNSUPPORTED_VERSION
    assert supported_versions("sales.demo_held") == (1,)


def test_upcast_is_one_step_per_version_and_equals_sending_version_2() -> None:
    sent_v1 = v1({"budget": True, "need": False, "note": "n"})
    assert upcast(sent_v1, 1) == lead_qualified_1_to_2(sent_v1)
    written = lead_qualified_1_to_2(sent_v1)
    assert written["schema_version"] == 2
    assert written["properties"] == {
        "note": "n",
        "bant": {"budget": "yes", "authority": "unknown", "need": "no", "timeline": "unknown"},
    }
    assert parse_touchpoint(sent_v1) == parse_touchpoint(written)
    assert upcast(written, 2) is written


def test_the_canonical_form_of_an_upcast_event_is_version_2_and_round_trips() -> None:
    decoded = parse_touchpoint(v1({"budget": True}))
    canonical = json.loads(touchpoint_to_json(decoded))
    assert canonical["schema_version"] == 2 and "bant" in canonical["properties"]
    assert touchpoint_from_json(touchpoint_to_json(decoded)) == decoded


def test_the_json_schemas_accept_both_versions_and_nothing_mixed() -> None:
    good = [v1(None), v1({"budget": None}), example(LQ)]
    mixed = v1({"budget": True}) | {"schema_version": 2}
    unversioned_v2 = {k: v for k, v in example(LQ).items() if k != "schema_version"}
    for name in (f"touchpoint.{LQ}", "touchpoint"):
        assert all(schema_accepts(name, d) for d in good)
        assert not schema_accepts(name, mixed)
        assert not schema_accepts(name, unversioned_v2)
    assert all(not isinstance(decode(d), Rejection) for d in good)
    assert isinstance(decode(mixed), Rejection) and isinstance(decode(unversioned_v2), Rejection)


UTM = {
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "spring-launch",
    "utm_term": "journey analytics",
    "utm_content": "ad-variant-b",
}


def test_utm_tags_are_accepted_in_context() -> None:
    document = example("marketing.page_viewed")
    document["context"] = dict(UTM)
    decoded = decode_touchpoint(json.dumps(document).encode(), now=RECEIVED_AT)
    assert not isinstance(decoded, Rejection), decoded
    assert decoded.context.model_dump(exclude_none=True) == UTM
    assert schema_accepts("touchpoint.marketing.page_viewed", document)


@pytest.mark.parametrize("value", ["", "x" * 129, 7, None])
def test_utm_tags_are_bounded_strings(value: Any) -> None:
    document = example("marketing.page_viewed")
    document["context"] = {"utm_campaign": value}
    decoded = decode_touchpoint(json.dumps(document).encode(), now=RECEIVED_AT)
    assert isinstance(decoded, Rejection) == (value is not None)
    assert schema_accepts("touchpoint.marketing.page_viewed", document) == (value is None)
