"""API key configuration: TANDEM_API_KEYS (JSON) and TANDEM_API_KEYS_FILE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.api.auth import (
    ApiClient,
    ApiKeyConfigError,
    authenticate,
    load_api_keys,
    parse_api_keys,
)

HUBSPOT = {"tool": "hubspot", "domains": ["marketing"]}
SALESFORCE = {"tool": "salesforce", "domains": ["sales", "marketing"]}


def test_parse_from_the_environment_variable() -> None:
    keys = load_api_keys({"TANDEM_API_KEYS": json.dumps({"k-1": HUBSPOT, "k-2": SALESFORCE})})
    assert keys["k-1"] == ApiClient(tool="hubspot", domains=frozenset({"marketing"}))
    assert keys["k-2"].may_publish("sales") and keys["k-2"].may_publish("marketing")
    assert not keys["k-1"].may_publish("sales")


def test_parse_from_a_file_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"k-file": SALESFORCE}))
    env = {"TANDEM_API_KEYS_FILE": str(path), "TANDEM_API_KEYS": json.dumps({"k-env": HUBSPOT})}
    assert set(load_api_keys(env)) == {"k-file", "k-env"}


def test_nothing_configured_means_no_keys() -> None:
    assert load_api_keys({}) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        (json.dumps({"k": {"tool": "x", "domains": ["finance"]}}), "domains"),
        (json.dumps({"k": {"tool": "x", "domains": []}}), "domains"),
        (json.dumps({"k": {"domains": ["sales"]}}), "tool"),
        (json.dumps({"k": {**HUBSPOT, "admin": True}}), "admin"),
        (json.dumps({" k": HUBSPOT}), "without spaces"),
    ],
)
def test_bad_configuration_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ApiKeyConfigError, match=message):
        parse_api_keys(text)


def test_a_key_defined_twice_or_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"k": HUBSPOT}))
    env = {"TANDEM_API_KEYS_FILE": str(path), "TANDEM_API_KEYS": json.dumps({"k": HUBSPOT})}
    with pytest.raises(ApiKeyConfigError, match="twice"):
        load_api_keys(env)
    with pytest.raises(ApiKeyConfigError, match="cannot read"):
        load_api_keys({"TANDEM_API_KEYS_FILE": str(tmp_path / "missing.json")})


def test_authenticate() -> None:
    keys = parse_api_keys(json.dumps({"k-1": HUBSPOT}))
    assert authenticate(keys, "k-1") == keys["k-1"]
    assert authenticate(keys, "k-2") is None
    assert authenticate(keys, "") is None
    assert authenticate(keys, None) is None
    assert authenticate(keys, "k-1 ") is None


async def test_create_app_reads_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    from events.examples import VALID_EXAMPLES
    from streams.api import create_app
    from streams.settings import Settings

    class Nowhere:
        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

        async def publish_batch(self, touchpoints: object) -> list[None]:
            return []

    monkeypatch.setenv("TANDEM_API_KEYS", json.dumps({"env-key": HUBSPOT}))
    app = create_app(Settings(), publisher_factory=lambda _s: Nowhere())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        event = VALID_EXAMPLES["marketing.ad_clicked"]
        ok = await http.post("/v1/events", json=event, headers={"X-API-Key": "env-key"})
        assert ok.status_code == 202
        unknown = await http.post("/v1/events", json=event, headers={"X-API-Key": "other"})
        assert unknown.status_code == 401


def test_keys_from_settings_fields_once_they_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.api import _api_keys
    from streams.settings import Settings

    class WithKeys(Settings):
        api_keys: dict[str, dict[str, object]] | None = None
        api_keys_file: Path | None = None

    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"k-file": SALESFORCE}))
    monkeypatch.setenv("TANDEM_API_KEYS", json.dumps({"k-env": HUBSPOT}))
    monkeypatch.setenv("TANDEM_API_KEYS_FILE", str(path))
    keys = _api_keys(WithKeys())  # the settings read both variables; nothing is doubled
    assert set(keys) == {"k-env", "k-file"}
    assert keys["k-env"].tool == "hubspot"
    monkeypatch.delenv("TANDEM_API_KEYS_FILE")
    assert set(_api_keys(WithKeys())) == {"k-env"}
