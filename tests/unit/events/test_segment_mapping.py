"""Segment calls onto touchpoints (`events.segment`): every row of the mapping table, the
identities, deterministic ids, and the precise reason of what cannot be mapped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from events import ReasonCode, Rejection, Touchpoint
from events.attribution import attributed_campaign, attributed_channel
from events.segment import (
    TRACK_EVENTS,
    campaign_utm,
    decode_segment,
    envelope_context,
    event_id_for,
    map_call,
    normalised_event,
    original_bytes,
    touchpoint_document,
)

NOW = datetime(2025, 3, 4, 9, 20, tzinfo=UTC)
AT = "2025-03-04T09:15:00.250Z"


def call(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": "ajs-1", "anonymousId": "anon-1", "timestamp": AT, **fields}


def mapped(kind: str, **fields: Any) -> Touchpoint:
    outcome = map_call(kind, call(kind, **fields), source="website", now=NOW).outcome
    assert not isinstance(outcome, Rejection), outcome
    return outcome


def rejected(kind: str, **fields: Any) -> Rejection:
    outcome = map_call(kind, call(kind, **fields), source="website", now=NOW).outcome
    assert isinstance(outcome, Rejection), outcome
    return outcome


def test_page_is_a_page_view_from_properties_or_context_page() -> None:
    tp = mapped(
        "page",
        name="Pricing",
        properties={"url": "https://t.example/pricing", "path": "/pricing", "search": "?a=1"},
        context={"page": {"referrer": "https://www.google.com/"}},
    )
    assert tp.type == "marketing.page_viewed"
    assert tp.properties.model_dump(exclude_none=True) == {
        "url": "https://t.example/pricing",
        "title": "Pricing",
        "referrer": "https://www.google.com/",
    }
    only_context = mapped("page", context={"page": {"url": "https://t.example/", "title": "Home"}})
    assert only_context.properties.model_dump(exclude_none=True) == {
        "url": "https://t.example/",
        "title": "Home",
    }


def test_identify_links_every_identifier_and_carries_traits_as_firmographics() -> None:
    tp = mapped(
        "identify",
        userId=42,
        traits={
            "email": " Ada@Lovelace.example ",
            "title": "VP Marketing",
            "company": {"name": "Lovelace", "employee_count": 250, "industry": "software"},
            "plan": "pro",
        },
    )
    assert tp.type == "marketing.identified"
    assert tp.identity.identifiers() == (
        "contact:42",
        "email:ada@lovelace.example",
        "anon:anon-1",
    )
    assert tp.properties.model_dump(exclude_defaults=True) == {
        "job_title": "VP Marketing",
        "company": "Lovelace",
        "company_size": 250,
        "industry": "software",
    }


def test_track_email_comes_from_context_traits() -> None:
    tp = mapped(
        "track", event="Webinar Attended", context={"traits": {"email": "ben@acme.example"}}
    )
    assert tp.identity.email == "ben@acme.example"
    assert tp.identity.anonymous_id == "anon-1"


TABLE: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("Form Submitted", {"form_id": "demo-request", "title": "CMO", "company": "Acme"},
     "marketing.form_submitted", {"form_id": "demo-request", "job_title": "CMO",
                                  "company": "Acme"}),
    ("Signed Up", {"plan": "trial"}, "marketing.form_submitted", {"form_id": "signed-up"}),
    ("Form Viewed", {"form_id": "newsletter"}, "marketing.form_viewed",
     {"form_id": "newsletter"}),
    ("Email Opened", {"email_id": "nurture-3", "subject": "Hi"}, "marketing.email_opened",
     {"email_id": "nurture-3"}),
    ("Email Link Clicked", {"email_id": "nurture-3", "link_url": "https://t.example/roi"},
     "marketing.email_clicked", {"email_id": "nurture-3", "url": "https://t.example/roi"}),
    ("Email Clicked", {"url": "https://t.example/roi"}, "marketing.email_clicked",
     {"url": "https://t.example/roi"}),
    ("Content Downloaded", {"content_id": "roi-guide"}, "marketing.content_downloaded",
     {"content_id": "roi-guide"}),
    ("Webinar Attended", {"webinar_id": "q2", "minutes": 42}, "marketing.webinar_attended",
     {"webinar_id": "q2", "minutes": 42}),
    ("Ad Clicked", {"ad_id": "ad-7", "network": "google"}, "marketing.ad_clicked",
     {"ad_id": "ad-7"}),
    ("Event Attended", {"event_name": "Summit"}, "marketing.event_attended",
     {"event_name": "Summit"}),
    ("Unsubscribed", {"list_id": "news", "reason": "too many"}, "marketing.unsubscribed",
     {"list_id": "news", "reason": "too many"}),
]  # fmt: skip


@pytest.mark.parametrize(("event", "properties", "type_name", "expected"), TABLE)
def test_every_row_of_the_track_table(
    event: str, properties: dict[str, Any], type_name: str, expected: dict[str, Any]
) -> None:
    tp = mapped("track", event=event, properties=properties)
    assert tp.type == type_name
    assert tp.properties.model_dump(exclude_defaults=True) == expected
    assert tp.event_id == "segment-ajs-1"
    assert tp.source == "website"
    assert tp.occurred_at == datetime(2025, 3, 4, 9, 15, 0, 250000, tzinfo=UTC)


def test_the_table_is_tested_whole() -> None:
    assert {normalised_event(row[0]) for row in TABLE} == set(TRACK_EVENTS)


def test_event_names_match_whatever_their_case_and_separators() -> None:
    assert mapped("track", event="webinar_attended").type == "marketing.webinar_attended"
    assert mapped("track", event=" EMAIL-opened ").type == "marketing.email_opened"


def test_a_tandem_type_passes_through_by_name_or_tandem_type() -> None:
    by_name = mapped("track", event="marketing.social_engaged", properties={"network": "x"})
    assert by_name.type == "marketing.social_engaged"
    assert by_name.properties.model_dump(exclude_none=True) == {"network": "x"}
    by_property = mapped(
        "track",
        event="Demo Done",
        userId="crm-7",
        properties={"tandem_type": "sales.demo_held", "note": "went well"},
    )
    assert by_property.type == "sales.demo_held"
    assert by_property.properties.model_dump(exclude_none=True) == {"note": "went well"}


def test_a_passed_through_type_is_validated_strictly() -> None:
    rejection = rejected("track", event="marketing.social_engaged", properties={"likes": 3})
    assert rejection.code == ReasonCode.INVALID
    assert "properties.likes: Extra inputs are not permitted" in rejection.errors
    unknown = rejected("track", event="X", properties={"tandem_type": "marketing.nope"})
    assert unknown.code == ReasonCode.UNKNOWN_TYPE


def test_an_unknown_event_is_unmapped_with_its_name() -> None:
    rejection = rejected("track", event="Cart Viewed")
    assert rejection.code == ReasonCode.UNMAPPED_SEGMENT_EVENT
    assert "'Cart Viewed' has no Tandem type" in rejection.message
    assert rejection.event_id == "segment-ajs-1"
    assert rejected("track").code == ReasonCode.UNMAPPED_SEGMENT_EVENT  # no event name


@pytest.mark.parametrize("kind", ["screen", "group", "alias"])
def test_other_calls_are_unmapped(kind: str) -> None:
    rejection = rejected(kind, userId="u1")
    assert rejection.code == ReasonCode.UNMAPPED_SEGMENT_EVENT
    assert f"`{kind}` calls are not mapped" in rejection.message


def test_a_mapped_event_missing_what_its_type_requires_is_invalid() -> None:
    rejection = rejected("track", event="Content Downloaded")
    assert rejection.code == ReasonCode.INVALID
    assert rejection.errors == ["properties.content_id: Field required"]
    no_person = map_call(
        "page", {"messageId": "m", "properties": {"url": "u"}}, source="w", now=NOW
    )
    assert isinstance(no_person.outcome, Rejection)
    assert "identity needs at least one of" in no_person.outcome.message


def test_message_id_gives_the_same_event_id_on_every_retry() -> None:
    first = call("page", properties={"url": "https://t.example/"}, sentAt="2025-03-04T09:15:01Z")
    retry = {**first, "sentAt": "2025-03-04T09:16:30Z", "writeKey": "k"}
    assert event_id_for(first) == event_id_for(retry) == "segment-ajs-1"
    anonymous = {k: v for k, v in first.items() if k != "messageId"}
    derived = event_id_for(anonymous)
    assert derived.startswith("segment-sha256-")
    assert derived == event_id_for({**anonymous, "sentAt": "2030-01-01T00:00:00Z"})
    assert derived != event_id_for({**anonymous, "timestamp": "2025-03-04T09:15:02Z"})
    assert len(event_id_for({**first, "messageId": "x" * 500})) <= 128


def test_event_time_falls_back_to_original_timestamp_then_receipt() -> None:
    base = {"anonymousId": "a", "properties": {"url": "u"}}
    original = {**base, "originalTimestamp": "2025-03-04T09:00:00Z"}
    assert touchpoint_document(original, kind="page", source="w", received_at=NOW)[
        "occurred_at"
    ] == ("2025-03-04T09:00:00Z")
    received = touchpoint_document(base, kind="page", source="w", received_at=NOW)
    assert not isinstance(received, Rejection)
    assert received["occurred_at"] == NOW.isoformat()


def test_campaign_context_maps_onto_the_utm_fields() -> None:
    context = {
        "campaign": {
            "source": "google",
            "medium": "cpc",
            "name": "q2-launch",
            "term": "attribution",
            "content": "banner-a",
            "extra": "ignored",
        }
    }
    assert campaign_utm(context) == {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "q2-launch",
        "utm_term": "attribution",
        "utm_content": "banner-a",
    }
    assert campaign_utm({"campaign": {"source": 3}}) == {}
    expected = campaign_utm(context)
    assert envelope_context(context) == expected
    page = mapped("page", properties={"url": "u"}, context=context)
    assert attributed_campaign(page.context) == "q2-launch"
    assert attributed_channel(page.context) == "paid_search"  # utm_medium cpc
    assert (
        mapped("page", properties={"url": "u"}, context=context).context.model_dump(
            exclude_none=True
        )
        == expected
    )


def test_a_batch_shares_its_context_and_maps_each_item() -> None:
    body = {
        "batch": [
            {"type": "page", "messageId": "1", "anonymousId": "a", "properties": {"url": "u"}},
            {"type": "track", "messageId": "2", "anonymousId": "a", "event": "Nope"},
        ],
        "context": {"traits": {"email": "a@b.example"}},
        "writeKey": "secret",
    }
    outcomes = decode_segment(json.dumps(body).encode(), source="website", now=NOW)
    assert not isinstance(outcomes, Rejection)
    assert [o.message_id for o in outcomes] == ["1", "2"]
    page = outcomes[0].outcome
    assert not isinstance(page, Rejection) and page.identity.email == "a@b.example"
    assert isinstance(outcomes[1].outcome, Rejection)
    assert json.loads(outcomes[1].original)["event"] == "Nope"


def test_the_original_bytes_never_hold_a_write_key() -> None:
    assert b"secret" not in original_bytes({"type": "page", "writeKey": "secret"})


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff", ReasonCode.BAD_UTF8),
        (b"{nope", ReasonCode.BAD_JSON),
        (b"[1]", ReasonCode.NOT_AN_OBJECT),
        (b'{"batch": 3}', ReasonCode.NOT_AN_OBJECT),
    ],
)
def test_a_body_that_is_no_segment_request_is_one_rejection(raw: bytes, code: ReasonCode) -> None:
    decoded = decode_segment(raw, source="w", now=NOW)
    assert isinstance(decoded, Rejection) and decoded.code == code


@pytest.mark.parametrize(
    "value",
    [None, 3, [], "text", {"type": []}, {"event": {"a": 1}}, {"properties": [1]}],
)
def test_odd_shapes_never_raise(value: Any) -> None:
    body = value if not isinstance(value, dict) else {"type": "track", **value}
    for kind in (None, "track", "identify", "page"):
        decoded = decode_segment(json.dumps(body).encode(), kind, source="w", now=NOW)
        assert isinstance(decoded, Rejection | list)
