"""`tandem tail TOPIC`: follow any Tandem topic, pretty or as JSON lines."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from streams.cli import app
from streams.cli._common import check_unreachable, console, fail, run, usage_error
from streams.settings import Settings, get_settings
from streams.topics import CATALOGUE, full_name

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord


def _message_type(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for field in ("type", "signal_type", "reason_code", "kind"):
        if isinstance(value.get(field), str):
            return str(value[field])
    return None


def _mentions_customer(key: str | None, value: Any, customer: str) -> bool:
    if key == customer:
        return True
    if not isinstance(value, dict):
        return False
    if value.get("customer_id") == customer:
        return True
    identity = value.get("identity")
    if isinstance(identity, dict) and customer in identity.values():
        return True
    identities = value.get("identities")
    return isinstance(identities, list) and any(
        customer == i or str(i).endswith(f":{customer}") for i in identities
    )


async def _tail(
    settings: Settings,
    topic: str,
    from_beginning: bool,
    as_json: bool,
    customer: str | None,
    type_filter: str | None,
    limit: int | None,
    idle_exit: float | None,
) -> int:
    consumer = await _started_consumer(settings, topic, from_beginning)
    shown = 0
    idle = 0.0
    try:
        while limit is None or shown < limit:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                idle += 0.5
                if idle_exit is not None and idle >= idle_exit:
                    break
                continue
            idle = 0.0
            for message in (m for messages in batch.values() for m in messages):
                key, value = _decoded(message)
                if customer and not _mentions_customer(key, value, customer):
                    continue
                kind = _message_type(value)
                if type_filter and (kind is None or type_filter not in kind):
                    continue
                shown += 1
                _show(topic, message, key, value, kind, as_json)
                if limit is not None and shown >= limit:
                    break  # out of the whole batch: it may hold several partitions
    finally:
        await consumer.stop()
    return shown


async def _started_consumer(
    settings: Settings, topic: str, from_beginning: bool
) -> AIOKafkaConsumer:
    # Imported here: most commands never touch Kafka, and aiokafka is slow to import.
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        full_name(topic, settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        client_id=f"tandem-tail-{uuid.uuid4().hex[:6]}",
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # a consumer that failed to start still holds its client
        raise
    return consumer


def _decoded(message: ConsumerRecord[bytes, bytes]) -> tuple[str | None, Any]:
    """The message's key and its value as JSON (or as text when it is not JSON)."""
    key = message.key.decode("utf-8", "replace") if message.key else None
    try:
        value: Any = json.loads(message.value) if message.value else None
    except ValueError:
        value = (message.value or b"").decode("utf-8", "replace")
    return key, value


def _show(
    topic: str,
    message: ConsumerRecord[bytes, bytes],
    key: str | None,
    value: Any,
    kind: str | None,
    as_json: bool,
) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "topic": topic,
                    "partition": message.partition,
                    "offset": message.offset,
                    "key": key,
                    "timestamp_ms": message.timestamp,
                    "value": value,
                },
                separators=(",", ":"),
            )
        )
    else:
        console.print(
            f"[dim]{topic}[{message.partition}]@{message.offset}[/] "
            f"[cyan]{escape(key or '-')}[/] [bold]{escape(kind or '?')}[/]"
        )
        console.print_json(data=value) if isinstance(value, dict | list) else console.print(
            escape(str(value))
        )


@app.command()
def tail(
    topic: str = typer.Argument(
        ..., help="a Tandem topic, e.g. signals.handoff (see `tandem topics describe`)"
    ),
    from_beginning: bool = typer.Option(
        False, "--from-beginning", "-b", help="start at the oldest message, not the newest"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    customer: str | None = typer.Option(
        None, "--customer", "-c", help="only messages about this customer id or identifier"
    ),
    type_filter: str | None = typer.Option(
        None, "--type", "-t", help="only messages whose type contains this, e.g. handoff"
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", help="stop after N messages"),
    idle_exit: float | None = typer.Option(
        None, "--idle-exit", help="stop after this many seconds without a message"
    ),
) -> None:
    """Follow a Tandem topic. Ctrl-C stops cleanly.

    Exit codes: 0 stopped (limit, idle or Ctrl-C), 2 unknown topic, 69 Kafka unreachable.
    """
    known = {spec.name for spec in CATALOGUE}
    if topic not in known:
        usage_error(f"unknown topic {topic!r}; Tandem's topics are: {', '.join(sorted(known))}")
    settings = get_settings()
    try:
        run(
            _tail(settings, topic, from_beginning, as_json, customer, type_filter, limit, idle_exit)
        )
    except typer.Exit:
        raise
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot read {topic} from {settings.kafka_bootstrap}: {exc}")
