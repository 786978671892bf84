"""The HTTP layer of Segment ingest: Segment's answers, write-key auth, dead letters, limits.

A unit test of the HTTP layer: the publisher is an in-memory recorder (the real broker and
worker are in tests/integration/test_segment_ingest.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from events import Envelope
from streams.api import create_app
from streams.api.auth import ApiClient
from streams.settings import Settings

KEY, SALES_KEY, READ_KEY = "seg-0123456789", "sales-0123456789", "read-0123456789"
KEYS = {
    KEY: ApiClient(tool="website", domains=frozenset({"marketing"})),
    SALES_KEY: ApiClient(tool="crm", domains=frozenset({"sales"})),
    READ_KEY: ApiClient(name="reader", scopes=frozenset({"read"})),
}


def basic(key: str) -> dict[str, str]:
    """How Segment libraries send a write key: the Basic user name, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class Recorder:
    """In-memory publisher with the dead-letter path (publish_raw)."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[Envelope] = []
        self.raw: list[tuple[str, bytes, str]] = []
        self.fail = fail

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def publish_batch(self, touchpoints: Sequence[Envelope]) -> list[Any]:
        if self.fail:
            raise RuntimeError("NotEnoughReplicas")
        self.published += touchpoints
        return [None] * len(touchpoints)

    async def publish_raw(self, value: bytes, topic: str, key: bytes | str | None) -> Any:
        if self.fail:
            raise RuntimeError("NotEnoughReplicas")
        self.raw.append((topic, value, str(key)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def letters(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _topic, value, _key in self.raw]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(recorder: Recorder) -> FastAPI:
    settings = Settings(topic_prefix="seg.")
    return create_app(settings, publisher_factory=lambda _s: recorder, api_keys=KEYS)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tandem") as http:
        yield http


PAGE = {
    "type": "page",
    "messageId": "ajs-page-1",
    "anonymousId": "anon-1",
    "timestamp": "2025-03-04T09:15:00.000Z",
    "properties": {"url": "https://t.example/pricing", "title": "Pricing"},
}


async def test_a_page_call_with_a_basic_write_key_is_published(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await client.post("/v1/segment/page", json=PAGE, headers=basic(KEY))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "published": 1,
        "dead_lettered": 0,
        "results": [
            {
                "index": 0,
                "message_id": "ajs-page-1",
                "event_id": "segment-ajs-page-1",
                "type": "marketing.page_viewed",
                "status": "published",
                "reason_code": None,
                "errors": [],
            }
        ],
    }
    [tp] = recorder.published
    assert (tp.type, tp.source, tp.event_id) == (
        "marketing.page_viewed",
        "website",
        "segment-ajs-page-1",
    )
    assert recorder.raw == []


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}],
)
async def test_the_normal_key_headers_work_too(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/v1/segment/page", json=PAGE, headers=headers)
    assert response.status_code == 200, response.text


async def test_analytics_js_text_plain_with_the_write_key_in_the_body(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    body = json.dumps({**PAGE, "writeKey": KEY})
    response = await client.post(
        "/v1/segment/p", content=body, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert [t.event_id for t in recorder.published] == ["segment-ajs-page-1"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (basic("not-a-key"), 401),
        ({"Authorization": "Basic !!!"}, 401),
        (basic(READ_KEY), 403),
    ],
)
async def test_without_a_publish_key_nothing_is_published(
    client: httpx.AsyncClient, recorder: Recorder, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/v1/segment/page", json=PAGE, headers=headers)
    assert response.status_code == status, response.text
    assert recorder.published == [] and recorder.raw == []


async def test_a_batch_publishes_the_mapped_and_dead_letters_the_unknown(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    batch = {
        "batch": [
            PAGE,
            {
                "type": "identify",
                "messageId": "id-1",
                "anonymousId": "anon-1",
                "userId": "u-1",
                "traits": {"email": "ada@lovelace.example", "title": "CMO"},
            },
            {"type": "track", "messageId": "tr-1", "userId": "u-1", "event": "Cart Viewed"},
            {"type": "alias", "messageId": "al-1", "userId": "u-1", "previousId": "anon-1"},
        ],
        "sentAt": "2025-03-04T09:15:01.000Z",
    }
    response = await client.post("/v1/segment/batch", json=batch, headers=basic(KEY))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["published"], body["dead_lettered"]) == (True, 2, 2)
    assert [r["status"] for r in body["results"]] == [
        "published",
        "published",
        "dead_lettered",
        "dead_lettered",
    ]
    assert body["results"][2]["reason_code"] == "unmapped_segment_event"
    assert [t.type for t in recorder.published] == [
        "marketing.page_viewed",
        "marketing.identified",
    ]
    assert {topic for topic, _v, _k in recorder.raw} == {"seg.touchpoints.deadletter"}
    letters = recorder.letters()
    assert [letter["reason_code"] for letter in letters] == ["unmapped_segment_event"] * 2
    assert letters[0]["event_id"] == "segment-tr-1"
    assert "'Cart Viewed' has no Tandem type" in letters[0]["reason"]
    assert json.loads(letters[0]["original_text"])["event"] == "Cart Viewed"
    assert letters[0]["origin"] is None
    assert [key for _t, _v, key in recorder.raw] == [letter["dead_letter_id"] for letter in letters]


async def test_an_invalid_mapped_call_is_dead_lettered_not_answered_with_an_error(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    call = {**PAGE, "properties": {}, "context": {}, "writeKey": KEY}
    response = await client.post("/v1/segment/page", json=call)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "dead_lettered" and result["reason_code"] == "invalid"
    assert result["errors"] == ["properties.url: Field required"]
    [letter] = recorder.letters()
    assert KEY not in json.dumps(letter)  # the write key is never stored


async def test_a_retry_dead_letters_under_the_same_id(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    call = {"messageId": "tr-2", "userId": "u-1", "event": "Cart Viewed"}
    for sent_at in ("2025-03-04T09:15:01Z", "2025-03-04T09:15:09Z"):
        await client.post("/v1/segment/track", json=call | {"sentAt": sent_at}, headers=basic(KEY))
    ids = [letter["event_id"] for letter in recorder.letters()]
    assert ids == ["segment-tr-2", "segment-tr-2"]


async def test_a_key_outside_the_domain_of_a_passed_through_type_is_403(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    call = {
        "messageId": "d-1",
        "userId": "u-1",
        "event": "Demo",
        "properties": {"tandem_type": "sales.demo_held"},
    }
    response = await client.post("/v1/segment/track", json=call, headers=basic(KEY))
    assert response.status_code == 403, response.text
    assert recorder.published == [] and recorder.raw == []
    allowed = await client.post("/v1/segment/track", json=call, headers=basic(SALES_KEY))
    assert allowed.status_code == 200 and [t.type for t in recorder.published] == [
        "sales.demo_held"
    ]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{nope", "application/json", 400),
        (b"\xff", "application/json", 400),
        (b'{"batch": 1}', "application/json", 400),
        (b"{}", "application/xml", 415),
    ],
)
async def test_bodies_that_are_no_segment_request(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int
) -> None:
    headers = {**basic(KEY), "Content-Type": content_type}
    response = await client.post("/v1/segment/batch", content=content, headers=headers)
    assert response.status_code == status, response.text


async def test_too_many_calls_is_413(client: httpx.AsyncClient) -> None:
    batch = {"batch": [PAGE] * 501}
    response = await client.post("/v1/segment/batch", json=batch, headers=basic(KEY))
    assert response.status_code == 413


async def test_kafka_down_is_503_and_a_retry_is_safe(app: FastAPI, recorder: Recorder) -> None:
    recorder.fail = True
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tandem") as http:
        response = await http.post("/v1/segment/page", json=PAGE, headers=basic(KEY))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


async def test_the_endpoints_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for name in ("track", "identify", "page", "batch"):
        assert f"/v1/segment/{name}" in paths
