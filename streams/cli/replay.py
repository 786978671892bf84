"""`tandem replay FILE.jsonl`: the journey engine over a file, offline — no broker, no Redis.

Every line is decoded exactly as the worker decodes it (`events.decode_touchpoint`); invalid
lines are counted by reason code, as the worker would dead-letter them. The valid touchpoints
run, in file order, through the same pure core the worker uses (`streams.journey.replay`:
identity resolution, journey moves, the fold and signal reconciliation) under the configured
playbook. Use it to try a playbook change on an export before deploying it, or to check what
Tandem would have signalled for a batch of history.

Exit codes (docs/cli.md): 0 replayed (rejected lines are reported, not fatal unless
``--strict``), 1 lines were rejected and ``--strict`` was given, 2 the input, playbook, output
or an option was unusable. Replay needs no Kafka or Redis, so never exits 69.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.vocabulary import Touchpoint
from streams import journey as core
from streams import workflow
from streams.cli import app
from streams.cli._backtest import run_compare
from streams.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    TIME_FORMATS,
    PlainProgress,
    console,
    err_console,
    fail,
    parse_time,
    parse_tz,
    progress_for,
)
from streams.cli.publish import InputError, RejectedLine, decode_lines, open_input
from streams.collector import freeze_survivors
from streams.playbooks import load_configured_playbook
from streams.settings import get_settings

EXIT_REJECTED = EXIT_FAILED
EXIT_ERROR = EXIT_USAGE

STAGE_ORDER = [stage.value for stage in core.Stage]


@dataclass
class ReplaySummary:
    """What a replay read, and what the journeys and signals came to."""

    source: str
    playbook_version: str
    as_of: datetime | None = None
    batch: int = 1
    """Touchpoints resolved before each customer's are folded together (`--batch`)."""
    lines: int = 0
    touchpoints: int = 0
    applied: int = 0
    duplicates: int = 0
    merges: int = 0
    refused_identifiers: int = 0
    journeys: int = 0
    ledger_touchpoints: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    signals_by_type: Counter[str] = field(default_factory=Counter)
    signals_by_rule: Counter[str] = field(default_factory=Counter)
    corrections: int = 0
    unmatched_responses: int = 0
    """Hand-off accepts/rejects naming no current hand-off of their journey (not applied)."""
    by_reason: dict[str, list[RejectedLine]] = field(default_factory=dict)
    out: str | None = None

    @property
    def rejected(self) -> int:
        return sum(len(lines) for lines in self.by_reason.values())

    def reject(self, rejected: RejectedLine) -> None:
        self.by_reason.setdefault(rejected.code, []).append(rejected)

    def count(self, result: workflow.ReplayResult) -> None:
        """What the workflow did, and its signals by type, by rule and the corrections."""
        self.applied = result.applied
        self.duplicates = result.duplicates
        self.merges = result.moves
        self.refused_identifiers = len(result.refused)
        for signal in result.signals:
            self.signals_by_type[signal.signal_type] += 1
            rule = signal.rule if isinstance(signal, core.NurtureSignal) else signal.signal_type
            self.signals_by_rule[rule] += 1
            if signal.version > 1 and signal.signal_type not in (
                "handoff_revoked",
                "nurture_withdrawn",
            ):
                self.corrections += 1

    def as_dict(self, examples: int) -> dict[str, Any]:
        """The summary `--json` prints."""
        return {
            "source": self.source,
            "playbook": self.playbook_version,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "batch": self.batch,
            "lines": self.lines,
            "touchpoints": self.touchpoints,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejections": {
                code: {
                    "count": len(lines),
                    "examples": [line.as_dict() for line in lines[:examples]],
                }
                for code, lines in sorted(self.by_reason.items())
            },
            "journeys": self.journeys,
            "ledger_touchpoints": self.ledger_touchpoints,
            "merges": self.merges,
            "refused_identifiers": self.refused_identifiers,
            "stages": {s: self.stages[s] for s in STAGE_ORDER if self.stages[s]},
            "unmatched_handoff_responses": self.unmatched_responses,
            "signals": {
                "total": sum(self.signals_by_type.values()),
                "by_type": dict(sorted(self.signals_by_type.items())),
                "by_rule": dict(sorted(self.signals_by_rule.items())),
                "corrections": self.corrections,
            },
            "out": self.out,
        }


def decoded_touchpoints(
    stream: IO[bytes], summary: ReplaySummary, advance: Callable[[int], None] = lambda _n: None
) -> Iterator[Touchpoint]:
    """The valid touchpoints of a JSON Lines stream, in order; rejections go to `summary`."""
    # A replay "as of" a later time receives the file then (else: now, by the clock).
    received = max(datetime.now(UTC), summary.as_of) if summary.as_of else None
    for decoded in decode_lines(stream, summary, advance, now=received):
        summary.touchpoints += 1
        yield decoded


def _file_name(customer_id: str) -> str:
    # Customer ids are cus_<hex> or "ledger"; anything else is made safe for a file name.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", customer_id) + ".json"


def replay_stream(
    stream: IO[bytes],
    summary: ReplaySummary,
    playbook: core.Playbook,
    *,
    out: Path | None = None,
    progress: Progress | PlainProgress | None = None,
    total: int | None = None,
    batch: int = 1,
) -> workflow.ReplayResult:
    """Replay a JSON Lines stream through the pure core, `batch` touchpoints at a time
    (`streams.workflow.replay`); fill `summary`, write `out`."""
    task = progress.add_task("replaying", total=total, lines=0) if progress else None

    def advance(n: int) -> None:
        if progress is not None and task is not None:
            progress.update(task, advance=n, lines=summary.lines)

    summary.batch = batch
    result = workflow.replay(
        decoded_touchpoints(stream, summary, advance), playbook, now=summary.as_of, batch=batch
    )
    summary.count(result)
    journeys_dir = None
    if out is not None:
        journeys_dir = out / "journeys"
        journeys_dir.mkdir(parents=True, exist_ok=True)
        with (out / "signals.jsonl").open("w", encoding="utf-8") as signals_file:
            for signal in result.signals:
                signals_file.write(signal.model_dump_json() + "\n")
    snapshots = (
        progress.add_task("journeys", total=len(result.records), lines=0) if progress else None
    )
    for customer_id, record in sorted(result.records.items()):
        if progress is not None and snapshots is not None:
            progress.update(snapshots, advance=1)
        snapshot = core.snapshot(record, playbook, as_of=summary.as_of)
        if customer_id == core.LEDGER_CUSTOMER:
            # Spend and cost about no person: not a customer journey, counted apart.
            summary.ledger_touchpoints = snapshot.counts.touchpoints
        else:
            summary.journeys += 1
            summary.stages[snapshot.stage.value] += 1
            summary.unmatched_responses += len(snapshot.unmatched_responses)
        if journeys_dir is not None:
            (journeys_dir / _file_name(customer_id)).write_text(
                snapshot.model_dump_json(indent=2) + "\n", encoding="utf-8"
            )
    return result


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]} lines"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _print_summary(summary: ReplaySummary, examples: int) -> None:
    as_of = f", timers as of {summary.as_of.isoformat()}" if summary.as_of else ""
    if summary.batch > 1:
        as_of += f", in batches of {summary.batch:,}"
    console.print(
        f"[bold]{escape(summary.source)}[/] under playbook "
        f"[bold]{escape(summary.playbook_version)}[/]{as_of}: {summary.lines} lines, "
        f"[green]{summary.touchpoints} touchpoints[/] "
        f"({summary.applied} applied, {summary.duplicates} duplicates), "
        f"[{'red' if summary.rejected else 'green'}]{summary.rejected} rejected[/]"
    )
    console.print(
        f"  {summary.journeys} journeys, {summary.merges} identity merges"
        + (
            f", {summary.ledger_touchpoints} ledger record(s) (spend, cost)"
            if summary.ledger_touchpoints
            else ""
        )
        + (
            f", {summary.refused_identifiers} identifiers refused by the playbook's guards"
            if summary.refused_identifiers
            else ""
        )
    )
    stages = Table(title="customers per stage")
    stages.add_column("stage")
    stages.add_column("customers", justify="right")
    for stage in STAGE_ORDER:
        if summary.stages[stage]:
            stages.add_row(stage, str(summary.stages[stage]))
    signals = Table(title="signals")
    signals.add_column("signal")
    signals.add_column("count", justify="right")
    for rule, count in sorted(summary.signals_by_rule.items()):
        signals.add_row(rule, str(count))
    signals.add_row("[bold]total[/]", f"[bold]{sum(summary.signals_by_type.values())}[/]")
    console.print(stages)
    console.print(signals)
    if summary.corrections:
        console.print(f"  {summary.corrections} signal correction(s) (a later version of an id)")
    if summary.unmatched_responses:
        console.print(
            f"  {summary.unmatched_responses} hand-off answer(s) naming no current hand-off "
            "(recorded on the journey, not applied)"
        )
    for code, lines in sorted(summary.by_reason.items()):
        console.print(f"  [red]{code}[/] ({len(lines)}):")
        for line in lines[:examples]:
            about = f" {line.event_id}" if line.event_id else ""
            console.print(f"    line {line.line}{escape(about)}: {escape(line.message)}")
        if len(lines) > examples:
            console.print(f"    … {len(lines) - examples} more")
    if summary.out:
        written = summary.journeys + (1 if summary.ledger_touchpoints else 0)
        where = escape(summary.out)
        console.print(
            f"  wrote {written} snapshots to {where}/journeys/ and the signals to "
            f"{where}/signals.jsonl"
        )


def _parse_as_of(value: str | None, tz: str | None) -> datetime | None:
    return None if value is None else parse_time(value, "--as-of", parse_tz(tz))


def _load(path: Path | None) -> core.Playbook:
    settings = get_settings()
    if path is not None:
        settings = settings.model_copy(update={"playbook": path})
    try:
        return load_configured_playbook(settings)
    except Exception as exc:  # missing file or invalid rules: one line, says which
        fail(f"cannot load the playbook: {exc}", EXIT_ERROR)


def _compare(
    stream: IO[bytes],
    summary: ReplaySummary,
    total: int | None,
    old: core.Playbook,
    new: core.Playbook,
    as_json: bool,
    examples: int,
) -> None:
    """Read the input once, then backtest `new` against `old` on its touchpoints."""
    try:
        with progress_for(_progress(), "replay", "bytes") as progress:
            task = progress.add_task("reading", total=total, lines=0)

            def advance(n: int) -> None:
                progress.update(task, advance=n, lines=summary.lines)

            touchpoints = list(decoded_touchpoints(stream, summary, advance))
    except InputError as exc:
        fail(f"cannot read {summary.source}: {exc}", EXIT_ERROR)
    kept = ("source", "lines", "touchpoints", "rejected", "rejections", "as_of")
    read = {key: value for key, value in summary.as_dict(examples).items() if key in kept}
    run_compare(touchpoints, old, new, as_of=summary.as_of, source=summary.source,
                as_json=as_json, summary=read)  # fmt: skip
    if summary.rejected and not as_json:
        console.print(f"  [red]{summary.rejected} line(s) rejected[/] (run without --compare "
                      "to see why)")  # fmt: skip


def _open_replay(
    file: str, playbook: core.Playbook, as_of: datetime | None, out: Path | None
) -> tuple[IO[bytes], int | None, ReplaySummary]:
    """The input stream, its size when known, and the summary the replay fills."""
    stream, total, source = open_input(file)
    freeze_survivors()
    summary = ReplaySummary(
        source=source,
        playbook_version=playbook.version,
        as_of=as_of,
        out=str(out) if out is not None else None,
    )
    return stream, total, summary


def _replay_with_progress(
    stream: IO[bytes],
    summary: ReplaySummary,
    playbook: core.Playbook,
    out: Path | None,
    total: int | None,
    batch: int = 1,
) -> None:
    """Replay `stream` under a progress bar; unreadable input or output is a usage error."""
    try:
        with progress_for(_progress(), "replay", "bytes") as progress:
            replay_stream(stream, summary, playbook, out=out, progress=progress, total=total,
                          batch=batch)  # fmt: skip
    except InputError as exc:
        fail(f"cannot read {summary.source}: {exc}", EXIT_ERROR)
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}", EXIT_ERROR)


def _report(summary: ReplaySummary, *, as_json: bool, examples: int, strict: bool) -> None:
    """Print the summary (JSON or tables); with `strict`, rejected lines fail the command."""
    if as_json:
        typer.echo(json.dumps(summary.as_dict(examples), indent=2))
    else:
        _print_summary(summary, examples)
    if strict and summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def replay(
    file: str = typer.Argument(
        ...,
        metavar="FILE.jsonl",
        help="JSON Lines, one touchpoint per line (blank lines are skipped); `-` reads stdin",
    ),
    playbook_path: Path | None = typer.Option(
        None, "--playbook", "-p", help="playbook YAML (default: TANDEM_PLAYBOOK or the bundled)"
    ),
    compare_path: Path | None = typer.Option(
        None,
        "--compare",
        help="backtest: also replay under this (old) playbook and print what --playbook "
        "changes: hand-offs gained and lost, customers per stage, KPIs, signals",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="write one snapshot JSON per journey to OUT/journeys/ and every signal to "
        "OUT/signals.jsonl",
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help=f"also fire timers due by this time: SLA alerts, stalled, upsell and renewal "
        f"nurture, churn risk from falling engagement. Takes {TIME_FORMATS}",
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="time zone of an --as-of without an offset [default: UTC]"
    ),
    strict: bool = typer.Option(False, "--strict", help="exit 1 if any line was rejected"),
    examples: int = typer.Option(
        3, "--examples", min=0, help="rejected lines to show per reason code"
    ),
    batch: int = typer.Option(
        1,
        "--batch",
        min=1,
        help="resolve this many touchpoints, then fold each customer's together: faster on "
        "a large backlog, with the same journeys and active signals; signals that only a "
        "state in between called for are not sent (nor counted)",
    ),
) -> None:
    """Replay touchpoints from a file through the journey engine, offline (no Kafka, no Redis).

    Lines are validated exactly as the worker validates them; rejected lines are summarised.
    Valid ones run in file order through the same pure core as the worker.
    Prints journeys, customers per stage, signals by type, duplicates and rejected lines.

    Exit codes: 0 replayed, 1 lines rejected with --strict, 2 unusable input, playbook,
    output or option.
    """
    playbook = _load(playbook_path)
    old = _load(compare_path) if compare_path is not None else None
    if old is not None and out is not None:
        fail("--out writes one replay: leave it out with --compare", EXIT_ERROR)
    if old is not None and batch > 1:
        fail("--compare replays one touchpoint at a time: leave --batch out", EXIT_ERROR)
    stream, total, summary = _open_replay(file, playbook, _parse_as_of(as_of, tz), out)
    try:
        if old is not None:
            _compare(stream, summary, total, old, playbook, as_json, examples)
            return
        _replay_with_progress(stream, summary, playbook, out, total, batch)
    finally:
        if file != "-":
            stream.close()
    _report(summary, as_json=as_json, examples=examples, strict=strict)
