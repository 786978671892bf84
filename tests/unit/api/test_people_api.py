"""``DELETE /v1/people/{reference}``: an admin key sends one audited forget request."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import httpx
import pytest

from streams.api import create_app
from streams.api.auth import ApiClient, new_key
from streams.settings import Settings
from streams.workflow.messages import ForgetRequest

ADMIN, READ = new_key(), new_key()
KEYS = {
    ADMIN: ApiClient(name="privacy-desk", scopes=frozenset({"admin"})),
    READ: ApiClient(name="dashboard", scopes=frozenset({"read"})),
}
SETTINGS = Settings(
    topic_prefix="p.", redis_url="redis://127.0.0.1:1/0", kafka_bootstrap="127.0.0.1:1"
)


class RawRecorder:
    """Records what is published, as `TouchpointPublisher.publish_raw` would send it."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str, bytes | str | None]] = []
        self.flushed = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish_batch(self, touchpoints: Any) -> list[Any]:
        return []

    async def publish_raw(self, value: bytes, topic: str, key: bytes | str | None) -> None:
        self.sent.append((value, topic, key))

    async def flush(self) -> None:
        self.flushed += 1


async def delete(app: Any, path: str, key: str | None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": key} if key else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.delete(path, headers=headers)


async def test_an_admin_key_sends_one_forget_request(caplog: pytest.LogCaptureFixture) -> None:
    recorder = RawRecorder()
    app = create_app(SETTINGS, api_keys=KEYS, publisher_factory=lambda s: recorder)
    with caplog.at_level(logging.INFO):
        response = await delete(app, "/v1/people/Ada@Example.com", ADMIN)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["requested_by"] == "api:privacy-desk"
    assert body["reference_sha256"] == hashlib.sha256(b"Ada@Example.com").hexdigest()
    [(value, topic, key)] = recorder.sent
    assert topic == "p.touchpoints.accepted" and key == b"cmd:forget" and recorder.flushed
    request = ForgetRequest.model_validate_json(value)
    assert request.identifiers == ["email:ada@example.com"]
    assert request.request_id == body["request_id"]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tandem"))
    assert body["request_id"] in ours and body["reference_sha256"] in ours
    assert "ada@example.com" not in ours.lower()  # the audit line names only a digest


async def test_forgetting_needs_the_admin_scope() -> None:
    recorder = RawRecorder()
    app = create_app(SETTINGS, api_keys=KEYS, publisher_factory=lambda s: recorder)
    assert (await delete(app, "/v1/people/ada@example.com", None)).status_code == 401
    assert (await delete(app, "/v1/people/ada@example.com", "tdm_unknown")).status_code == 401
    assert (await delete(app, "/v1/people/ada@example.com", READ)).status_code == 403
    assert recorder.sent == []


async def test_no_kafka_is_a_503_and_nothing_sent() -> None:
    app = create_app(SETTINGS, api_keys=KEYS)  # the real publisher, to a closed port
    response = await delete(app, "/v1/people/ada@example.com", ADMIN)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
