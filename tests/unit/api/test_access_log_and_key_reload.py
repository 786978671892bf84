"""The access log names routes, not people or secrets; a changed keys file is read again."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from streams.api import create_app
from streams.api.access_log import ACCESS_LOGGER, RedactedAccessLog, redact_path
from streams.api.auth import ApiClient, KeyStore, key_digest, load_api_keys, new_key
from streams.settings import Settings

SETTINGS = Settings(kafka_bootstrap="127.0.0.1:1", redis_url="redis://127.0.0.1:1/0")


def test_paths_with_a_reference_are_logged_as_their_route_and_query_values_are_hidden() -> None:
    app = create_app(SETTINGS, api_keys={new_key(): ApiClient(scopes=frozenset({"read"}))})
    redaction = RedactedAccessLog(list(app.openapi()["paths"]))
    templates = redaction.templates
    assert redact_path("/v1/people/ada@example.com", templates) == "/v1/people/{reference}"
    assert redact_path("/v1/journeys/contact:crm-1", templates) == "/v1/journeys/{reference}"
    assert redact_path("/v1/journeys?key=tdm_x&limit=5", templates) == "/v1/journeys?key=…&limit=…"
    assert redact_path("/v1/kpis", templates) == "/v1/kpis"
    assert redact_path("/v1/journeys", templates) == "/v1/journeys"
    assert redact_path("/v1/people/ada@example.com/x", templates) == "/v1/people/…"
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "DELETE", "/v1/people/ada%40example.com?token=s3",
                                "1.1", 202), None)  # fmt: skip
    assert redaction.filter(record)
    assert (
        record.getMessage() == '127.0.0.1:5 - "DELETE /v1/people/{reference}?token=… HTTP/1.1" 202'
    )


def _write(path: Path, entries: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries), encoding="utf-8")
    os.replace(tmp, path)  # as `tandem keys create` does


def test_a_key_written_to_the_file_is_found_within_the_recheck_interval(tmp_path: Path) -> None:
    path, now = tmp_path / "api-keys.json", [0.0]
    first, second = new_key(), new_key()
    _write(path, {key_digest(first): {"name": "a", "scopes": ["read"]}})
    store = KeyStore(lambda: load_api_keys({"TANDEM_API_KEYS_FILE": str(path)}), path,
                     recheck_s=1.0, clock=lambda: now[0])  # fmt: skip
    assert key_digest(first) in store and key_digest(second) not in store
    _write(path, {key_digest(first): {"name": "a", "scopes": ["read"]},
                  key_digest(second): {"name": "b", "scopes": ["admin"]}})  # fmt: skip
    now[0] = 0.5
    assert key_digest(second) not in store  # looked at once a second at most
    now[0] = 1.1
    assert store[key_digest(second)].name == "b"
    path.write_text("{not json", encoding="utf-8")
    now[0] = 2.2
    assert key_digest(second) in store  # a broken file keeps the keys read before
    _write(path, {key_digest(second): {"name": "b", "scopes": ["admin"]}})
    now[0] = 3.3
    assert key_digest(first) not in store and len(store) == 1  # revoked


def test_a_keys_file_made_after_the_start_is_read(tmp_path: Path) -> None:
    path, now = tmp_path / "api-keys.json", [0.0]
    store = KeyStore(lambda: load_api_keys({}, default_file=path), path, clock=lambda: now[0])
    assert len(store) == 0
    key = new_key()
    _write(path, {key_digest(key): {"name": "late", "scopes": ["read"]}})
    now[0] = 1.5
    assert store[key_digest(key)].name == "late"
