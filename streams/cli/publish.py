"""`tandem publish FILE.jsonl`: validate touchpoints line by line and publish the valid ones.

Every line is decoded exactly as the worker will decode it (`events.decode_touchpoint`), so
what this command rejects the worker would have dead-lettered. Valid touchpoints go to their
domain's topic keyed by their strongest identifier (`events.publisher`). Publishing a file twice
is harmless: ids are never invented and Tandem deduplicates on ``event_id``.

Exit codes (docs/cli.md): 0 all lines accepted (or ``--allow-rejects``), 1 some lines rejected
or the broker refused them, 2 the input could not be read, 69 Kafka is unreachable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from events.vocabulary import Touchpoint
from streams.cli import app
from streams.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    check_unreachable,
    console,
    err_console,
    fail,
    progress_for,
    run,
)
from streams.settings import Settings, get_settings

EXIT_REJECTED = EXIT_FAILED
EXIT_ERROR = EXIT_USAGE


class _Publisher(Protocol):
    async def __aenter__(self) -> Any: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
    async def publish(self, touchpoint: Any) -> Any: ...
    async def flush(self) -> None: ...


def _kafka_publisher(settings: Settings) -> _Publisher:
    from events.publisher import TouchpointPublisher

    return TouchpointPublisher(
        settings.kafka_bootstrap, settings.topic_prefix, client_id="tandem-publish"
    )


publisher_factory: Callable[[Settings], _Publisher] = _kafka_publisher
"""How `publish` gets its publisher (tests replace it with an in-memory one)."""


@dataclass
class RejectedLine:
    """One rejected input line."""

    line: int
    code: str
    message: str
    errors: list[str]
    event_id: str | None
    type: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "event_id": self.event_id,
            "type": self.type,
            "message": self.message,
            "errors": self.errors,
        }


@dataclass
class PublishSummary:
    """What happened to every line of the input."""

    source: str
    dry_run: bool
    lines: int = 0
    accepted: int = 0
    published: int = 0
    duplicates: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, list[RejectedLine]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set, repr=False)

    @property
    def rejected(self) -> int:
        return sum(len(lines) for lines in self.by_reason.values())

    def accept(self, event_id: str, topic: str) -> None:
        self.accepted += 1
        self.by_topic[topic] = self.by_topic.get(topic, 0) + 1
        if event_id in self._seen:
            self.duplicates += 1
        self._seen.add(event_id)

    def reject(self, rejected: RejectedLine) -> None:
        self.by_reason.setdefault(rejected.code, []).append(rejected)

    def as_dict(self, examples: int) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "lines": self.lines,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "published": self.published,
            "duplicate_event_ids": self.duplicates,
            "topics": dict(sorted(self.by_topic.items())),
            "rejections": {
                code: {
                    "count": len(lines),
                    "examples": [line.as_dict() for line in lines[:examples]],
                }
                for code, lines in sorted(self.by_reason.items())
            },
        }


class InputError(Exception):
    """The input could not be read."""


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line without its line ending or b"" if blank, bytes consumed)."""
    lines = iter(stream)
    number = 0
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except OSError as exc:
            raise InputError(exc.strerror or str(exc)) from exc
        number += 1
        content = line.rstrip(b"\r\n")
        yield number, (content if content.strip() else b""), len(line)


def open_input(file: str) -> tuple[IO[bytes], int | None, str]:
    """`file` (or stdin for ``-``) opened for reading: stream, size if known, display name.

    An unreadable file is a one-line error (exit code 2).
    """
    if file == "-":
        return sys.stdin.buffer, None, "stdin"
    try:
        # Returned open: the command reads it to the end and the process then exits.
        stream = Path(file).open("rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_ERROR)
    return stream, os.fstat(stream.fileno()).st_size, file


class LineSummary(Protocol):
    """What counts lines and collects rejections (publish and replay summaries)."""

    lines: int

    def reject(self, rejected: RejectedLine) -> None: ...


def decode_lines(
    stream: IO[bytes],
    summary: LineSummary,
    advance: Callable[[int], None],
    *,
    now: datetime | None = None,
) -> Iterator[Touchpoint]:
    """The valid touchpoints of a JSON Lines stream, in order; rejections go to `summary`.

    `now` is when the lines count as received (default: the clock when decoding starts); an
    event more than a day after it is rejected as `out_of_range`.
    """
    from events import Rejection, decode_touchpoint

    received = now if now is not None else datetime.now(UTC)
    for number, content, consumed in iter_lines(stream):
        advance(consumed)
        if not content:
            continue  # blank lines are not touchpoints
        summary.lines += 1
        decoded = decode_touchpoint(content, now=received)
        if isinstance(decoded, Rejection):
            summary.reject(
                RejectedLine(
                    number,
                    decoded.code.value,
                    decoded.message,
                    list(decoded.errors),
                    decoded.event_id,
                    decoded.type,
                )
            )
            continue
        yield decoded


def decode_segment_lines(
    stream: IO[bytes],
    summary: LineSummary,
    advance: Callable[[int], None],
    *,
    source: str,
    now: datetime | None = None,
) -> Iterator[Touchpoint]:
    """The touchpoints of a JSON Lines stream of Segment calls (one call or one
    ``{"batch": [...]}`` a line), mapped by `events.segment`; rejections go to `summary`."""
    from events import Rejection
    from events.segment import decode_segment

    received = now if now is not None else datetime.now(UTC)
    for number, content, consumed in iter_lines(stream):
        advance(consumed)
        if not content:
            continue
        decoded = decode_segment(content, source=source, now=received)
        outcomes = [decoded] if isinstance(decoded, Rejection) else [o.outcome for o in decoded]
        for outcome in outcomes:
            summary.lines += 1
            if isinstance(outcome, Rejection):
                summary.reject(
                    RejectedLine(
                        number,
                        outcome.code.value,
                        outcome.message,
                        list(outcome.errors),
                        outcome.event_id,
                        outcome.type,
                    )
                )
                continue
            yield outcome


async def publish_stream(
    stream: IO[bytes],
    summary: PublishSummary,
    publisher: _Publisher | None,
    topic_prefix: str,
    advance: Callable[[int], None] = lambda _n: None,
    *,
    segment_source: str | None = None,
) -> PublishSummary:
    """Validate every line of `stream`; publish the valid ones (unless `publisher` is None).

    With `segment_source`, lines are Segment calls published as from that source."""
    from events.topics import topic_for

    touchpoints = (
        decode_lines(stream, summary, advance)
        if segment_source is None
        else decode_segment_lines(stream, summary, advance, source=segment_source)
    )
    for decoded in touchpoints:
        summary.accept(decoded.event_id, topic_for(decoded.type, topic_prefix))
        if publisher is not None:
            await publisher.publish(decoded)
            summary.published += 1
    if publisher is not None:
        await publisher.flush()
    return summary


def _progress(dry_run: bool) -> Progress:
    return Progress(
        TextColumn("[bold]validating[/]" if dry_run else "[bold]publishing[/]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]} lines"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


async def _run(
    source: str,
    stream: IO[bytes],
    total: int | None,
    dry_run: bool,
    settings: Settings,
    segment_source: str | None = None,
) -> PublishSummary:
    summary = PublishSummary(source=source, dry_run=dry_run)
    with progress_for(_progress(dry_run), "publish", "bytes") as progress:
        task = progress.add_task("lines", total=total, lines=0)

        def advance(n: int) -> None:
            progress.update(task, advance=n, lines=summary.lines)

        if dry_run:
            return await publish_stream(
                stream, summary, None, settings.topic_prefix, advance, segment_source=segment_source
            )
        async with publisher_factory(settings) as publisher:
            await publish_stream(
                stream,
                summary,
                publisher,
                settings.topic_prefix,
                advance,
                segment_source=segment_source,
            )
    return summary


def _print_summary(summary: PublishSummary, examples: int) -> None:
    verb = "would publish" if summary.dry_run else "published"
    topics = ", ".join(f"{t} ({n})" for t, n in sorted(summary.by_topic.items())) or "nothing"
    style = "green" if not summary.rejected else "yellow"
    console.print(
        f"[bold]{escape(summary.source)}[/]: {summary.lines} touchpoints, "
        f"[{style}]{summary.accepted} accepted[/], "
        f"[{'red' if summary.rejected else 'green'}]{summary.rejected} rejected[/]"
    )
    console.print(f"  {verb}: {escape(topics)}")
    if summary.duplicates:
        console.print(
            f"  {summary.duplicates} repeated event_id(s) — harmless, Tandem keeps each event once"
        )
    for code, lines in sorted(summary.by_reason.items()):
        console.print(f"  [red]{code}[/] ({len(lines)}):")
        for line in lines[:examples]:
            about = f" {line.event_id}" if line.event_id else ""
            console.print(f"    line {line.line}{escape(about)}: {escape(line.message)}")
            for error in line.errors[1:4]:
                console.print(f"      {escape(error)}")
        if len(lines) > examples:
            more = ", ".join(str(line.line) for line in lines[examples : examples + 10])
            console.print(f"    … {len(lines) - examples} more (lines {more}…)")


@app.command()
def publish(
    file: str = typer.Argument(
        ...,
        metavar="FILE.jsonl",
        help="JSON Lines, one touchpoint per line (blank lines are skipped); `-` reads stdin",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate only; publish nothing"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    allow_rejects: bool = typer.Option(
        False, "--allow-rejects", help="exit 0 even if some lines were rejected"
    ),
    examples: int = typer.Option(
        3, "--examples", min=0, help="rejected lines to show per reason code"
    ),
    input_format: str = typer.Option(
        "tandem",
        "--format",
        help="tandem: touchpoints; segment: Segment track/identify/page calls or batches, "
        "mapped as docs/segment.md says",
    ),
    segment_source: str = typer.Option(
        "segment", "--source", help="with --format segment: the touchpoints' source"
    ),
) -> None:
    """Validate touchpoints from a JSON Lines file and publish the valid ones to Kafka.

    Each line is checked exactly as Tandem's worker checks it.
    Valid ones go to touchpoints.marketing or touchpoints.sales by type,
    keyed by the person's strongest identifier.
    Rejected lines are summarised by reason code (see docs/contract.md).
    Publishing a file twice is harmless: Tandem deduplicates on event_id.
    With --format segment each line is a Segment call or batch (docs/segment.md).

    Exit codes: 0 all accepted, 1 some lines rejected or refused by the broker,
    2 unreadable input, 69 Kafka unreachable.
    """
    if input_format not in ("tandem", "segment"):
        fail(f"--format is tandem or segment, not {input_format!r}", EXIT_ERROR)
    settings = get_settings()
    stream, total, source = open_input(file)
    from_segment = segment_source if input_format == "segment" else None
    try:
        summary = run(_run(source, stream, total, dry_run, settings, from_segment))
    except typer.Exit:
        raise
    except InputError as exc:
        fail(f"cannot read {source}: {exc}", EXIT_ERROR)
    except Exception as exc:  # broker trouble: one clear line
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot publish to {settings.kafka_bootstrap}: {exc}", EXIT_FAILED)
    finally:
        if file != "-":
            stream.close()
    if as_json:
        typer.echo(json.dumps(summary.as_dict(examples), indent=2))
    else:
        _print_summary(summary, examples)
    if summary.rejected and not allow_rejects:
        raise typer.Exit(EXIT_REJECTED)
