"""Accounts on the real pipeline: three people of one account, their touchpoints published to
Kafka, the worker's read model → `tandem account` and ``GET /v1/accounts/{id}`` show the
buying group, and the account hand-off goes out on ``signals.handoff`` once the third person
is engaged (not before, and only once).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from streams import journey as core
from streams.api import create_app
from streams.api.auth import ApiClient, new_key
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.topics import HANDOFF
from tests.integration.conftest import WorkerProcess, settings_env
from tests.integration.helpers import eventually, publish_documents, read_topic

pytestmark = pytest.mark.integration

FORM = {"form_id": "demo-request", "job_title": "VP Marketing", "company": "Initech",
        "company_size": 250, "industry": "software", "pain_points": ["attribution"]}  # fmt: skip


def engaged(run: str, email: str, account: str, when: datetime) -> list[dict[str, Any]]:
    """A form, a webinar and a download: engagement 47, over the account rule's 40."""
    identity = {"email": email, "account_id": account}
    steps = [("marketing.form_submitted", FORM), ("marketing.webinar_attended", {}),
             ("marketing.content_downloaded", {"content_id": "guide"})]  # fmt: skip
    return [
        {"event_id": f"{run}-{email}-{i}", "type": type_, "source": "test", "identity": identity,
         "occurred_at": (when + timedelta(hours=i)).isoformat(), "properties": props}
        for i, (type_, props) in enumerate(steps)
    ]  # fmt: skip


async def members(projection: JourneyProjection, account: str) -> set[str]:
    return await projection.account_members(account)


async def account_signals(settings: Settings, account: str) -> list[dict[str, Any]]:
    return [v for k, v in await read_topic(settings, HANDOFF) if k == f"account:{account}"]


async def test_three_people_of_one_account_make_a_buying_group_and_an_account_handoff(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    run = uuid.uuid4().hex[:6]
    account = f"acct-initech-{run}"
    now = datetime.now(UTC) - timedelta(hours=6)
    emails = [f"{name}-{run}@initech.example" for name in ("peter", "samir", "michael")]
    ids = {core.customer_id_for(f"email:{e}") for e in emails}

    await publish_documents(settings, [*engaged(run, emails[0], account, now),
                                       *engaged(run, emails[1], account, now)])  # fmt: skip
    found = await eventually(lambda: members(projection, account), lambda m: len(m) == 2, 90)
    assert found == ids - {core.customer_id_for(f"email:{emails[2]}")}
    assert await account_signals(settings, account) == []  # two engaged people: not yet

    await publish_documents(settings, engaged(run, emails[2], account, now + timedelta(hours=1)))
    found = await eventually(lambda: members(projection, account), lambda m: m == ids, 90)
    assert found == ids
    signals = await eventually(lambda: account_signals(settings, account), lambda s: len(s) > 0, 60)
    assert len(signals) == 1, signals
    signal = signals[0]
    assert signal["signal_type"] == "account_handoff"
    assert signal["signal_id"] == core.account_signal_id(account)
    assert signal["engaged_people"] == 3
    assert {m["customer_id"] for m in signal["buying_group"]} == ids

    # The CLI shows the buying group (by account id, and by a person's email).
    for reference in (account, emails[1]):
        shown = subprocess.run(
            [sys.executable, "-m", "streams.cli", "account", reference, "--json"],
            env=settings_env(settings), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        view = json.loads(shown.stdout)
        assert view["account_id"] == account and view["people"] == 3
        assert {m["customer_id"] for m in view["buying_group"]} == ids
        assert view["handoff"]["ready"] is True
        assert {m["persona"] for m in view["buying_group"]} == {"marketing-leader"}
    missing = subprocess.run(
        [sys.executable, "-m", "streams.cli", "account", f"acct-nobody-{run}"],
        env=settings_env(settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1

    # The API answers the same view.
    key = new_key()
    app = create_app(settings, api_keys={key: ApiClient(name="crm", scopes=frozenset({"read"}))})
    with TestClient(app, headers={"X-API-Key": key}) as http:
        body = http.get(f"/v1/accounts/{account}").json()
    assert body == view

    # More touchpoints of the same people: the account hand-off is not sent again.
    later = engaged(f"{run}b", emails[0], account, now + timedelta(hours=3))
    await publish_documents(settings, later)
    await eventually(
        lambda: projection.snapshot(core.customer_id_for(f"email:{emails[0]}")),
        lambda s: s is not None and s["counts"]["touchpoints"] == 6,
        90,
    )
    assert len(await account_signals(settings, account)) == 1
    sent = await projection.account_handoffs_sent([account])
    assert sent == {account: core.account_signal_id(account)}
