"""`tandem forget` on the real pipeline: a person erased everywhere and suppressed for good.

Ada and Bob build journeys on a running worker; Ada is forgotten; then her old touchpoints are
published again (a replay, a redrive, an old file republished) with a new one. Redis keeps no
trace of her (snapshot, identifier lookups, KPI facts, nothing naming her identifiers), the
compacted `journeys.state` ends in tombstones for her ids, the audit alert names no identifier,
the worker counts her touchpoints as suppressed, and Bob's journey is untouched.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from streams import journey as core
from streams.projection import JourneyProjection
from streams.settings import Settings
from streams.topics import ALERTS, JOURNEYS
from tests.integration.conftest import WorkerProcess, settings_env
from tests.integration.helpers import eventually, publish_documents, read_topic

ADA, ADA_COOKIE, ADA_CRM = "ada@forget.example", "ada-forget-phone", "crm-ada-forget"
BOB = "bob@forget.example"
ADA_TRACES = ("ada@forget", "ada-forget-phone", "crm-ada-forget")


def doc(event_id: str, type_: str, when: datetime, identity: dict[str, str],
        props: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"event_id": event_id, "type": type_, "occurred_at": when.isoformat(),
            "source": "test", "identity": identity, "properties": props or {}}  # fmt: skip


def documents(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    day = timedelta(days=1)
    ada = [
        doc("fg-a1", "marketing.page_viewed", now - 3 * day, {"anonymous_id": ADA_COOKIE},
            {"url": "/pricing"}),
        doc("fg-a2", "marketing.form_submitted", now - 2 * day,
            {"email": ADA, "anonymous_id": ADA_COOKIE},
            {"form_id": "demo", "job_title": "CTO", "company": "Lovelace"}),
        doc("fg-a3", "sales.prospect_added", now - day, {"email": ADA, "contact_id": ADA_CRM}),
    ]  # fmt: skip
    bob = [
        doc("fg-b1", "marketing.page_viewed", now - 2 * day, {"email": BOB}, {"url": "/"}),
        doc("fg-b2", "marketing.email_opened", now - day, {"email": BOB}),
    ]  # fmt: skip
    return ada, bob


async def redis_dump(projection: JourneyProjection, prefix: str) -> str:
    """Every key under the deployment's prefix with its value, as one text."""
    redis = projection.redis
    parts: list[str] = []
    async for key in redis.scan_iter(f"{prefix}*"):
        kind = await redis.type(key)
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            value = kind
        parts.append(f"{key} {value}")
    return "\n".join(parts).lower()


def suppressed_in(log: str) -> int:
    return sum(int(n) for n in re.findall(r"identity: suppressed (\d+) touchpoint", log))


async def test_a_forgotten_person_leaves_no_trace_and_never_comes_back(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    ada, bob = documents(now)
    ada_id, bob_id = (
        core.customer_id_for(f"contact:{ADA_CRM}"),
        core.customer_id_for(f"email:{BOB}"),
    )
    ada_ids = {core.customer_id_for(i) for i in
               (f"contact:{ADA_CRM}", f"email:{ADA}", f"anon:{ADA_COOKIE}")}  # fmt: skip
    await publish_documents(settings, [*ada, *bob])

    async def both() -> dict[str, Any]:
        return {c: await projection.snapshot(c) for c in (ada_id, bob_id)}

    found = await eventually(both, lambda f: all(s and s["counts"]["touchpoints"] >= 2
                                                 for s in f.values()) and
                             f[ada_id]["counts"]["touchpoints"] == 3, 60)  # fmt: skip
    assert found[ada_id] is not None and found[ada_id]["counts"]["touchpoints"] == 3
    bob_before = found[bob_id]
    kpis = projection.kpis
    await kpis.catch_up()
    assert await kpis.facts(ada_id) is not None
    assert ADA in await redis_dump(projection, settings.redis_prefix)

    forgotten = subprocess.run(
        [sys.executable, "-m", "streams.cli", "forget", ADA.upper(), "--yes", "--by", "dpo",
         "--wait", "45"],
        env=settings_env(settings), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert forgotten.returncode == 0, forgotten.stdout + forgotten.stderr
    assert "done" in forgotten.stdout

    async def no_trace() -> str:
        await kpis.catch_up()  # the KPI aggregates drop her contributions
        return await redis_dump(projection, settings.redis_prefix)

    dump = await eventually(no_trace, lambda d: not any(t in d for t in ADA_TRACES), 30)
    assert not any(t in dump for t in ADA_TRACES), dump
    assert ada_ids.isdisjoint(await projection.customer_ids())
    assert all([await projection.snapshot(c) is None for c in ada_ids])
    assert all([await kpis.facts(c) is None for c in ada_ids])
    assert await projection.resolve(ADA) is None
    assert await projection.snapshot(bob_id) == bob_before

    # Her old touchpoints again (a replay, a redrive, an old file), and a new one.
    again = [*ada, doc("fg-a4", "marketing.email_clicked", now, {"email": ADA})]
    await publish_documents(settings, again)
    log = await eventually(lambda: _log(worker), lambda text: suppressed_in(text) >= len(again), 45)
    assert suppressed_in(log) == len(again)
    dump = await no_trace()
    assert not any(t in dump for t in ADA_TRACES), dump
    assert await projection.snapshot(bob_id) == bob_before

    # The compacted journeys.state ends in a tombstone for each of her ids.
    latest: dict[str | None, Any] = dict(await read_topic(settings, JOURNEYS))
    assert all(latest[c] is None for c in ada_ids if c in latest) and ada_id in latest
    assert latest[bob_id] is not None
    # The audit alert: who, when, which request, a digest, and no identifier.
    # (Other tests of the session forget people on the same topics: hers is the one naming
    # her journeys.)
    audits = [v for _k, v in await read_topic(settings, ALERTS)
              if v and v.get("signal_type") == "person_forgotten"
              and set(v["erased_customer_ids"]) & ada_ids]  # fmt: skip
    assert len(audits) == 1 and audits[0]["requested_by"] == "dpo"
    assert set(audits[0]["erased_customer_ids"]) == ada_ids and audits[0]["identities"] == []
    assert not any(t in str(audits[0]).lower() for t in ADA_TRACES)


async def _log(worker: WorkerProcess) -> str:
    return worker.log_text()
