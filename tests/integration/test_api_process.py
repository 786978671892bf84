"""A real `tandem api` process (uvicorn, its access log) on the real Kafka and Redis (issue 11).

- Its log names routes, never a person or a key: person-level requests by email, contact id
  and a key in the query string leave none of them (nor a key's digest) in what it printed.
- Keys made or revoked by `tandem keys` while it runs take effect without a restart.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from streams.api.auth import key_digest
from streams.settings import Settings
from tests.integration.conftest import settings_env
from tests.integration.test_worker_metrics import free_port

pytestmark = pytest.mark.integration

EMAIL, CONTACT = "ada.logged@leak.example", "crm-leak-4242"

Api = tuple[str, dict[str, str], Path]
"""The running API's base URL, its environment (for `tandem keys`) and its log."""


def tandem(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


@pytest.fixture
def api(settings: Settings, topics: dict[str, str], tmp_path: Path) -> Iterator[Api]:
    """`tandem api` on a free port, with its own keys file; yields (base URL, env, log)."""
    env = settings_env(settings.model_copy(update={"data_dir": tmp_path}))
    port, log = free_port(), tmp_path / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "api", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"tandem api did not start:\n{log.read_text()}")
        yield base, env, log
    finally:
        process.terminate()
        process.wait(15)


def eventually_status(url: str, key: str, want: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(url, headers={"X-API-Key": key}, timeout=10).status_code
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_the_access_log_names_routes_never_people_or_keys(
    api: Api,
) -> None:
    base, env, log = api
    ops = tandem(env, "keys", "create", "--scope", "read", "--scope", "admin", "--name", "ops")
    read = {"X-API-Key": eventually_key(base, ops)}
    assert httpx.get(f"{base}/v1/journeys/{EMAIL}", headers=read).status_code == 404
    assert httpx.get(f"{base}/v1/journeys/contact:{CONTACT}", headers=read).status_code == 404
    forgotten = httpx.delete(f"{base}/v1/people/{EMAIL}", headers=read, timeout=30)
    assert forgotten.status_code == 202, forgotten.text
    assert httpx.get(f"{base}/v1/journeys?key={ops}&email={EMAIL}").status_code == 401
    assert httpx.get(f"{base}/v1/people/{EMAIL}/more", headers=read).status_code in (404, 405)
    bearer = {"Authorization": f"Bearer {ops}x"}
    assert httpx.delete(f"{base}/v1/people/contact:{CONTACT}", headers=bearer).status_code == 401
    time.sleep(0.5)  # the access log line is written after the answer

    text = log.read_text()
    assert 'DELETE /v1/people/{reference} HTTP/1.1" 202' in text, text
    assert 'GET /v1/journeys/{reference} HTTP/1.1" 404' in text, text
    assert 'GET /v1/journeys?key=…&email=… HTTP/1.1" 401' in text, text
    digest = key_digest(ops)
    leaks = ("ada.logged", "leak.example", CONTACT, ops, digest, digest.removeprefix("sha256:"))
    assert not [leak for leak in leaks if leak.lower() in text.lower()], text


def eventually_key(base: str, key: str) -> str:
    """A key just made: the running API takes it within a second."""
    assert eventually_status(f"{base}/v1/journeys", key, 200) == 200
    return key


def test_keys_made_and_revoked_while_the_api_runs_need_no_restart(
    api: Api,
) -> None:
    base, env, _log = api
    assert httpx.get(f"{base}/v1/journeys", headers={"X-API-Key": "tdm_nobody"}).status_code == 401
    late = tandem(env, "keys", "create", "--scope", "read", "--name", "late")
    started = time.monotonic()
    assert eventually_status(f"{base}/v1/journeys", late, 200) == 200
    took = time.monotonic() - started
    assert eventually_status(f"{base}/v1/kpis/snapshot", late, 200) == 200
    assert httpx.delete(f"{base}/v1/people/{EMAIL}", headers={"X-API-Key": late}).status_code == 403
    tandem(env, "keys", "revoke", "late")
    assert eventually_status(f"{base}/v1/journeys", late, 401) == 401
    print(f"\na key made while the API ran answered 200 after {took:.2f} s")
