"""The door: every way input can be wrong gets a stable reason code and a readable message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from events import MAX_MESSAGE_BYTES, ReasonCode, Rejection, decode_touchpoint
from events.examples import RECEIVED_AT, example
from events.vocabulary import Touchpoint


def raw(document: Any) -> bytes:
    return json.dumps(document).encode()


def rejected(data: bytes, domain: Any = None) -> Rejection:
    outcome = decode_touchpoint(data, domain, now=RECEIVED_AT)
    assert isinstance(outcome, Rejection), outcome
    return outcome


def accepted(data: bytes, domain: Any = None) -> Touchpoint:
    outcome = decode_touchpoint(data, domain, now=RECEIVED_AT)
    assert not isinstance(outcome, Rejection), outcome
    return outcome


def test_bad_utf8() -> None:
    data = raw(example("marketing.page_viewed")).replace(b"pricing", b"pr\xffcing")
    rejection = rejected(data)
    assert rejection.code is ReasonCode.BAD_UTF8
    assert "not UTF-8" in rejection.message


def test_bad_json() -> None:
    rejection = rejected(b'{"event_id": "e-1", "type": ')
    assert rejection.code is ReasonCode.BAD_JSON
    assert rejection.message.startswith("not JSON: ")
    assert "line 1" in rejection.message


@pytest.mark.parametrize("document", [[], [example("sales.deal_won")], "text", 42, None, True])
def test_not_an_object(document: Any) -> None:
    assert rejected(raw(document)).code is ReasonCode.NOT_AN_OBJECT


@pytest.mark.parametrize("type_value", ["marketing.page_view", "sales.won", "", None, 7, "x"])
def test_unknown_type(type_value: Any) -> None:
    document = example("marketing.page_viewed")
    document["type"] = type_value
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.UNKNOWN_TYPE
    assert rejection.event_id == document["event_id"]


def test_missing_type_is_unknown() -> None:
    document = example("marketing.page_viewed")
    del document["type"]
    assert rejected(raw(document)).code is ReasonCode.UNKNOWN_TYPE


@pytest.mark.parametrize(
    ("type_name", "topic_domain"),
    [("marketing.form_submitted", "sales"), ("sales.deal_won", "marketing")],
)
def test_wrong_topic(type_name: str, topic_domain: Any) -> None:
    rejection = rejected(raw(example(type_name)), topic_domain)
    assert rejection.code is ReasonCode.WRONG_TOPIC
    assert rejection.type == type_name
    assert f"arrived on the {topic_domain} topic" in rejection.message


def test_without_a_topic_domain_any_type_is_fine() -> None:
    accepted(raw(example("sales.deal_won")))
    accepted(raw(example("marketing.page_viewed")))


def test_over_256_kib_is_too_large_before_anything_else() -> None:
    document = example("marketing.page_viewed")
    document["properties"]["title"] = "x" * MAX_MESSAGE_BYTES
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.TOO_LARGE
    assert str(MAX_MESSAGE_BYTES) in rejection.message
    assert rejected(b"\xff" * (MAX_MESSAGE_BYTES + 1)).code is ReasonCode.TOO_LARGE


def test_exactly_256_kib_is_not_too_large() -> None:
    document = example("sales.demo_held")
    document["properties"]["note"] = ""
    base = len(raw(document))
    document["event_id"] = "e" * 100
    padding = MAX_MESSAGE_BYTES - len(raw(document))
    document["padding"] = "p" * (padding - len(', "padding": ""'))
    data = raw(document)
    assert len(data) == MAX_MESSAGE_BYTES, (len(data), base)
    rejection = rejected(data)
    assert rejection.code is ReasonCode.INVALID  # the unknown field, not the size
    assert rejection.errors == ["padding: Extra inputs are not permitted"]


def test_unknown_top_level_field() -> None:
    document = example("sales.demo_held")
    document["priority"] = "high"
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.INVALID
    assert rejection.errors == ["priority: Extra inputs are not permitted"]


def test_unknown_property() -> None:
    document = example("sales.demo_held")
    document["properties"]["attendees"] = 4
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.INVALID
    assert rejection.errors == ["properties.attendees: Extra inputs are not permitted"]
    assert rejection.type == "sales.demo_held"
    assert rejection.event_id == document["event_id"]


def test_unknown_context_and_identity_fields() -> None:
    document = example("marketing.page_viewed")
    document["context"]["utm_sauce"] = "google"
    document["identity"]["phone"] = "+49"
    errors = rejected(raw(document)).errors
    assert "context.utm_sauce: Extra inputs are not permitted" in errors
    assert "identity.phone: Extra inputs are not permitted" in errors


def test_error_locations_do_not_start_with_the_type_name() -> None:
    document = example("sales.demo_held")
    del document["occurred_at"]
    rejection = rejected(raw(document))
    assert rejection.errors == ["occurred_at: Field required"]
    assert rejection.message == "sales.demo_held failed validation: occurred_at: Field required"


def test_several_errors_are_counted_in_the_message() -> None:
    document = example("sales.deal_won")
    del document["source"]
    document["properties"]["currency"] = "eur"
    rejection = rejected(raw(document))
    assert len(rejection.errors) == 2
    assert rejection.message.endswith("(+1 more)")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Ada@Lovelace.Example", "ada@lovelace.example"),
        ("  ada@lovelace.example\t", "ada@lovelace.example"),
        ("ADA+TANDEM@X.IO", "ada+tandem@x.io"),
    ],
)
def test_email_normalisation(given: str, stored: str) -> None:
    document = example("marketing.email_opened")
    document["identity"] = {"email": given}
    touchpoint = accepted(raw(document))
    assert touchpoint.identity is not None
    assert touchpoint.identity.email == stored
    assert touchpoint.identity.identifiers() == (f"email:{stored}",)


@pytest.mark.parametrize("email", ["ada", "ada@", "@x.io", "ada@x", "a da@x.io", ""])
def test_not_an_email(email: str) -> None:
    document = example("marketing.email_opened")
    document["identity"] = {"email": email}
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.INVALID
    assert rejection.errors[0].startswith("identity.email: ")


def test_identifiers_are_trimmed_and_ordered_strongest_first() -> None:
    document = example("sales.demo_held")
    document["identity"] = {"anonymous_id": " a-1 ", "email": "A@B.io", "contact_id": " c-9"}
    identity = accepted(raw(document)).identity
    assert identity is not None
    assert identity.identifiers() == ("contact:c-9", "email:a@b.io", "anon:a-1")


@pytest.mark.parametrize(
    "identity",
    [None, {}, {"account_id": "acct-1"}, {"email": None, "anonymous_id": None}],
    ids=["missing", "empty", "account only", "nulls"],
)
def test_missing_identity(identity: Any) -> None:
    document = example("sales.demo_held")
    if identity is None:
        del document["identity"]
    else:
        document["identity"] = identity
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.INVALID
    assert rejection.errors[0].startswith("identity")


def test_ledger_records_need_no_identity_but_may_have_one() -> None:
    touchpoint = accepted(raw(example("sales.cost_recorded")))
    assert touchpoint.identity is None
    document = example("marketing.spend_recorded")
    document["identity"] = {"contact_id": "crm-1"}
    assert accepted(raw(document)).identity is not None


@pytest.mark.parametrize("version", [2, 0, "1", None, 1.5])
def test_unsupported_schema_version(version: Any) -> None:
    document = example("sales.deal_won")
    document["schema_version"] = version
    rejection = rejected(raw(document))
    assert rejection.code is ReasonCode.UNSUPPORTED_VERSION
    assert "supported: 1" in rejection.message
    assert rejection.type == "sales.deal_won"


def test_schema_version_1_explicit_or_implied() -> None:
    document = example("sales.deal_won")
    assert accepted(raw(document)).schema_version == 1
    document["schema_version"] = 1
    assert accepted(raw(document)).schema_version == 1


def test_event_time_needs_an_offset_and_keeps_it() -> None:
    document = example("sales.demo_held")
    document["occurred_at"] = "2025-03-04T09:15:00Z"
    assert accepted(raw(document)).occurred_at.utcoffset() is not None
    document["occurred_at"] = "2025-03-04 09:15"
    assert rejected(raw(document)).errors[0].startswith("occurred_at: ")


def test_amounts_are_exact_decimals() -> None:
    document = example("sales.deal_won")
    document["properties"]["amount"] = "0.1"
    touchpoint = accepted(raw(document))
    assert str(touchpoint.properties.amount) == "0.1"  # type: ignore[union-attr]


# --- hostile input (issue 10) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"[" * 100_000, ReasonCode.TOO_DEEP),
        (b"[" * 33 + b"]" * 33, ReasonCode.TOO_DEEP),
        (b"1" * 5000, ReasonCode.OUT_OF_RANGE),
        (b'{"n": 9007199254740992}', ReasonCode.OUT_OF_RANGE),
        (b'{"n": 1e400}', ReasonCode.OUT_OF_RANGE),
        (b'{"n": NaN}', ReasonCode.BAD_JSON),
        (b'{"n": -Infinity}', ReasonCode.BAD_JSON),
        (b'{"a": "\\ud800"}', ReasonCode.BAD_UNICODE),
        (b'{"\\udfff": 1}', ReasonCode.BAD_UNICODE),
        (b'{"a": 1, "b": {"c": 1, "c": 2}}', ReasonCode.DUPLICATE_KEY),
    ],
    ids=["deep", "33-levels", "5000-digits", "2^53", "1e400", "nan", "infinity", "surrogate",
         "surrogate-key", "duplicate"],
)  # fmt: skip
def test_non_i_json_is_rejected_with_its_code(data: bytes, code: ReasonCode) -> None:
    assert rejected(data).code is code


def test_duplicate_keys_are_rejected_even_with_the_same_value() -> None:
    data = raw(example("sales.demo_held")).replace(b"{", b'{"source": "salesforce", ', 1)
    rejection = rejected(data)
    assert rejection.code is ReasonCode.DUPLICATE_KEY and "'source'" in rejection.message


@pytest.mark.parametrize("moment", [1700000000, 1.7e9, None, "1700000000"])
def test_event_time_is_a_string(moment: Any) -> None:
    document = example("sales.demo_held") | {"occurred_at": moment}
    assert rejected(raw(document)).errors[0].startswith("occurred_at: ")


@pytest.mark.parametrize(
    ("moment", "code"),
    [
        ("9999-12-31T00:00:00Z", ReasonCode.OUT_OF_RANGE),
        ("1999-12-31T23:59:59Z", ReasonCode.OUT_OF_RANGE),
        ("2025-02-29T00:00:00Z", ReasonCode.INVALID),
        ("2025-03-04T09:15:00Z\n", ReasonCode.INVALID),
    ],
)
def test_event_time_window_and_calendar(moment: str, code: ReasonCode) -> None:
    document = example("sales.demo_held") | {"occurred_at": moment}
    assert rejected(raw(document)).code is code


def test_event_time_window_is_relative_to_now() -> None:
    document = example("sales.demo_held") | {"occurred_at": "2025-03-06T09:00:00Z"}
    assert rejected(raw(document)).code is ReasonCode.OUT_OF_RANGE  # RECEIVED_AT is 03-04
    later = decode_touchpoint(raw(document), now=datetime(2025, 3, 6, tzinfo=UTC))
    assert not isinstance(later, Rejection)


@pytest.mark.parametrize("version", [True, False])
def test_schema_version_is_not_a_boolean(version: bool) -> None:
    document = example("sales.deal_won") | {"schema_version": version}
    assert rejected(raw(document)).code is ReasonCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    ("field", "value"),
    [("properties.company_size", "250"), ("properties.company_size", True),
     ("properties.company_size", 2.5), ("properties.minutes", "5")],
)  # fmt: skip
def test_numbers_are_not_coerced(field: str, value: Any) -> None:
    type_name = "marketing.form_submitted" if "company" in field else "marketing.webinar_attended"
    document = example(type_name)
    document["properties"][field.split(".")[1]] = value
    assert rejected(raw(document)).code is ReasonCode.INVALID


def test_a_whole_float_is_a_json_integer() -> None:
    document = example("marketing.form_submitted")
    document["properties"]["company_size"] = 250.0
    assert accepted(raw(document)).properties.company_size == 250  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "email", ["ada\x00@x.io", "ada\u200b@x.io", "a\u202eda@x.io", "\ufeffada@x.io",
              "ada@x.io\u2066", "ada\U000e0041@x.io"],
    ids=["nul", "zero-width", "bidi-override", "bom", "bidi-isolate", "tag"],
)  # fmt: skip
def test_control_and_format_characters_are_refused_in_identifiers(email: str) -> None:
    for field in ("email", "contact_id", "anonymous_id", "account_id"):
        document = example("sales.demo_held")
        document["identity"] = {"contact_id": "crm-1", field: email}
        rejection = rejected(raw(document))
        assert rejection.errors[0].startswith(f"identity.{field}: "), rejection


def test_decomposed_and_composed_forms_are_one_person() -> None:
    composed, decomposed = "jos\u00e9@x.io", "jose\u0301@x.io"
    identities = []
    for email in (composed, decomposed.upper()):
        document = example("sales.demo_held") | {"identity": {"email": email}}
        identity = accepted(raw(document)).identity
        assert identity is not None
        identities.append(identity.identifiers())
    assert identities[0] == identities[1] == ("email:jos\u00e9@x.io",)


def test_a_value_normalisation_lengthens_past_the_limit_is_refused() -> None:
    document = example("sales.demo_held") | {"identity": {"contact_id": "\ufb2c" * 100}}
    assert rejected(raw(document)).errors[0].startswith("identity.contact_id: longer than 256")
