"""`tandem deadletter list|redrive`: inspect rejected input and re-publish it.

Dead letters live on ``touchpoints.deadletter`` (see `schemas.deadletter.DeadLetter`). Both
commands read that topic from the beginning to its current end, then stop; dead letters with
the same id (a message dead-lettered twice) are shown once.

Redrive re-publishes a dead letter's exact original bytes to its origin topic with its original
key. Input that is still invalid is simply dead-lettered again (under a new id: it has a new
offset); valid input is applied once, since Tandem deduplicates on ``event_id`` — redriving the
same dead letter twice never duplicates anything in a journey.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.decode import ReasonCode
from schemas.deadletter import DeadLetter
from streams.cli import app
from streams.cli._common import (
    check_unreachable,
    console,
    err_console,
    fail,
    progress_for,
    run,
    usage_error,
)
from streams.settings import Settings, get_settings
from streams.topics import CATALOGUE, DEADLETTER, full_name

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

deadletter_app = typer.Typer(
    help="Inspect and re-publish rejected input (the touchpoints.deadletter topic).",
    no_args_is_help=True,
)
app.add_typer(deadletter_app, name="deadletter")

REASON_CODES = [code.value for code in ReasonCode]
REASON_HELP = f"only this reason code: {', '.join(REASON_CODES)}"
ORIGIN_HELP = "only dead letters read from this topic, e.g. touchpoints.sales"


@dataclass
class ReadResult:
    """The dead letters on the topic, deduplicated, in log order."""

    letters: list[DeadLetter]
    messages: int = 0
    duplicates: int = 0
    unreadable: int = 0


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition ids of a topic; `LookupError` if it does not exist."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code") or not described.get("partitions"):
        raise LookupError(f"topic {topic} does not exist (run `tandem topics create`)")
    return sorted(int(p["partition"]) for p in described["partitions"])


async def read_dead_letters(
    settings: Settings,
    on_progress: Callable[[int, int], None] = lambda _done, _total: None,
    idle_timeout_s: float = 15.0,
) -> ReadResult:
    """Every dead letter on the topic from the beginning to its end at the time of the call."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = full_name(DEADLETTER, settings.topic_prefix)
    partitions = await topic_partitions(settings.kafka_bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"tandem-deadletter-{uuid.uuid4().hex[:6]}",
    )
    result = ReadResult(letters=[])
    try:
        await consumer.start()
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        begin = await consumer.beginning_offsets(assigned)
        end = await consumer.end_offsets(assigned)
        total = sum(max(0, end[tp] - begin[tp]) for tp in assigned)
        for tp in assigned:
            consumer.seek(tp, begin[tp])
        remaining = {tp for tp in assigned if end[tp] > begin[tp]}
        seen: set[str] = set()
        done = 0
        last_progress = time.monotonic()
        on_progress(0, total)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, messages in batch.items():
                done += _keep_letters(messages, end[tp], result, seen)
            if batch:
                last_progress = time.monotonic()
                on_progress(done, total)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if remaining and time.monotonic() - last_progress > idle_timeout_s:
                raise TimeoutError(
                    f"no progress reading {topic} for {idle_timeout_s:.0f} s "
                    f"({done} of {total} messages read)"
                )
    finally:
        await consumer.stop()
    return result


def _keep_letters(
    messages: Iterable[ConsumerRecord[bytes, bytes]],
    end: int,
    result: ReadResult,
    seen: set[str],
) -> int:
    """Add the dead letters of `messages` before `end` to `result`, each id once; how many
    messages that was (those at or after `end` arrived after the call began)."""
    read = 0
    for message in messages:
        if message.offset >= end:
            continue
        read += 1
        result.messages += 1
        try:
            letter = DeadLetter.model_validate_json(message.value or b"")
        except ValueError:
            result.unreadable += 1
            continue
        if letter.dead_letter_id in seen:
            result.duplicates += 1
            continue
        seen.add(letter.dead_letter_id)
        result.letters.append(letter)
    return read


def select(
    letters: Iterable[DeadLetter],
    *,
    ids: Sequence[str] = (),
    reason: str | None = None,
    origin_topic: str | None = None,
    topic_prefix: str = "",
) -> list[DeadLetter]:
    """The dead letters matching every given filter (ids: any of them)."""
    origin = origin_topic.removeprefix(topic_prefix) if origin_topic else None
    wanted = set(ids)
    chosen = []
    for letter in letters:
        if wanted and letter.dead_letter_id not in wanted:
            continue
        if reason and letter.reason_code.value != reason:
            continue
        if origin and (letter.origin is None or letter.origin.topic != origin):
            continue
        chosen.append(letter)
    return chosen


def _check_filters(reason: str | None, origin_topic: str | None, settings: Settings) -> None:
    if reason is not None and reason not in REASON_CODES:
        usage_error(f"unknown reason code {reason!r}; reason codes are: {', '.join(REASON_CODES)}")
    if origin_topic is not None:
        known = {spec.name for spec in CATALOGUE}
        if origin_topic.removeprefix(settings.topic_prefix) not in known:
            usage_error(
                f"unknown topic {origin_topic!r}; Tandem's topics are: {', '.join(sorted(known))}"
            )


def _read(settings: Settings) -> ReadResult:
    with progress_for(_progress("reading dead letters"), "deadletter") as progress:
        task = progress.add_task("read", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            return run(read_dead_letters(settings, update))
        except typer.Exit:
            raise
        except Exception as exc:
            check_unreachable(exc, kafka=settings.kafka_bootstrap)
            fail(f"cannot read {DEADLETTER} from {settings.kafka_bootstrap}: {exc}")


def _summary_line(result: ReadResult, shown: int, matched: int) -> str:
    extra = []
    if result.duplicates:
        extra.append(f"{result.duplicates} duplicates folded")
    if result.unreadable:
        extra.append(f"{result.unreadable} unreadable messages skipped")
    more = f" ({', '.join(extra)})" if extra else ""
    return f"{matched} of {len(result.letters)} dead letters match, {shown} shown{more}"


@deadletter_app.command("list")
def list_dead_letters(
    reason: str | None = typer.Option(None, "--reason", "-r", help=REASON_HELP),
    origin_topic: str | None = typer.Option(None, "--origin-topic", help=ORIGIN_HELP),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=1, help="show at most N (the most recent)"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="one JSON array of dead letters (with original bytes) on stdout"
    ),
) -> None:
    """List dead letters: id, when, reason, origin, event; newest last.

    Exit codes: 0 listed, 2 a bad filter, 69 Kafka unreachable.
    """
    settings = get_settings()
    _check_filters(reason, origin_topic, settings)
    result = _read(settings)
    matched = select(
        result.letters,
        reason=reason,
        origin_topic=origin_topic,
        topic_prefix=settings.topic_prefix,
    )
    shown = matched[-limit:] if limit else matched
    if as_json:
        typer.echo(json.dumps([letter.model_dump(mode="json") for letter in shown], indent=2))
        return
    if not shown:
        console.print(_summary_line(result, 0, len(matched)))
        return
    table = Table(title=f"dead letters on {full_name(DEADLETTER, settings.topic_prefix)}")
    for column in ("id", "rejected at", "reason", "type / event id", "key", "why"):
        table.add_column(column, overflow="fold")
    for letter in shown:
        about = " / ".join(x for x in (letter.type, letter.event_id) if x) or "-"
        table.add_row(
            escape(letter.dead_letter_id),
            letter.rejected_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"[red]{letter.reason_code.value}[/]",
            escape(about),
            escape(letter.origin.key or "-") if letter.origin else "-",
            escape(letter.reason[:160]),
        )
    console.print(table)
    counts = Counter(letter.reason_code.value for letter in matched)
    console.print(", ".join(f"{code}: {n}" for code, n in counts.most_common()))
    console.print(_summary_line(result, len(shown), len(matched)))


async def _redrive(
    settings: Settings, letters: list[DeadLetter], advance: Callable[[], None]
) -> None:
    from events.publisher import TouchpointPublisher

    async with TouchpointPublisher(
        settings.kafka_bootstrap, settings.topic_prefix, client_id="tandem-redrive"
    ) as publisher:
        for letter in letters:
            if letter.origin is None:
                continue  # nowhere to send it back to (filtered out by the caller)
            await publisher.publish_raw(
                letter.original_bytes(),
                full_name(letter.origin.topic, settings.topic_prefix),
                letter.original_key(),
            )
            advance()


def _republish(settings: Settings, chosen: list[DeadLetter]) -> None:
    """Re-publish `chosen` under a progress bar; a Kafka failure ends the command."""
    with progress_for(_progress("redriving"), "deadletter") as progress:
        task = progress.add_task("redrive", total=len(chosen))
        try:
            run(_redrive(settings, chosen, lambda: progress.advance(task)))
        except typer.Exit:
            raise
        except Exception as exc:
            check_unreachable(exc, kafka=settings.kafka_bootstrap)
            fail(f"cannot publish to {settings.kafka_bootstrap}: {exc}")


def _print_redrive(
    chosen: Sequence[DeadLetter],
    targets: Counter[str],
    without_origin: Sequence[DeadLetter],
    dry_run: bool,
) -> None:
    verb = "would redrive" if dry_run else "redrove"
    where = ", ".join(f"{t} ({n})" for t, n in targets.items()) or "nothing to redrive"
    console.print(f"{verb} {len(chosen)} dead letter(s): {escape(where)}")
    if dry_run:
        for letter in chosen:
            console.print(
                f"  {escape(letter.dead_letter_id)}  {letter.reason_code.value}  "
                f"{escape(letter.event_id or '-')}"
            )
    if without_origin:
        console.print(f"  skipped {len(without_origin)} without an origin topic")


@deadletter_app.command("redrive")
def redrive(
    ids: list[str] = typer.Option(
        [], "--id", help="a dead letter id (repeatable), as shown by `tandem deadletter list`"
    ),
    reason: str | None = typer.Option(None, "--reason", "-r", help=REASON_HELP),
    origin_topic: str | None = typer.Option(None, "--origin-topic", help=ORIGIN_HELP),
    all_: bool = typer.Option(False, "--all", help="every dead letter (with the other filters)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be re-published"),
    as_json: bool = typer.Option(False, "--json", help="print the outcome as JSON"),
) -> None:
    """Re-publish dead letters' original bytes to their origin topic, with their original key.

    Select with --id (repeatable), --reason, --origin-topic or --all.
    Input that is still invalid is dead-lettered again (under a new id).
    Valid input is applied once (Tandem deduplicates on event_id),
    so redriving twice is harmless.

    Exit codes: 0 redriven, 1 an --id was not found or publishing failed, 2 a bad filter,
    69 Kafka unreachable.
    """
    settings = get_settings()
    if not (ids or reason or origin_topic or all_):
        usage_error("choose what to redrive: --id ID, --reason CODE, --origin-topic TOPIC or --all")
    _check_filters(reason, origin_topic, settings)
    result = _read(settings)
    chosen = select(
        result.letters,
        ids=ids,
        reason=reason,
        origin_topic=origin_topic,
        topic_prefix=settings.topic_prefix,
    )
    missing = sorted(set(ids) - {letter.dead_letter_id for letter in chosen}) if ids else []
    without_origin = [letter for letter in chosen if letter.origin is None]
    chosen = [letter for letter in chosen if letter.origin is not None]
    targets = Counter(letter.origin.topic for letter in chosen if letter.origin)
    if not dry_run and chosen:
        _republish(settings, chosen)
    outcome = {
        "dry_run": dry_run,
        "redriven": len(chosen),
        "ids": [letter.dead_letter_id for letter in chosen],
        "topics": dict(targets),
        "skipped_without_origin": [letter.dead_letter_id for letter in without_origin],
        "not_found": missing,
    }
    if as_json:
        typer.echo(json.dumps(outcome, indent=2))
    else:
        _print_redrive(chosen, targets, without_origin, dry_run)
    if missing:
        fail(f"no dead letter with id {', '.join(missing)}")
