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
from streams.topics import HANDOFF, NURTURE, full_name, spec


def _interrupt(*_: object) -> None:
    # SIGTERM (docker stop, a supervisor) stops the demo like Ctrl-C: cleanly.
    raise KeyboardInterrupt


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
    firm = signal_doc.get("firmographics") or {}
    who = ", ".join(str(v) for k, v in firm.items() if v and k in ("job_title", "company"))
    lines = [
        f"[bold]{signal_doc.get('customer_id')}[/] {who}  ({signal_doc.get('reason')})",
        f"identities: {', '.join(signal_doc.get('identities', []))}",
        f"engagement {signal_doc['engagement']['score']}, fit {signal_doc['fit']['score']} "
        f"(persona {signal_doc.get('persona') or '-'})",
        f"campaigns: {', '.join(signal_doc.get('campaigns') or []) or '-'}",
        f"messages marketing promised: {', '.join(signal_doc.get('messages') or []) or '-'}",
        "send next: "
        + (", ".join(c["title"] for c in signal_doc.get("recommended_content") or []) or "-"),
    ]
    console.print(
        Panel("\n".join(lines), title=f"hand-off {signal_doc.get('signal_id')}", expand=False)
    )


async def _signal_consumer(settings: Settings) -> Any:
    """A consumer positioned at the current end of the signal topics (before publishing)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    partitions = []
    for topic in (HANDOFF, NURTURE):
        name = full_name(topic, settings.topic_prefix)
        count = spec(topic).partition_count(settings.partitions)
        partitions += [TopicPartition(name, p) for p in range(count)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)  # resolve "end" now, not when the first fetch happens
    return consumer


async def _follow_signals(consumer: Any, seconds: float | None) -> tuple[int, int, int]:
    handoffs = nurtures = corrections = 0
    started = time.monotonic()
    try:
        while seconds is None or time.monotonic() - started < seconds:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    doc = json.loads(message.value or b"{}")
                    kind = doc.get("signal_type")
                    if doc.get("version", 1) > 1:
                        corrections += 1
                        console.print(
                            f"[yellow]correction[/] {kind} {doc.get('signal_id')} → version "
                            f"{doc.get('version')} (a late touchpoint changed what it says)"
                        )
                    elif tp.topic.endswith(HANDOFF) and kind == "handoff":
                        handoffs += 1
                        _show_handoff(doc)
                    elif tp.topic.endswith(HANDOFF):
                        console.print(f"{kind}: {doc.get('signal_id')}")
                    else:
                        nurtures += 1
                        console.print(
                            f"[dim]nurture[/] {doc.get('customer_id')}: track "
                            f"[bold]{doc.get('track')}[/] — {doc.get('reason')}"
                        )
    except asyncio.CancelledError:
        pass
    return handoffs, nurtures, corrections


async def _publish_and_follow(
    settings: Settings, documents: list[dict[str, Any]], log_path: Path, seconds: float | None
) -> None:
    consumer = await _signal_consumer(settings)
    try:
        count = await _publish(settings, documents)
        console.print(f"  published {count} touchpoints for 5 people (+1 broken message)\n")
        ada = next(d["identity"]["email"] for d in documents if "email" in d.get("identity", {}))
        console.print(
            Panel(
                f"tandem journey {ada}   one journey, every detail\n"
                "tandem tail signals.handoff -b       every hand-off so far\n"
                "tandem deadletter list               what was rejected, and why\n"
                "tandem kpis                          the shared funnel and KPIs\n"
                "tandem topics describe               the topics and their settings\n"
                f"worker log: {log_path}",
                title="where to look next (in another terminal, while the demo runs)",
                expand=False,
            )
        )
        console.rule("signals as they fire (Ctrl-C to stop)")
        handoffs, nurtures, corrections = await _follow_signals(consumer, seconds)
        console.print(
            f"\n{handoffs} hand-offs, {nurtures} nurture signals, {corrections} corrections"
        )
    finally:
        await consumer.stop()


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
    previous = signal.signal(signal.SIGTERM, _interrupt)
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
        asyncio.run(_publish_and_follow(settings, documents, log_path, seconds))
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
