"""The HTTP API never answers 500 to input: bad bodies get 400/413/415/422 with a reason, and
the KPI endpoints answer 503 when Redis is unreachable.

The publisher is an in-memory recorder (as in test_ingest_api); the Redis of the KPI tests is
an address where nothing listens, so redis-py's own ConnectionError is what the API sees.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from events import ReasonCode, Rejection, decode_touchpoint
from events.examples import VALID_EXAMPLES, example
from streams.api import create_app
from streams.api.ingest import MAX_BODY_BYTES
from streams.settings import Settings
from tests.hostile import hostile_inputs
from tests.unit.api.test_ingest_api import ALL, KEYS, RecordingPublisher

JSON = {**ALL, "Content-Type": "application/json"}
BODY_LEVEL = {
    ReasonCode.BAD_UTF8, ReasonCode.BAD_JSON, ReasonCode.DUPLICATE_KEY, ReasonCode.BAD_UNICODE,
    ReasonCode.TOO_DEEP,
}  # fmt: skip
NOWHERE = "redis://127.0.0.1:1/0"  # a port nothing listens on: connection refused


@pytest.fixture
def client() -> Iterator[TestClient]:
    # The KPI catch-up writes under this prefix; KPIs open so the filters meet no key check.
    settings = Settings(redis_prefix="test-hostile-api:", public_kpis=True)
    app = create_app(settings, publisher_factory=lambda _s: RecordingPublisher(), api_keys=KEYS)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def _post(client: TestClient, body: bytes, headers: dict[str, str] = JSON) -> tuple[int, dict]:
    response = client.post("/v1/events", content=body, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 100_000, "too_deep"),
        (b'{"event_id": ' + b"9" * 5000 + b"}", "out_of_range"),
        (b'{"event_id": 1e400}', "out_of_range"),
        (b'{"event_id": NaN}', "bad_json"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (json.dumps({**example("sales.demo_held"), "source": "\ud800"}).encode(), "bad_unicode"),
        (b'[{"note": "\\udfff"}]', "bad_unicode"),
        (b"\xff\xfe", "bad_utf8"),
    ],
    ids=["deep", "huge-int", "inf", "nan", "duplicate", "surrogate", "surrogate-in-batch", "utf8"],
)
def test_bad_bodies_are_400_with_a_reason(client: TestClient, body: bytes, code: str) -> None:
    status, answer = _post(client, body)
    assert status == 400, answer
    assert answer["reason_code"] == code and answer["detail"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(
    client: TestClient, content_type: str | None
) -> None:
    headers = dict(ALL) | ({"Content-Type": content_type} if content_type else {})
    body = json.dumps(VALID_EXAMPLES["sales.demo_held"]).encode()
    status, answer = _post(client, body, headers)
    assert status == 415 and "application/json" in answer["detail"]
    assert _post(client, body, {**ALL, "Content-Type": "application/json; charset=utf-8"})[0] == 202


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    status, _ = _post(client, b"[" + b" " * MAX_BODY_BYTES + b"]")
    assert status == 413


def test_a_far_future_event_is_422_out_of_range(client: TestClient) -> None:
    document = example("sales.demo_held") | {"occurred_at": "9999-12-31T00:00:00Z"}
    status, answer = _post(client, json.dumps(document).encode())
    assert status == 422
    assert answer["results"][0]["reason_code"] == "out_of_range"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("until=9999-12-31", 422), ("until=10000-01-01", 422), ("since=2025-02-30", 422),
        ("since=9999-12-31&until=9999-12-30", 422), ("currency=EUR%0A", 422), ("by=nope", 422),
        ("since=9999-12-31", 200), ("since=0001-01-01&until=0001-01-01", 200),
    ],
)  # fmt: skip
def test_kpi_filters_out_of_range_are_422(client: TestClient, query: str, status: int) -> None:
    response = client.get(f"/v1/kpis?{query}")
    assert response.status_code == status, response.text


@pytest.mark.parametrize("path", ["/v1/kpis", "/v1/kpis/snapshot", "/v1/kpis?until=2025-01-01"])
def test_kpis_answer_503_when_redis_is_unreachable(path: str) -> None:
    app = create_app(Settings(redis_url=NOWHERE, public_kpis=True), api_keys=KEYS)
    with TestClient(app, raise_server_exceptions=False) as http:
        response = http.get(path)
    assert response.status_code == 503, response.text
    assert response.json()["detail"].startswith("Redis: ")


async def test_hostile_corpus_never_gets_a_5xx() -> None:
    # In the test's own event loop (no TestClient thread hop per request: 4x faster).
    settings = Settings(redis_prefix="test-hostile-api:", public_kpis=True)
    app = create_app(settings, publisher_factory=lambda _s: RecordingPublisher(), api_keys=KEYS)
    statuses: Counter[int] = Counter()
    now = datetime.now(UTC)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        for index, raw in enumerate(hostile_inputs(10_000, seed=7)):
            response = await client.post("/v1/events", content=raw, headers=JSON)
            statuses[response.status_code] += 1
            assert response.status_code in {202, 400, 413, 422}, (index, raw[:200], response.text)
            outcome = decode_touchpoint(raw, now=now)
            if isinstance(outcome, Rejection) and outcome.code in BODY_LEVEL:
                assert response.status_code == 400, (index, raw[:200])
                assert response.json()["reason_code"] == outcome.code.value
            elif not isinstance(outcome, Rejection):
                assert response.status_code == 202, (index, raw[:200], response.text)
    print(f"\nHTTP fuzz: 10000 requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses[202] > 500 and statuses[400] > 500 and statuses[422] > 500
