"""The API's ``/readyz`` and ``/metrics`` against the real Kafka and Redis, and against none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient

from streams.api import create_app
from streams.projection import JourneyProjection
from streams.settings import Settings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def own(settings: Settings) -> AsyncIterator[Settings]:
    """The session's settings with Redis keys of this test's own."""
    mine = settings.model_copy(
        update={"redis_prefix": f"{settings.redis_prefix}ops{uuid.uuid4().hex[:6]}:"}
    )
    yield mine
    projection = JourneyProjection.from_url(mine.redis_url, mine.redis_prefix)
    keys = [k async for k in projection.redis.scan_iter(f"{mine.redis_prefix}*")]
    if keys:
        await projection.redis.delete(*keys)
    await projection.close()


def test_readyz_is_503_naming_what_does_not_answer(settings: Settings) -> None:
    nowhere = settings.model_copy(
        update={"kafka_bootstrap": "127.0.0.1:1", "redis_url": "redis://127.0.0.1:1/0"}
    )
    with TestClient(create_app(nowhere, api_keys={})) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["kafka"].startswith("unavailable") and body["redis"].startswith("unavailable")
        assert client.get("/healthz").status_code == 200  # liveness does not look at them
        text = client.get("/metrics").text
    assert 'tandem_dependency_up{dependency="kafka"} 0.0' in text
    assert 'tandem_dependency_up{dependency="redis"} 0.0' in text
    assert 'tandem_kafka_errors_total{operation="readyz"} 1.0' in text


def test_readyz_is_503_while_only_one_answers(settings: Settings) -> None:
    no_redis = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(no_redis, api_keys={})) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["kafka"] == "ok" and ready.json()["redis"].startswith("unavailable")


async def test_readyz_is_200_and_metrics_count_requests_and_journeys(own: Settings) -> None:
    projection = JourneyProjection.from_url(own.redis_url, own.redis_prefix)
    for customer_id in ("cus_1", "cus_2", "cus_3"):
        await projection.write_snapshot(customer_id, 1, {"customer_id": customer_id}, "lead")
    await projection.close()
    with TestClient(create_app(own, api_keys={})) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "kafka": "ok", "redis": "ok"}
        assert client.get("/v1/journeys/ada%40example.com").status_code == 401  # no key
        scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert "\ntandem_journeys 3.0\n" in text
    assert 'tandem_dependency_up{dependency="kafka"} 1.0' in text
    assert 'tandem_dependency_up{dependency="redis"} 1.0' in text
    # Counted by route template (not by the raw path, which would name a person).
    assert (
        'tandem_api_requests_total{method="GET",route="/v1/journeys/{reference}",status="401"} 1.0'
        in text
    )
    assert 'tandem_api_requests_total{method="GET",route="/readyz",status="200"} 1.0' in text
    assert "ada" not in text
