"""The account index in Redis and ``GET /v1/accounts`` against the real Redis (no broker).

Snapshots are built by the core from real touchpoints and written with
`JourneyProjection.write_snapshot` under a key prefix of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient

from streams import journey as core
from streams.api import create_app
from streams.api.auth import ApiClient, new_key
from streams.projection import ErasedJourney, JourneyProjection
from streams.settings import Settings
from tests.unit.journey.builders import FIT_FORM, apply_all, at
from tests.unit.journey.test_accounts import touch

pytestmark = pytest.mark.integration

READ_KEY, PUBLISH_KEY = new_key(), new_key()
KEYS = {
    READ_KEY: ApiClient(name="sales-tool", scopes=frozenset({"read"})),
    PUBLISH_KEY: ApiClient(tool="hubspot", domains=frozenset({"marketing"})),
}


def person(email: str, account: str, engaged: bool = True) -> dict[str, Any]:
    """A snapshot as the worker writes it: engaged people submit a fit form and attend."""
    tps = [touch("marketing.page_viewed", f"{email}-p", at(0), email, account, {"url": "/"})]
    if engaged:
        tps += [
            touch("marketing.form_submitted", f"{email}-f", at(0, 1), email, account, FIT_FORM),
            touch("marketing.webinar_attended", f"{email}-w", at(0, 2), email, account,
                  {"webinar_id": "w1"}),
            touch("marketing.content_downloaded", f"{email}-c", at(0, 3), email, account,
                  {"content_id": "guide"}),
        ]  # fmt: skip
    record, _ = apply_all(tps, core.default_playbook(), core.customer_id_for(f"email:{email}"))
    snapshot: dict[str, Any] = core.snapshot(record, core.default_playbook()).model_dump(
        mode="json"
    )
    return snapshot


@pytest.fixture(scope="module")
def api_settings() -> Settings:
    return Settings(redis_prefix=f"tandem-test-accounts-{uuid.uuid4().hex[:8]}:")


@pytest_asyncio.fixture
async def projection(api_settings: Settings) -> AsyncIterator[JourneyProjection]:
    projection = JourneyProjection.from_url(api_settings.redis_url, api_settings.redis_prefix)
    yield projection
    keys = [k async for k in projection.redis.scan_iter(f"{api_settings.redis_prefix}*")]
    if keys:
        await projection.redis.delete(*keys)
    await projection.close()


@pytest.fixture
def client(api_settings: Settings, projection: JourneyProjection) -> Iterator[TestClient]:
    with TestClient(
        create_app(api_settings, api_keys=KEYS), headers={"X-API-Key": READ_KEY}
    ) as http:
        yield http


async def write(projection: JourneyProjection, snapshot: dict[str, Any], version: int = 1) -> None:
    await projection.write_snapshot(snapshot["customer_id"], version, snapshot, snapshot["stage"])
    await projection.link_identifiers(snapshot["customer_id"], snapshot["identities"], version)


async def test_the_index_follows_a_change_of_account_a_move_and_an_erasure(
    projection: JourneyProjection,
) -> None:
    ada, bob = person("ada@acme.example", "acct-acme"), person("bob@acme.example", "acct-acme")
    await write(projection, ada)
    await write(projection, bob)
    assert await projection.account_members("acct-acme") == {ada["customer_id"], bob["customer_id"]}
    # Bob's latest touchpoints name another account: he moves, and a stale write cannot undo it.
    await write(projection, {**bob, "account_id": "acct-other"}, version=2)
    await write(projection, bob, version=1)
    assert await projection.account_members("acct-acme") == {ada["customer_id"]}
    assert await projection.account_ids() == {"acct-acme", "acct-other"}
    await projection.mark_moved(bob["customer_id"], ada["customer_id"], 3)
    assert await projection.account_ids() == {"acct-acme"}
    await projection.publish_many(
        [], [], [ErasedJourney(ada["customer_id"], 2, "forget-1", tuple(ada["identities"]))]
    )
    assert await projection.account_members("acct-acme") == set()
    assert await projection.account_ids() == set()


async def test_get_account_shows_the_buying_group_and_the_handoff(
    projection: JourneyProjection, client: TestClient
) -> None:
    people = [person(f"p{i}@acme.example", "acct-acme") for i in range(3)]
    for snapshot in [*people, person("cold@acme.example", "acct-acme", engaged=False)]:
        await write(projection, snapshot)
    await write(projection, person("solo@globex.example", "acct-globex"))
    body = client.get("/v1/accounts/acct-acme").json()
    assert body["people"] == 4 and body["stage"] == "mql"
    assert body["handoff"]["ready"] is True
    assert body["handoff"]["signal_id"] == core.account_signal_id("acct-acme")
    assert sorted(body["handoff"]["engaged"]) == sorted(p["customer_id"] for p in people)
    assert [m["customer_id"] for m in body["buying_group"]] == sorted(
        m["customer_id"] for m in body["buying_group"]
    )
    assert {m["persona"] for m in body["buying_group"] if m["engaged"]} == {"marketing-leader"}
    # A person's identifier finds their account too.
    assert client.get("/v1/accounts/email:p1@acme.example").json()["account_id"] == "acct-acme"
    globex = client.get("/v1/accounts/acct-globex").json()
    assert globex["people"] == 1 and globex["handoff"]["ready"] is False
    rows = client.get("/v1/accounts").json()
    assert [(r["account_id"], r["people"], r["handoff_ready"]) for r in rows] == [
        ("acct-acme", 4, True), ("acct-globex", 1, False)
    ]  # fmt: skip
    assert client.get("/v1/accounts/acct-nobody").status_code == 404
    assert (
        client.get("/v1/accounts/acct-acme", headers={"X-API-Key": PUBLISH_KEY}).status_code == 403
    )
