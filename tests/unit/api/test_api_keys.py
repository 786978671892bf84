"""API keys: stored hashed, with scopes; person-level routes need a read key.

Every route of the app is checked: those not known to be open (health, the contract's JSON
Schemas), publishing or aggregate KPIs are person-level and must answer 401 without a key and
403 to a key without the scope — so a route added later is covered without editing this file.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from streams.api import create_app
from streams.api.auth import (
    ApiClient,
    ApiKeyConfigError,
    authenticate,
    is_digest,
    key_digest,
    load_api_keys,
    new_key,
    parse_api_keys,
)
from streams.settings import Settings

HUBSPOT = {"tool": "hubspot", "domains": ["marketing"]}
SALESFORCE = {"tool": "salesforce", "domains": ["sales", "marketing"]}
K1, K2 = new_key(), new_key()

OPEN = {"/healthz", "/readyz", "/metrics", "/v1/schemas", "/v1/schemas/{name}"}
PUBLISH = {"/v1/events"} | {f"/v1/segment/{c}" for c in ("track", "identify", "page", "batch")}
KPIS = {"/v1/kpis", "/v1/kpis/snapshot"}


def config(**entries: dict[str, Any]) -> str:
    """A keys configuration of plain key → entry, as stored: by digest."""
    return json.dumps({key_digest(key): entry for key, entry in entries.items()})


# --- configuration ---------------------------------------------------------------------------


def test_keys_are_configured_by_digest() -> None:
    keys = load_api_keys({"TANDEM_API_KEYS": json.dumps({key_digest(K1): HUBSPOT})})
    assert list(keys) == [key_digest(K1)] and is_digest(key_digest(K1))
    assert keys[key_digest(K1)] == ApiClient(
        tool="hubspot", domains=frozenset({"marketing"}), scopes=frozenset({"publish"})
    )
    assert authenticate(keys, K1) == keys[key_digest(K1)]
    assert authenticate(keys, key_digest(K1)) is None  # the digest is not a key
    assert authenticate(keys, K2) is None
    assert authenticate(keys, "") is None and authenticate(keys, None) is None
    assert authenticate(keys, K1 + " ") is None


def test_new_keys_are_random_and_long() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("tdm_") and len(k) >= 40 for k in keys)


def test_scopes_and_entries_from_before_scopes() -> None:
    read = ApiClient.model_validate({"name": "dashboard", "scopes": ["read"]})
    assert read.has("read") and not read.has("admin") and not read.may_publish("marketing")
    legacy = ApiClient.model_validate(SALESFORCE)
    assert legacy.scopes == {"publish"} and legacy.may_publish("sales")
    both = ApiClient.model_validate({"scopes": ["read", "publish"], **HUBSPOT})
    assert both.has("read") and both.may_publish("marketing") and not both.may_publish("sales")


def test_file_and_variable_are_merged(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(config(**{K1: SALESFORCE}))
    env = {"TANDEM_API_KEYS_FILE": str(path), "TANDEM_API_KEYS": config(**{K2: HUBSPOT})}
    assert set(load_api_keys(env)) == {key_digest(K1), key_digest(K2)}


def test_the_default_file_is_read_when_it_exists(tmp_path: Path) -> None:
    default = tmp_path / "api-keys.json"
    assert load_api_keys({}, default_file=default) == {}
    default.write_text(config(**{K1: {"scopes": ["read"]}}))
    assert set(load_api_keys({}, default_file=default)) == {key_digest(K1)}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        (json.dumps({"plain-key-123": HUBSPOT}), "not a key digest"),
        (config(k={"tool": "x", "domains": ["finance"]}), "domains"),
        (config(k={"tool": "x", "domains": []}), "domains"),
        (config(k={"domains": ["sales"]}), "tool"),
        (config(k={**HUBSPOT, "admin": True}), "admin"),
        (config(k={"scopes": ["read", "everything"]}), "scopes"),
        (config(k={"scopes": ["publish"]}), "a publish key needs a tool and its domains"),
        (config(k={"scopes": []}), "give scopes"),
    ],
)
def test_bad_configuration_is_a_clear_error(entries: str, message: str) -> None:
    with pytest.raises(ApiKeyConfigError, match=message):
        parse_api_keys(entries)


def test_a_plain_key_in_configuration_is_refused_without_being_echoed() -> None:
    with pytest.raises(ApiKeyConfigError) as raised:
        parse_api_keys(json.dumps({K1: HUBSPOT}))
    assert K1 not in str(raised.value) and "'hubspot'" in str(raised.value)


def test_a_digest_defined_twice_or_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(config(**{K1: HUBSPOT}))
    env = {"TANDEM_API_KEYS_FILE": str(path), "TANDEM_API_KEYS": config(**{K1: HUBSPOT})}
    with pytest.raises(ApiKeyConfigError, match="hubspot is defined twice"):
        load_api_keys(env)
    with pytest.raises(ApiKeyConfigError, match="cannot read"):
        load_api_keys({"TANDEM_API_KEYS_FILE": str(tmp_path / "missing.json")})


def test_create_app_reads_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.api import _api_keys

    path = tmp_path / "keys.json"
    path.write_text(config(**{K1: SALESFORCE}))
    monkeypatch.setenv("TANDEM_API_KEYS", config(**{K2: HUBSPOT}))
    monkeypatch.setenv("TANDEM_API_KEYS_FILE", str(path))
    keys = _api_keys(Settings())
    assert set(keys) == {key_digest(K1), key_digest(K2)}
    monkeypatch.delenv("TANDEM_API_KEYS_FILE")
    assert set(_api_keys(Settings(data_dir=tmp_path))) == {key_digest(K2)}


# --- routes and scopes ---------------------------------------------------------------------

READ, PUBLISHER, ADMIN, EVERYTHING = new_key(), new_key(), new_key(), new_key()
KEYS = {
    READ: ApiClient(name="dashboard", scopes=frozenset({"read"})),
    PUBLISHER: ApiClient.model_validate(SALESFORCE),
    ADMIN: ApiClient(name="ops", scopes=frozenset({"admin"})),
    EVERYTHING: ApiClient(name="root", scopes=frozenset({"read", "admin"})),
}
# Nothing listens here: a request that passes authentication answers 503 (Redis or Kafka
# unavailable) at once, and these tests need neither (nor may they forget anyone for real).
NOWHERE = Settings(redis_url="redis://127.0.0.1:1/0", kafka_bootstrap="127.0.0.1:1")


def _requests(app: Any) -> list[tuple[str, str]]:
    spec = app.openapi()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "ada@example.com", path))
        for path, operations in spec["paths"].items()
        for method in operations
        if path not in OPEN | PUBLISH | KPIS
    ]


async def _status(app: Any, method: str, path: str, key: str | None) -> int:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": key} if key else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.request(method, path, headers=headers)
    return response.status_code


def test_the_person_level_routes_are_the_journeys_at_least() -> None:
    paths = {path for _m, path in _requests(create_app(NOWHERE, api_keys=KEYS))}
    assert {"/v1/journeys", "/v1/journeys/ada@example.com"} <= paths


async def test_person_level_routes_need_a_key_with_the_scope() -> None:
    app = create_app(NOWHERE, api_keys=KEYS)
    for method, path in _requests(app):
        assert await _status(app, method, path, None) == 401, path
        assert await _status(app, method, path, "tdm_unknown") == 401, path
        assert await _status(app, method, path, PUBLISHER) == 403, path
        # With the scope the request gets through (to a Redis that is not there).
        assert await _status(app, method, path, EVERYTHING) not in (401, 403), path
    for path in ("/v1/journeys", "/v1/journeys/ada@example.com"):
        assert await _status(app, "GET", path, READ) == 503
        assert await _status(app, "GET", path, ADMIN) == 403


async def test_kpis_need_a_read_key_unless_public() -> None:
    closed = create_app(NOWHERE, api_keys=KEYS)
    public = create_app(NOWHERE.model_copy(update={"public_kpis": True}), api_keys=KEYS)
    for path in sorted(KPIS):
        assert await _status(closed, "GET", path, None) == 401
        assert await _status(closed, "GET", path, PUBLISHER) == 403
        assert await _status(closed, "GET", path, READ) == 503  # through, to no Redis
        assert await _status(public, "GET", path, None) == 503
    assert await _status(public, "GET", "/v1/journeys", None) == 401  # only the KPIs open


async def test_a_read_key_cannot_publish() -> None:
    app = create_app(NOWHERE, api_keys=KEYS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post("/v1/events", json={}, headers={"X-API-Key": READ})
    assert response.status_code == 403
    assert "lacks the `publish` scope" in response.json()["detail"]


async def test_open_routes_stay_open() -> None:
    app = create_app(NOWHERE, api_keys=KEYS)
    for path in ("/healthz", "/metrics", "/v1/schemas", "/openapi.json", "/"):
        assert await _status(app, "GET", path, None) == 200, path


async def test_keys_and_digests_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(NOWHERE, api_keys=KEYS)
    for key in (READ, PUBLISHER, ADMIN, "tdm_wrong"):
        for path in ("/v1/journeys", "/v1/kpis", "/v1/events"):
            await _status(app, "GET" if path != "/v1/events" else "POST", path, key)
    with pytest.raises(ApiKeyConfigError) as raised:
        parse_api_keys(json.dumps({READ: {"scopes": ["read"]}}))
    logging.getLogger("tandem.api").error("config: %s", raised.value)
    secrets_ = [*KEYS, *(key_digest(k) for k in KEYS), key_digest("tdm_wrong")]
    secrets_ += [d.removeprefix("sha256:") for d in secrets_ if d.startswith("sha256:")]
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for secret in secrets_:
        assert secret not in caplog.text


# --- tandem keys -----------------------------------------------------------------------------


def test_keys_create_prints_the_key_once_and_stores_its_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.cli import app, keys  # keys registers its commands on the app
    from streams.settings import get_settings

    assert keys.keys_app is not None

    path = tmp_path / "keys.json"
    monkeypatch.setenv("TANDEM_API_KEYS_FILE", str(path))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        made = runner.invoke(
            app, ["keys", "create", "--scope", "read", "--scope", "admin", "--name", "ops"]
        )
        assert made.exit_code == 0, made.output
        key = made.stdout.strip()
        assert key.startswith("tdm_") and "not shown again" in made.stderr
        stored = path.read_text()
        assert key not in stored and key_digest(key) in stored
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        client = authenticate(load_api_keys({"TANDEM_API_KEYS_FILE": str(path)}), key)
        assert client is not None and client.scopes == {"read", "admin"} and client.name == "ops"

        publisher = runner.invoke(
            app,
            ["keys", "create", "--scope", "publish", "--tool", "hubspot", "--domain", "marketing"],
        )
        assert publisher.exit_code == 0, publisher.output
        listed = runner.invoke(app, ["keys", "list", "--json"])
        assert [e.get("name") for e in json.loads(listed.stdout)] == ["ops", None]
        assert key_digest(key) not in listed.stdout

        again = runner.invoke(app, ["keys", "create", "--scope", "read", "--name", "ops"])
        assert again.exit_code == 2 and "exists already" in again.stderr
        bad = runner.invoke(app, ["keys", "create", "--scope", "publish"])
        assert bad.exit_code == 2 and "needs a tool and its domains" in bad.stderr

        assert runner.invoke(app, ["keys", "revoke", "ops"]).exit_code == 0
        assert authenticate(load_api_keys({"TANDEM_API_KEYS_FILE": str(path)}), key) is None
        assert runner.invoke(app, ["keys", "revoke", "ops"]).exit_code == 1

        hashed = runner.invoke(app, ["keys", "hash"], input=key + "\n")
        assert hashed.stdout.strip() == key_digest(key)
    finally:
        get_settings.cache_clear()
