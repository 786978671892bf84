"""`tandem demo`: the whole pipeline on this machine, with sample journeys (`make demo`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel

from streams.cli import app
from streams.cli._common import console, fail
from streams.settings import Settings, get_settings
from streams.topics import HANDOFF, NURTURE, full_name


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ),
    )


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    start = log_path.stat().st_size if log_path.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_bytes()[start:].decode("utf-8", "replace") if log_path.exists() else ""
        if "Worker]: Ready" in text:
            return
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited; see {log_path}")
        time.sleep(0.3)
    raise RuntimeError(f"the worker was not ready within {timeout:.0f} s; see {log_path}")


async def _publish(settings: Settings, documents: list[dict[str, Any]]) -> int:
    from events import parse_touchpoint
    from events.publisher import TouchpointPublisher

    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in documents:
            await publisher.publish(parse_touchpoint(document))
        # One broken message, to show that invalid input is dead-lettered, never lost.
        await publisher.publish_raw(
            b'{"event_id": "demo-broken", "type": "marketing.page_viewed"',
            full_name("touchpoints.marketing", settings.topic_prefix),
            b"demo-broken",
        )
    return len(documents) + 1


def _show_handoff(signal_doc: dict[str, Any]) -> None:
    scores = signal_doc.get("scores", {})
    lines = [
        f"[bold]{signal_doc.get('customer_id')}[/]  stage {signal_doc.get('stage')}  "
        f"version {signal_doc.get('version')}",
        f"identities: {', '.join(signal_doc.get('identities', []))}",
        f"scores: {json.dumps(scores)[:200]}",
    ]
    seen = signal_doc.get("messages_seen") or signal_doc.get("campaigns") or []
    if seen:
        lines.append(f"messages seen: {json.dumps(seen)[:200]}")
    content = signal_doc.get("recommended_content") or []
    if content:
        lines.append(f"recommended next: {json.dumps(content)[:200]}")
    console.print(
        Panel("\n".join(lines), title=f"hand-off {signal_doc.get('signal_id')}", expand=False)
    )


async def _follow_signals(settings: Settings, seconds: float | None) -> tuple[int, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        full_name(HANDOFF, settings.topic_prefix),
        full_name(NURTURE, settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    handoffs = nurtures = 0
    started = time.monotonic()
    try:
        while seconds is None or time.monotonic() - started < seconds:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    doc = json.loads(message.value or b"{}")
                    if tp.topic.endswith(HANDOFF):
                        handoffs += 1
                        if doc.get("signal_type") == "handoff":
                            _show_handoff(doc)
                        else:
                            console.print(f"{doc.get('signal_type')}: {doc.get('signal_id')}")
                    else:
                        nurtures += 1
                        console.print(
                            f"[dim]nurture[/] {doc.get('customer_id')}: track "
                            f"{doc.get('track')} — {doc.get('reason')}"
                        )
    finally:
        await consumer.stop()
    return handoffs, nurtures


@app.command()
def demo(
    publish_only: bool = typer.Option(
        False, "--publish-only", help="only publish the sample journeys (services run elsewhere)"
    ),
    seconds: float | None = typer.Option(
        None, "--seconds", help="stop by itself after this long (default: run until Ctrl-C)"
    ),
) -> None:
    """Start Kafka, Redis and a worker, publish sample journeys, print signals as they fire."""
    from streams import infra
    from streams.kafka_admin import create_topics
    from streams.samples import demo_journeys

    settings = get_settings()
    documents = demo_journeys(datetime.now(UTC), prefix=f"demo{int(time.time())}")
    if publish_only:
        asyncio.run(create_topics(settings))
        count = asyncio.run(_publish(settings, documents))
        console.print(f"published {count} messages")
        return

    log_path = settings.data_dir / "logs" / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    status = None
    interrupted = False
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        console.rule("[bold]Tandem demo")
        try:
            status = infra.up(settings, progress=lambda line: console.print(f"  {line}"))
        except infra.InfraError as exc:
            fail(str(exc))
        for service in status.services:
            how = "started" if service.started else "reused"
            console.print(f"  {service.name}: {how} at {service.address} (log {service.log_path})")
        created = asyncio.run(create_topics(settings))
        console.print(f"  topics: {sum(1 for s in created.values() if s == 'created')} created")
        with console.status("starting the worker…"):
            worker = _start_worker(settings, log_path)
            _wait_ready(worker, log_path, timeout=120)
        console.print(f"  worker: PID {worker.pid} (log {log_path})")
        count = asyncio.run(_publish(settings, documents))
        console.print(f"  published {count} touchpoints for 5 people (+1 broken message)\n")
        ada = next(d["identity"]["email"] for d in documents if "email" in d.get("identity", {}))
        console.print(
            Panel(
                f"tandem journey {ada}   one journey, every detail\n"
                "tandem tail signals.handoff -b       every hand-off so far\n"
                "tandem deadletter list               what was rejected, and why\n"
                "tandem topics describe               the topics and their settings\n"
                f"worker log: {log_path}",
                title="where to look next (in another terminal, while the demo runs)",
                expand=False,
            )
        )
        console.rule("signals as they fire (Ctrl-C to stop)")
        handoffs, nurtures = asyncio.run(_follow_signals(settings, seconds))
        console.print(f"\n{handoffs} hand-off and {nurtures} nurture signals")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        if worker is not None and worker.poll() is None:
            console.print("stopping the worker…")
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if status is not None and any(s.started for s in status.services):
            console.print("stopping what the demo started…")
            infra.down(settings)
    if interrupted:
        raise typer.Exit(0)
