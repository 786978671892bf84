"""Segment ingest on the real broker: a Segment batch through ``POST /v1/segment/batch``, the
real Kafka publisher and the real worker, into journeys (and the dead-letter topic)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from streams.api import create_app
from streams.api.auth import ApiClient, new_key
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.topics import DEADLETTER
from tests.integration.conftest import WorkerProcess
from tests.integration.helpers import eventually, read_topic

pytestmark = pytest.mark.integration

WRITE_KEY = new_key()


def person_calls(
    run: str, who: str, start: datetime, event: str, props: dict[str, Any]
) -> list[Any]:
    """page (anonymous) → identify (links cookie, user id, email) → track (user id only)."""
    anon, user = f"{run}-anon-{who}", f"{run}-user-{who}"
    at = [(start + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for m in (0, 1, 2)]
    return [
        {"type": "page", "messageId": f"{run}-{who}-page", "anonymousId": anon, "timestamp": at[0],
         "properties": {"url": f"https://t.example/{who}", "title": "Pricing"}},
        {"type": "identify", "messageId": f"{run}-{who}-identify", "anonymousId": anon,
         "userId": user, "timestamp": at[1],
         "traits": {"email": f"{who}@{run}.example", "title": "VP Marketing"}},
        {"type": "track", "messageId": f"{run}-{who}-track", "userId": user, "timestamp": at[2],
         "event": event, "properties": props},
    ]  # fmt: skip


async def journey_of(projection: JourneyProjection, reference: str) -> dict[str, Any] | None:
    customer = await projection.resolve(reference)
    return await projection.snapshot(customer) if customer else None


async def test_a_segment_batch_becomes_journeys_and_unknown_events_dead_letters(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    run = f"seg{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(hours=1)
    unknown = {"type": "track", "messageId": f"{run}-unknown", "userId": f"{run}-user-ada",
               "timestamp": start.isoformat(), "event": "Cart Viewed"}  # fmt: skip
    batch = {
        "batch": [
            *person_calls(run, "ada", start, "Form Submitted", {"form_id": "demo-request"}),
            *person_calls(run, "ben", start, "Webinar Attended", {"webinar_id": "q2"}),
            unknown,
        ],
        "sentAt": datetime.now(UTC).isoformat(),
    }
    keys = {WRITE_KEY: ApiClient(tool="website", domains=frozenset({"marketing"}))}
    app = create_app(settings, api_keys=keys)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/v1/segment/batch", json=batch, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["published"], body["dead_lettered"]) == (True, 6, 1)

    for who, track_type in (
        ("ada", "marketing.form_submitted"),
        ("ben", "marketing.webinar_attended"),
    ):
        snapshot = await eventually(
            lambda who=who: journey_of(projection, f"contact:{run}-user-{who}"),
            lambda found: found is not None and found["counts"]["touchpoints"] >= 3,
            timeout=90,
        )
        assert snapshot is not None, f"no journey for {who}"
        assert set(snapshot["identities"]) == {
            f"contact:{run}-user-{who}",
            f"email:{who}@{run}.example",
            f"anon:{run}-anon-{who}",
        }
        touches = {t["event_id"]: t["type"] for t in snapshot["recent_touchpoints"]}
        assert touches == {
            f"segment-{run}-{who}-page": "marketing.page_viewed",
            f"segment-{run}-{who}-identify": "marketing.identified",
            f"segment-{run}-{who}-track": track_type,
        }
        assert snapshot["firmographics"]["job_title"] == "VP Marketing"  # from identify traits

    letters = await eventually(
        lambda: read_topic(settings, DEADLETTER),
        lambda found: any(v["event_id"] == f"segment-{run}-unknown" for _k, v in found),
    )
    [letter] = [v for _k, v in letters if v["event_id"] == f"segment-{run}-unknown"]
    assert letter["reason_code"] == "unmapped_segment_event"
    assert "'Cart Viewed' has no Tandem type" in letter["reason"]
    assert f"{run}-unknown" in letter["original_text"]
    assert WRITE_KEY not in letter["original_text"]
