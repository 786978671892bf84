"""Signal delivery on the real broker: `tandem subscribe` and webhook delivery.

Signals are produced straight onto this module's own prefixed signal topics (no worker), so
every count is exact. The webhook receivers are tiny aiohttp servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiokafka import AIOKafkaProducer

from schemas.signals import HandoffRevokedSignal, Signal
from streams import infra
from streams.delivery.subscriber import Received, SignalSubscriber, Status, Undecodable
from streams.delivery.webhooks import (
    SIGNAL_ID_HEADER,
    SIGNAL_VERSION_HEADER,
    SIGNATURE_HEADER,
    WebhookDelivery,
    parse_config,
    verify,
)
from streams.kafka_admin import create_topics, delete_topics
from streams.settings import Settings
from streams.topics import WEBHOOK_DEADLETTER, full_name
from tests.integration.conftest import settings_env
from tests.integration.helpers import read_topic
from tests.unit.delivery.helpers import first

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def delivery_settings(
    infrastructure: infra.InfraStatus,
) -> AsyncIterator[Settings]:
    """Settings with this module's own topic prefix, and its topics created."""
    base = Settings()
    settings = Settings(
        topic_prefix=f"d{uuid.uuid4().hex[:8]}.",
        partitions=2,
        kafka_bootstrap=base.kafka_bootstrap,
        redis_url=base.redis_url,
    )
    await create_topics(settings)
    yield settings
    await delete_topics(settings)


async def produce(settings: Settings, *items: Signal | tuple[str, bytes]) -> None:
    """Signals onto their topics keyed by customer id (or raw bytes onto a named topic)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for item in items:
            if isinstance(item, tuple):
                topic, raw = item
                await producer.send_and_wait(full_name(topic, settings.topic_prefix), raw, b"x")
            else:
                await producer.send_and_wait(
                    full_name(item.topic, settings.topic_prefix),
                    item.model_dump_json().encode(),
                    item.customer_id.encode(),
                )
    finally:
        await producer.stop()


def handoff_for(customer: str) -> Signal:
    """A real hand-off (from the pure core) re-labelled for a fresh customer and id."""
    return first("handoff").model_copy(
        update={"customer_id": customer, "signal_id": f"sig_{customer}"}
    )


def revocation_of(signal: Signal) -> HandoffRevokedSignal:
    return HandoffRevokedSignal(
        signal_id=signal.signal_id,
        version=signal.version + 1,
        customer_id=signal.customer_id,
        identities=signal.identities,
        occurred_at=signal.occurred_at,
        playbook_version=signal.playbook_version,
        cycle=0,
        reason="the lead no longer qualifies",
    )


async def collect(
    settings: Settings, group: str, limit: int | None = None, idle_exit: float = 2.0
) -> tuple[list[Received | Undecodable], dict[str, int]]:
    seen: list[Received | Undecodable] = []
    async with SignalSubscriber(settings, ["handoff"], group, from_beginning=True) as subscriber:
        stats = await asyncio.wait_for(
            subscriber.run(seen.append, limit=limit, idle_exit=idle_exit), 60
        )
    return seen, stats.as_dict()


# --- tandem subscribe ------------------------------------------------------------------------


async def test_subscriber_dedupes_marks_corrections_and_resumes_after_its_commit(
    delivery_settings: Settings,
) -> None:
    run = uuid.uuid4().hex[:6]
    a, b = handoff_for(f"a{run}"), handoff_for(f"b{run}")
    a2 = a.model_copy(update={"version": 2})
    await produce(
        delivery_settings, a, a, b, a2, revocation_of(a2), ("signals.handoff", b"not a signal")
    )
    group = f"sub-{run}"

    seen, stats = await collect(delivery_settings, group)
    received = [item for item in seen if isinstance(item, Received)]
    mine = [(r.signal.signal_id, r.signal.version, r.status) for r in received]
    assert [m for m in mine if m[0] == a.signal_id] == [
        (a.signal_id, 1, Status.NEW),
        (a.signal_id, 2, Status.CORRECTION),
        (a.signal_id, 3, Status.REVOCATION),
    ]
    assert [m for m in mine if m[0] == b.signal_id] == [(b.signal_id, 1, Status.NEW)]
    assert stats["duplicate"] == 1 and stats["shown"] == 4
    assert [type(i) for i in seen].count(Undecodable) == 1 and stats["undecodable"] == 1

    # The same group resumes after what it committed; a new group starts over.
    c, d, e = handoff_for(f"c{run}"), handoff_for(f"d{run}"), handoff_for(f"e{run}")
    await produce(delivery_settings, c)
    seen, stats = await collect(delivery_settings, group)
    assert [r.signal.signal_id for r in seen if isinstance(r, Received)] == [c.signal_id]

    # --limit: what was fetched beyond the limit is not committed, so the next run has it.
    await produce(delivery_settings, d, e)
    # d and e are keyed by different customers, so they may sit on different partitions and
    # arrive in either order: the first run gets one of them, the resumed run the other.
    seen, _ = await collect(delivery_settings, group, limit=1)
    first_run = [r.signal.signal_id for r in seen if isinstance(r, Received)]
    assert len(first_run) == 1 and first_run[0] in {d.signal_id, e.signal_id}
    seen, _ = await collect(delivery_settings, group)
    second_run = [r.signal.signal_id for r in seen if isinstance(r, Received)]
    assert sorted(first_run + second_run) == sorted([d.signal_id, e.signal_id])

    _, stats = await collect(delivery_settings, f"other-{run}")
    assert stats["shown"] >= 7, "another group sees everything from the beginning"


async def test_subscribe_command_prints_json_lines_and_panels(delivery_settings: Settings) -> None:
    run = uuid.uuid4().hex[:6]
    a = handoff_for(f"cli{run}")
    await produce(delivery_settings, a, a, revocation_of(a))
    env = settings_env(delivery_settings)

    async def tandem(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams.cli", *args, env={**env, "COLUMNS": "140"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await tandem(
        "subscribe", "handoff", "--group", f"cli-{run}", "-b", "--json", "--idle-exit", "2"
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    mine = [line for line in lines if line["signal"]["signal_id"] == a.signal_id]
    assert [(m["status"], m["signal"]["version"]) for m in mine] == [
        ("new", 1),
        ("revocation", 2),
    ]
    assert "offsets committed for group" in err

    code, out, err = await tandem(
        "subscribe", "handoff", "--group", f"cli-pretty-{run}", "-b", "--idle-exit", "2"
    )
    assert code == 0, err
    assert "REVOKED" in out and a.signal_id in out and "recommended" in out

    code, _, err = await tandem("subscribe", "handoff", "--idle-exit", "1")
    assert code == 0, err  # a new group at the newest offset: nothing, and a clean exit

    missing = {**env, "TANDEM_TOPIC_PREFIX": f"nothing{run}."}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "subscribe", "alerts", "--idle-exit", "1",
        env=missing, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "do not exist" in err_bytes.decode() and "tandem topics create" in err_bytes.decode()


# --- webhooks --------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class Receivers:
    """Local HTTP receivers: /flaky fails each signal's first attempt, /down always fails."""

    base: str = ""
    hits: list[Hit] = field(default_factory=list)

    def at(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]


@pytest_asyncio.fixture(loop_scope="session")
async def receivers() -> AsyncIterator[Receivers]:
    state = Receivers()
    tried: set[str] = set()

    async def flaky(request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get(SIGNAL_ID_HEADER, "") + request.headers.get(
            SIGNAL_VERSION_HEADER, ""
        )
        status = 200 if key in tried else 503
        tried.add(key)
        state.hits.append(Hit("/flaky", body, dict(request.headers), status))
        return web.Response(status=status, text="ok" if status == 200 else "warming up")

    async def down(request: web.Request) -> web.Response:
        state.hits.append(Hit("/down", await request.read(), dict(request.headers), 500))
        return web.Response(status=500, text="database unavailable")

    application = web.Application()
    application.router.add_post("/flaky", flaky)
    application.router.add_post("/down", down)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def webhook_config(receivers: Receivers, **retry: Any) -> Any:
    return parse_config(
        {
            "targets": [
                {"url": f"{receivers.base}/flaky", "secret": "flaky-secret",
                 "topics": ["handoff"], "name": "crm"},
                {"url": f"{receivers.base}/down", "secret": "down-secret", "topics": ["alerts"]},
            ],
            "retry": {"max_attempts": 3, "base_delay_s": 0.05, "max_delay_s": 0.2,
                      "timeout_s": 5, **retry},
        },
        "test",
    )  # fmt: skip


def letters_for(signal_id: str) -> Callable[[list[tuple[str | None, Any]]], list[Any]]:
    return lambda messages: [v for k, v in messages if k == signal_id]


async def test_webhook_retries_then_delivers_once_and_dead_letters_a_failing_receiver(
    delivery_settings: Settings, receivers: Receivers
) -> None:
    run = uuid.uuid4().hex[:6]
    handoff = handoff_for(f"w{run}")
    alert = first("handoff_sla_breached").model_copy(
        update={"customer_id": f"w{run}", "signal_id": f"sig_alert_{run}"}
    )
    await produce(delivery_settings, handoff, alert)
    group = f"hooks-{run}"
    config = webhook_config(receivers)

    async with WebhookDelivery(delivery_settings, config, group, from_beginning=True) as delivery:
        stats = await asyncio.wait_for(delivery.run(idle_exit=2.0), 60)

    flaky = [h for h in receivers.at("/flaky") if h.headers[SIGNAL_ID_HEADER] == handoff.signal_id]
    assert [h.status for h in flaky] == [503, 200], "delivered once, after one retry"
    assert [h.headers["X-Tandem-Attempt"] for h in flaky] == ["1", "2"]
    for hit in flaky:
        assert verify("flaky-secret", hit.body, hit.headers[SIGNATURE_HEADER], now=time.time())
        assert not verify("down-secret", hit.body, hit.headers[SIGNATURE_HEADER], now=time.time())
        assert hit.headers[SIGNAL_VERSION_HEADER] == "1"
        assert json.loads(hit.body) == handoff.model_dump(mode="json")
    assert not [h for h in receivers.at("/down") if handoff.signal_id in h.body.decode()], (
        "the alerts receiver does not get hand-offs"
    )

    down = [h for h in receivers.at("/down") if h.headers[SIGNAL_ID_HEADER] == alert.signal_id]
    assert len(down) == 3, "bounded: max_attempts, then the dead letter"
    letters = letters_for(alert.signal_id)(await read_topic(delivery_settings, WEBHOOK_DEADLETTER))
    assert len(letters) == 1
    (letter,) = letters
    assert letter["url"] == f"{receivers.base}/down"
    assert letter["attempts"] == 3 and letter["last_status"] == 500
    assert "database unavailable" in letter["last_error"]
    assert letter["signal"] == alert.model_dump(mode="json")
    assert (letter["signal_id"], letter["version"]) == (alert.signal_id, 1)
    assert stats.delivered >= 1 and stats.dead_lettered >= 1

    # Offsets were committed after success or dead-lettering: the same group sends nothing.
    before = len(receivers.hits)
    async with WebhookDelivery(delivery_settings, config, group) as delivery:
        again = await asyncio.wait_for(delivery.run(idle_exit=2.0), 60)
    assert again.signals == 0 and len(receivers.hits) == before


async def test_webhooks_command_delivers_and_reports(
    delivery_settings: Settings, receivers: Receivers
) -> None:
    run = uuid.uuid4().hex[:6]
    handoff = handoff_for(f"cmd{run}")
    await produce(delivery_settings, handoff)
    targets = [{"url": f"{receivers.base}/flaky", "secret": "cmd-secret", "topics": ["handoff"]}]
    env = {**settings_env(delivery_settings), "TANDEM_WEBHOOKS": json.dumps(targets)}
    env.pop("TANDEM_WEBHOOKS_FILE", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "webhooks", "--group", f"cmd-{run}", "-b",
        "--idle-exit", "2", "--base-delay", "0.05", "--max-delay", "0.1", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["delivered"] >= 1
    mine = [h for h in receivers.at("/flaky") if h.headers[SIGNAL_ID_HEADER] == handoff.signal_id]
    assert [h.status for h in mine] == [503, 200]
    assert verify("cmd-secret", mine[-1].body, mine[-1].headers[SIGNATURE_HEADER], now=time.time())
    assert f"delivered {handoff.signal_id} v1" in err.decode()
    assert os.environ.get("TANDEM_WEBHOOKS") is None, "the test did not leak configuration"
