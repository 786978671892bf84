"""The HTTP layer of ingest: auth, domains, all-or-nothing batches, limits, OpenAPI.

A unit test of the HTTP layer: the publisher is an in-memory recorder (the real Kafka path is
covered by the integration tests).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, FastAPI

from events import MAX_MESSAGE_BYTES, Envelope
from events.examples import INVALID_EXAMPLES, VALID_EXAMPLES, example
from streams.api import create_app
from streams.api.auth import ApiClient
from streams.api.ingest import MAX_BATCH, MAX_BODY_BYTES
from streams.settings import Settings

KEYS = {
    "mk-0123456789": ApiClient(tool="hubspot", domains=frozenset({"marketing"})),
    "sk-0123456789": ApiClient(tool="salesforce", domains=frozenset({"sales"})),
    "all-0123456789": ApiClient(tool="segment", domains=frozenset({"marketing", "sales"})),
}
ALL = {"Authorization": "Bearer all-0123456789"}
MARKETING_ONLY = {"X-API-Key": "mk-0123456789"}


class RecordingPublisher:
    """In-memory publisher: records every published batch."""

    def __init__(self, fail: bool = False, fail_start: bool = False) -> None:
        self.batches: list[list[Envelope]] = []
        self.fail = fail
        self.fail_start = fail_start
        self.started = self.stopped = 0

    async def start(self) -> None:
        self.started += 1
        if self.fail_start:
            raise ConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]")

    async def stop(self) -> None:
        self.stopped += 1

    async def publish_batch(self, touchpoints: Sequence[Envelope]) -> list[Any]:
        if self.fail:
            raise RuntimeError("NotEnoughReplicas")
        self.batches.append(list(touchpoints))
        return [None] * len(touchpoints)

    @property
    def published(self) -> list[Envelope]:
        return [t for batch in self.batches for t in batch]


@pytest.fixture
def recorder() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def app(recorder: RecordingPublisher) -> FastAPI:
    return create_app(Settings(), publisher_factory=lambda _s: recorder, api_keys=KEYS)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app, with the app's lifespan entered and left (like uvicorn)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tandem") as http:
            yield http


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # no lifespan: the publisher starts lazily
    async with httpx.AsyncClient(transport=transport, base_url="http://tandem") as http:
        yield http


async def test_one_event_is_accepted_and_published(
    client: httpx.AsyncClient, recorder: RecordingPublisher
) -> None:
    response = await client.post("/v1/events", json=VALID_EXAMPLES["sales.deal_won"], headers=ALL)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {
        "published": True,
        "accepted": 1,
        "rejected": 0,
        "results": [
            {
                "index": 0,
                "event_id": "example-sales-deal-won-1",
                "type": "sales.deal_won",
                "status": "accepted",
                "reason_code": None,
                "errors": [],
            }
        ],
    }
    assert [t.event_id for t in recorder.published] == ["example-sales-deal-won-1"]


async def test_a_batch_of_every_type_is_published_in_order(
    client: httpx.AsyncClient, recorder: RecordingPublisher
) -> None:
    batch = list(VALID_EXAMPLES.values())
    response = await client.post("/v1/events", json=batch, headers=ALL)
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(batch)))
    assert {r["status"] for r in results} == {"accepted"}
    assert len(recorder.batches) == 1
    assert [t.event_id for t in recorder.published] == [d["event_id"] for d in batch]


async def test_one_invalid_event_means_422_and_nothing_published(
    client: httpx.AsyncClient, recorder: RecordingPublisher
) -> None:
    broken = next(e for e in INVALID_EXAMPLES if e.type == "sales.deal_won")
    batch = [VALID_EXAMPLES["sales.demo_held"], broken.document, VALID_EXAMPLES["sales.churned"]]
    response = await client.post("/v1/events", json=batch, headers=ALL)
    assert response.status_code == 422
    body = response.json()
    assert body["published"] is False
    assert (body["accepted"], body["rejected"]) == (2, 1)
    statuses = [(r["index"], r["status"], r["reason_code"]) for r in body["results"]]
    assert statuses == [(0, "accepted", None), (1, "rejected", "invalid"), (2, "accepted", None)]
    assert body["results"][1]["errors"] == [
        broken.error + ": Input should be less than or equal to 1"
    ]
    assert body["results"][1]["event_id"] == broken.document["event_id"]
    assert recorder.batches == []


@pytest.mark.parametrize("invalid", INVALID_EXAMPLES, ids=lambda e: f"{e.type}: {e.description}")
async def test_every_invalid_example_is_refused_with_its_reason_code(
    client: httpx.AsyncClient, recorder: RecordingPublisher, invalid: Any
) -> None:
    response = await client.post("/v1/events", json=[invalid.document], headers=ALL)
    if invalid.domain is not None:  # wrong topic cannot happen over HTTP: routing is by type
        assert response.status_code == 202
        return
    assert response.status_code == 422, response.text
    (result,) = response.json()["results"]
    assert result["reason_code"] == invalid.code.value
    assert any(invalid.error in line for line in result["errors"])
    assert recorder.batches == []


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ([1], "not_an_object"),
        ("just a string", "not_an_object"),
        ({"type": "marketing.page_visited"}, "unknown_type"),
        ({**VALID_EXAMPLES["sales.renewed"], "schema_version": 2}, "unsupported_version"),
    ],
)
async def test_reason_codes_per_event(client: httpx.AsyncClient, document: Any, code: str) -> None:
    response = await client.post("/v1/events", json=document, headers=ALL)
    assert response.status_code == 422
    assert response.json()["results"][0]["reason_code"] == code


async def test_an_event_over_256_kib_is_too_large(client: httpx.AsyncClient) -> None:
    document = example("marketing.page_viewed")
    document["properties"]["title"] = "x" * MAX_MESSAGE_BYTES
    response = await client.post("/v1/events", json=[document], headers=ALL)
    assert response.status_code == 422
    (result,) = response.json()["results"]
    assert result["reason_code"] == "too_large"
    assert result["event_id"] == document["event_id"]


async def test_email_is_normalised_in_what_is_published(
    client: httpx.AsyncClient, recorder: RecordingPublisher
) -> None:
    document = example("marketing.email_opened")
    document["identity"]["email"] = "  Ada@Lovelace.EXAMPLE "
    assert (await client.post("/v1/events", json=document, headers=ALL)).status_code == 202
    identity = recorder.published[0].identity
    assert identity is not None and identity.email == "ada@lovelace.example"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}, {"Authorization": "Basic x"}],
    ids=["none", "unknown bearer", "unknown x-api-key", "not bearer"],
)
async def test_no_or_unknown_key_is_401(
    client: httpx.AsyncClient, recorder: RecordingPublisher, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/events", json=VALID_EXAMPLES["sales.deal_won"], headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]
    assert recorder.batches == []


async def test_both_header_styles_work(client: httpx.AsyncClient) -> None:
    event = VALID_EXAMPLES["marketing.page_viewed"]
    for headers in (MARKETING_ONLY, {"Authorization": "Bearer mk-0123456789"}):
        assert (await client.post("/v1/events", json=event, headers=headers)).status_code == 202


async def test_a_marketing_key_sending_sales_events_is_403_and_nothing_published(
    client: httpx.AsyncClient, recorder: RecordingPublisher
) -> None:
    batch = [VALID_EXAMPLES["marketing.page_viewed"], VALID_EXAMPLES["sales.deal_won"]]
    response = await client.post("/v1/events", json=batch, headers=MARKETING_ONLY)
    assert response.status_code == 403
    body = response.json()
    assert body["forbidden"] == [1]
    assert "hubspot" in body["detail"] and "marketing" in body["detail"]
    assert recorder.batches == []
    sales = {"X-API-Key": "sk-0123456789"}
    response = await client.post("/v1/events", json=VALID_EXAMPLES["sales.deal_won"], headers=sales)
    assert response.status_code == 202


async def test_batch_limits(client: httpx.AsyncClient, recorder: RecordingPublisher) -> None:
    event = VALID_EXAMPLES["marketing.page_viewed"]
    assert (
        await client.post("/v1/events", json=[event] * MAX_BATCH, headers=ALL)
    ).status_code == 202
    response = await client.post("/v1/events", json=[event] * (MAX_BATCH + 1), headers=ALL)
    assert response.status_code == 413
    assert str(MAX_BATCH) in response.json()["detail"]
    assert (await client.post("/v1/events", json=[], headers=ALL)).status_code == 422
    assert len(recorder.batches) == 1


async def test_body_size_limit(client: httpx.AsyncClient) -> None:
    body = b"[" + b" " * MAX_BODY_BYTES + b"]"
    response = await client.post(
        "/v1/events", content=body, headers={**ALL, "Content-Type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "code"), [(b'{"event_id": ', "bad_json"), (b'{"a": "\xff"}', "bad_utf8")]
)
async def test_a_body_that_is_not_json_is_400(
    client: httpx.AsyncClient, body: bytes, code: str
) -> None:
    response = await client.post(
        "/v1/events", content=body, headers={**ALL, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["reason_code"] == code


async def test_kafka_trouble_is_503_with_retry_after() -> None:
    for publisher in (RecordingPublisher(fail=True), RecordingPublisher(fail_start=True)):

        def factory(_settings: Settings, chosen: RecordingPublisher = publisher) -> Any:
            return chosen

        app = create_app(Settings(), publisher_factory=factory, api_keys=KEYS)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            event = VALID_EXAMPLES["sales.deal_won"]
            response = await http.post("/v1/events", json=event, headers=ALL)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "retry" in response.json()["detail"]


async def test_the_publisher_starts_lazily_once_and_retries_after_a_failed_start() -> None:
    publisher = RecordingPublisher(fail_start=True)
    app = create_app(Settings(), publisher_factory=lambda _s: publisher, api_keys=KEYS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        event = VALID_EXAMPLES["sales.deal_won"]
        assert (await http.post("/v1/events", json=event, headers=ALL)).status_code == 503
        publisher.fail_start = False
        for _ in range(3):
            assert (await http.post("/v1/events", json=event, headers=ALL)).status_code == 202
    assert publisher.started == 2
    assert len(publisher.batches) == 3


async def test_lifespan_stops_the_publisher_and_enters_extra_lifespans() -> None:
    publisher = RecordingPublisher()
    events: list[str] = []

    @asynccontextmanager
    async def extra(app: FastAPI) -> AsyncIterator[None]:
        events.append("up")
        yield
        events.append("down")

    app = create_app(
        Settings(), publisher_factory=lambda _s: publisher, api_keys=KEYS, lifespans=[extra]
    )
    async with serving(app) as http:
        assert events == ["up"]
        response = await http.post("/v1/events", json=VALID_EXAMPLES["sales.deal_won"], headers=ALL)
        assert response.status_code == 202
        assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert publisher.stopped == 1
    assert events == ["up", "down"]


async def test_create_app_includes_the_routers_it_is_given() -> None:
    # A prefix no real router uses (/v1/journeys is served by streams.api.journeys now).
    extra = APIRouter(prefix="/v1/example", tags=["example"])

    @extra.get("/{customer_id}")
    async def journey(customer_id: str) -> dict[str, str]:
        return {"customer_id": customer_id}

    from streams.api import ROUTERS

    app = create_app(Settings(), api_keys=KEYS, routers=[*ROUTERS, extra])
    async with serving(app) as http:
        assert (await http.get("/v1/example/c-1")).json() == {"customer_id": "c-1"}
        assert (await http.post("/v1/events", json=[], headers=ALL)).status_code == 422


async def test_openapi_documents_the_endpoint() -> None:
    app = create_app(Settings(), api_keys=KEYS)
    async with serving(app) as http:
        spec = (await http.get("/openapi.json")).json()
    assert spec["info"]["title"] == "Tandem API"
    assert "all-or-nothing" in spec["info"]["description"]
    post = spec["paths"]["/v1/events"]["post"]
    assert post["summary"] and "nothing" in post["description"]
    assert set(post["responses"]) >= {"202", "400", "401", "403", "413", "422", "503"}
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == MAX_BATCH
    schemas = spec["components"]["schemas"]
    assert "Touchpoint" in schemas and "DealWon" in schemas and "IngestResponse" in schemas
    refs = json.dumps(spec)
    for ref in set(part.split('"')[0] for part in refs.split('"$ref": "')[1:]):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    security = spec["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(security)


async def test_the_contract_is_served(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/schemas")).json()
    assert {"touchpoint", "dead_letter"} <= {d["name"] for d in listed}
    schema = (await client.get("/v1/schemas/touchpoint.sales.deal_won")).json()
    assert schema["$id"] == "urn:tandem:schema:touchpoint.sales.deal_won"
    assert (await client.get("/v1/schemas/nope")).status_code == 404
