"""`tandem unmerge` on the real pipeline: a wrong merge split back into two journeys.

Two people, one event carrying both of them (Ada logs in on Bob's laptop: her email, his
cookie), so the worker merges them. `tandem unmerge` splits Bob off; Redis then shows the two
journeys the pure core computes by folding each person's events separately (the bridging event
goes with its strongest identifier, Ada's email), and another such event keeps them apart.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events import parse_touchpoint
from streams import journey as core
from streams.playbooks import load_configured_playbook
from streams.projection import JourneyProjection
from streams.settings import Settings
from tests.integration.conftest import WorkerProcess, settings_env
from tests.integration.helpers import comparable, eventually, publish_documents

pytestmark = pytest.mark.integration

ADA, ADA_COOKIE = "ada@unmerge.example", "ada-phone"
BOB, BOB_COOKIE = "bob@unmerge.example", "bob-laptop"
FORM = {"form_id": "demo-request", "job_title": "VP Marketing", "company": "Lovelace",
        "company_size": 250, "industry": "software", "pain_points": ["attribution"]}  # fmt: skip


def doc(event_id: str, type_: str, when: datetime, identity: dict[str, str],
        props: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"event_id": event_id, "type": type_, "occurred_at": when.isoformat(),
            "source": "test", "identity": identity, "properties": props or {}}  # fmt: skip


def people(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    day = timedelta(days=1)
    ada = [
        doc("um-a1", "marketing.page_viewed", now - 6 * day, {"anonymous_id": ADA_COOKIE},
            {"url": "/"}),
        doc("um-a2", "marketing.form_submitted", now - 5 * day,
            {"email": ADA, "anonymous_id": ADA_COOKIE}, FORM),
        doc("um-a3", "marketing.webinar_attended", now - 4 * day, {"email": ADA}),
    ]  # fmt: skip
    bob = [
        doc("um-b1", "marketing.page_viewed", now - 6 * day, {"anonymous_id": BOB_COOKIE},
            {"url": "/pricing"}),
        doc("um-b2", "marketing.email_opened", now - 5 * day,
            {"email": BOB, "anonymous_id": BOB_COOKIE}),
        doc("um-b3", "marketing.email_clicked", now - 4 * day, {"email": BOB}),
    ]  # fmt: skip
    return ada, bob


def bridge(event_id: str, when: datetime) -> dict[str, Any]:
    return doc(event_id, "marketing.page_viewed", when,
               {"email": ADA, "anonymous_id": BOB_COOKIE}, {"url": "/login"})  # fmt: skip


def folded(customer_id: str, docs: list[dict[str, Any]], playbook: core.Playbook) -> Any:
    record = core.fold(customer_id, [parse_touchpoint(d) for d in docs], playbook)
    record = core.reevaluate(record, playbook).record
    return comparable(core.snapshot(record, playbook).model_dump(mode="json"))


async def live(projection: JourneyProjection, ids: list[str]) -> dict[str, Any]:
    found = {}
    for customer_id in ids:
        snapshot = await projection.snapshot(customer_id)
        if snapshot is not None:
            found[customer_id] = comparable(snapshot)
    return found


async def test_unmerge_splits_a_wrong_merge_and_keeps_the_two_apart(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    playbook = load_configured_playbook(settings)
    now = datetime.now(UTC) - timedelta(hours=1)
    ada, bob = people(now)
    first = bridge("um-x1", now - 3 * timedelta(days=1))
    await publish_documents(settings, [*ada, *bob, first])

    ada_id, bob_id = core.customer_id_for(f"email:{ADA}"), core.customer_id_for(f"email:{BOB}")
    merged = {ada_id: folded(ada_id, [*ada, *bob, first], playbook)}
    found = await eventually(lambda: live(projection, [ada_id]), lambda f: f == merged, 90)
    assert found == merged, "the wrong link did not merge the two people"
    assert await projection.resolve(f"email:{BOB}") == ada_id

    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "unmerge", ADA, "--split", BOB,
         "--split", f"anon:{BOB_COOKIE}", "--yes", "--wait", "60"],
        env=settings_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert bob_id in result.stdout

    # Each person's journey, as folding their own events gives it (the bridge is Ada's).
    apart = {
        ada_id: folded(ada_id, [*ada, first], playbook),
        bob_id: folded(bob_id, bob, playbook),
    }
    found = await eventually(lambda: live(projection, [ada_id, bob_id]), lambda f: f == apart, 90)
    assert found == apart
    assert await projection.resolve(f"email:{BOB}") == bob_id

    # The same wrong link again: refused, the event stays with Ada, Bob is left alone.
    second = bridge("um-x2", now - 2 * timedelta(days=1))
    await publish_documents(settings, [second])
    apart[ada_id] = folded(ada_id, [*ada, first, second], playbook)
    found = await eventually(lambda: live(projection, [ada_id, bob_id]), lambda f: f == apart, 90)
    assert found == apart
    assert {ada_id, bob_id} <= await projection.customer_ids()

    # Errors are one line: an identifier the journey does not have.
    bad = subprocess.run(
        [sys.executable, "-m", "streams.cli", "unmerge", ADA, "--split", "email:nobody@x.example",
         "--yes"],
        env=settings_env(settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "not among the identifiers" in bad.stderr
