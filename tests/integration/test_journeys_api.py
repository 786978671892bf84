"""``GET /v1/journeys`` and ``GET /v1/journeys/{reference}`` against the real Redis.

Snapshots are written with `JourneyProjection.write_snapshot` under a key prefix of their own,
so these tests need Redis but no broker and no worker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient

from streams.api import create_app
from streams.api.auth import ApiClient, new_key
from streams.journey.identity import LEDGER_CUSTOMER
from streams.projection import JourneyProjection
from streams.settings import Settings

pytestmark = pytest.mark.integration

READ_KEY, PUBLISH_KEY = new_key(), new_key()
KEYS = {
    READ_KEY: ApiClient(name="sales-tool", scopes=frozenset({"read"})),
    PUBLISH_KEY: ApiClient(tool="hubspot", domains=frozenset({"marketing"})),
}
READ = {"X-API-Key": READ_KEY}


def snapshot(customer_id: str, stage: str, last_touch_at: str, **extra: Any) -> dict[str, Any]:
    """A stored snapshot with what the router reads (the rest of the document is opaque)."""
    return {
        "customer_id": customer_id,
        "version": 1,
        "identities": extra.pop("identities", [f"email:{customer_id}@example.com"]),
        "stage": stage,
        "stage_history": [
            {"stage": stage, "entered_at": last_touch_at, "cause_event_id": "e1", "reason": "r"}
        ],
        "scores": {
            "engagement": {"score": extra.pop("engagement", 10.0), "breakdown": []},
            "fit": {"score": 50.0, "persona": "marketing-leader", "breakdown": []},
        },
        "firmographics": {"company": "Acme"},
        "open_objections": [],
        "recent_touchpoints": [
            {
                "event_id": "e1",
                "type": "marketing.page_viewed",
                "occurred_at": last_touch_at,
                "source": "website",
                "channel": "organic",
            }
        ],
        "counts": {"touchpoints": 1, "retained": 1, "duplicates": 0},
        "last_touch_at": last_touch_at,
        **extra,
    }


@pytest.fixture(scope="module")
def api_settings() -> Settings:
    return Settings(redis_prefix=f"tandem-test-api-{uuid.uuid4().hex[:8]}:")


@pytest_asyncio.fixture(scope="module")
async def stored(api_settings: Settings) -> AsyncIterator[JourneyProjection]:
    """Four journeys, the spend ledger, and one journey merged into another."""
    projection = JourneyProjection.from_url(api_settings.redis_url, api_settings.redis_prefix)
    rows = [
        snapshot("cus_a", "mql", "2025-01-03T10:00:00Z", engagement=55.5),
        snapshot("cus_b", "lead", "2025-01-05T10:00:00Z"),
        snapshot("cus_c", "mql", "2025-01-01T10:00:00Z"),
        snapshot(
            "cus_d",
            "customer",
            "2025-01-04T10:00:00Z",
            identities=["contact:crm-d", "email:d@example.com"],
        ),
        snapshot(LEDGER_CUSTOMER, "visitor", "2025-01-06T10:00:00Z", identities=[]),
    ]
    for row in rows:
        await projection.write_snapshot(row["customer_id"], 1, row, row["stage"])
        await projection.link_identifiers(row["customer_id"], row["identities"])
    # cus_old was absorbed by cus_d; its identifier still points at the old id.
    await projection.write_snapshot(
        "cus_old", 1, snapshot("cus_old", "lead", "2024-12-01T00:00:00Z"), "lead"
    )
    await projection.link_identifiers("cus_old", ["anon:old-cookie"])
    await projection.mark_moved("cus_old", "cus_d", 2)
    yield projection
    keys = [k async for k in projection.redis.scan_iter(f"{api_settings.redis_prefix}*")]
    if keys:
        await projection.redis.delete(*keys)
    await projection.close()


@pytest.fixture(scope="module")
def client(api_settings: Settings, stored: JourneyProjection) -> Iterator[TestClient]:
    # `with`: the app's lifespan opens (and closes) the shared Redis pool.
    with TestClient(create_app(api_settings, api_keys=KEYS), headers=READ) as http:
        yield http


def test_list_is_newest_touch_first_without_the_ledger(client: TestClient) -> None:
    response = client.get("/v1/journeys")
    assert response.status_code == 200
    assert [r["customer_id"] for r in response.json()] == ["cus_b", "cus_d", "cus_a", "cus_c"]
    assert response.headers["X-Total-Count"] == "4"
    row = next(r for r in response.json() if r["customer_id"] == "cus_a")
    assert row == {
        "customer_id": "cus_a", "identities": ["email:cus_a@example.com"], "stage": "mql",
        "stage_entered_at": "2025-01-03T10:00:00Z", "engagement": 55.5, "fit": 50.0,
        "persona": "marketing-leader", "company": "Acme", "last_touch_at": "2025-01-03T10:00:00Z",
        "last_touch_type": "marketing.page_viewed", "last_touch_channel": "organic",
        "touchpoints": 1, "open_objections": 0,
    }  # fmt: skip


def test_list_filters_by_stage_and_limits(client: TestClient) -> None:
    mqls = client.get("/v1/journeys", params={"stage": "mql", "limit": 1})
    assert [r["customer_id"] for r in mqls.json()] == ["cus_a"]
    assert mqls.headers["X-Total-Count"] == "2"
    several = client.get("/v1/journeys", params=[("stage", "lead"), ("stage", "customer")])
    assert {r["customer_id"] for r in several.json()} == {"cus_b", "cus_d"}


@pytest.mark.parametrize(
    "params",
    [{"stage": "hot"}, {"limit": 0}, {"limit": 501}],
    ids=["unknown stage", "limit 0", "limit too big"],
)
def test_list_rejects_bad_parameters(client: TestClient, params: dict[str, Any]) -> None:
    assert client.get("/v1/journeys", params=params).status_code == 422


@pytest.mark.parametrize(
    "reference", ["cus_d", "contact:crm-d", "crm-d", "d@example.com", "D@Example.com "]
)
def test_one_journey_by_any_reference(client: TestClient, reference: str) -> None:
    response = client.get(f"/v1/journeys/{reference}")
    assert response.status_code == 200
    assert response.json()["customer_id"] == "cus_d"
    assert response.headers["X-Customer-Id"] == "cus_d"


def test_a_moved_journey_is_followed(client: TestClient) -> None:
    for reference in ("cus_old", "old-cookie", "anon:old-cookie"):
        response = client.get(f"/v1/journeys/{reference}")
        assert response.status_code == 200, reference
        assert response.json()["customer_id"] == "cus_d"


def test_unknown_reference_is_a_clear_404(client: TestClient) -> None:
    response = client.get("/v1/journeys/nobody@example.com")
    assert response.status_code == 404
    assert "no journey for 'nobody@example.com'" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/journeys", "/v1/journeys/cus_d", "/v1/journeys/crm-d"])
def test_reading_people_needs_a_key_with_the_read_scope(client: TestClient, path: str) -> None:
    assert client.get(path, headers={"X-API-Key": ""}).status_code == 401
    assert client.get(path, headers={"X-API-Key": "tdm_unknown"}).status_code == 401
    refused = client.get(path, headers={"X-API-Key": PUBLISH_KEY})
    assert refused.status_code == 403 and "`read` scope" in refused.json()["detail"]
    assert client.get(path, headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 200
    assert client.get(path).status_code == 200  # the client's default header: the read key
    # A read key does not publish.
    assert client.post("/v1/events", json=[]).status_code == 403


def test_without_the_lifespan_each_request_has_its_own_connection(
    api_settings: Settings, stored: JourneyProjection
) -> None:
    http = TestClient(create_app(api_settings, api_keys=KEYS), headers=READ)  # no lifespan
    assert http.get("/v1/journeys/cus_a").json()["customer_id"] == "cus_a"
    assert len(http.get("/v1/journeys").json()) == 4


def test_redis_down_is_a_503() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", redis_prefix="nothing:")
    with TestClient(create_app(settings, api_keys=KEYS), headers=READ) as http:
        assert http.get("/v1/journeys").status_code == 503
        assert http.get("/v1/journeys/cus_a").status_code == 503


def test_the_dashboard_is_served(client: TestClient) -> None:
    for path in ("/", "/dashboard"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert 'data-testid="funnel"' in response.text
        assert "<script src=" not in response.text and "https://" not in response.text  # offline
