"""`tandem replay FILE --playbook NEW --compare OLD`: one file, two playbooks, what changes.

The file is read and validated once; its touchpoints replay under the old playbook, then under
the new one (`streams.workflow.replay`), and `streams.workflow.backtest.compare` says what
changes. This module only renders that comparison.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.vocabulary import Touchpoint
from streams import journey as core
from streams import workflow
from streams.cli._common import PlainProgress, console, err_console, progress_for
from streams.workflow.backtest import Backtest, HandoffChange, Number, Shift, compare

SHOWN_CUSTOMERS = 10
"""Customers listed per gained / lost hand-offs on a terminal (`--json` lists all)."""


def _counting(touchpoints: list[Touchpoint], advance: Callable[[], None]) -> Iterator[Touchpoint]:
    for touchpoint in touchpoints:
        advance()
        yield touchpoint


def _replay_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("touchpoints"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _replay(
    touchpoints: list[Touchpoint],
    playbook: core.Playbook,
    label: str,
    progress: Progress | PlainProgress,
    as_of: datetime | None,
) -> workflow.ReplayResult:
    task = progress.add_task(label, total=len(touchpoints))

    def advance() -> None:
        progress.update(task, advance=1)

    return workflow.replay(_counting(touchpoints, advance), playbook, now=as_of)


def backtest(
    touchpoints: list[Touchpoint],
    old: core.Playbook,
    new: core.Playbook,
    as_of: datetime | None,
) -> Backtest:
    """Replay `touchpoints` under both playbooks (with progress) and compare them."""
    with progress_for(_replay_progress(), "replay --compare", "") as progress:
        before = _replay(touchpoints, old, f"under {old.version}", progress, as_of)
        after = _replay(touchpoints, new, f"under {new.version}", progress, as_of)
    latest = max((t.occurred_at for t in touchpoints), default=None)
    now = as_of or latest or datetime.fromtimestamp(0).astimezone()
    return compare(before, old, after, new, now=now)


def _fmt(value: Number | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    if isinstance(value, Decimal):
        return f"{value:{sign},.2f}"
    if isinstance(value, float):
        return f"{value:{sign},.3f}"
    return f"{value:{sign},}"


def _shift_table(title: str, label: str, shifts: tuple[Shift, ...]) -> Table:
    table = Table(title=title)
    table.add_column(label)
    for column in ("old", "new", "delta"):
        table.add_column(column, justify="right")
    for s in shifts:
        delta = s.delta
        style = "" if not delta else "green" if delta > 0 else "red"
        shown = _fmt(delta, signed=True) if delta else "0" if delta is not None else "—"
        table.add_row(s.name, _fmt(s.old), _fmt(s.new), f"[{style}]{shown}[/]" if style else shown)
    return table


def _changes_table(title: str, changes: tuple[HandoffChange, ...]) -> Table:
    shown = changes[:SHOWN_CUSTOMERS]
    more = len(changes) - len(shown)
    caption = f"… {more} more (--json lists all)" if more else None
    table = Table(title=f"{title} ({len(changes)})", caption=caption)
    for column in ("customer", "stage old → new", "hand-off reason"):
        table.add_column(column)
    for change in shown:
        stages = f"{change.stage_old} → {change.stage_new}"
        table.add_row(change.customer_id, stages, escape(change.reason))
    return table


def print_backtest(result: Backtest, source: str, touchpoints: int) -> None:
    """The comparison for people: hand-offs gained and lost, stages, KPIs, signals."""
    console.print(
        f"[bold]{escape(source)}[/]: {touchpoints} touchpoints, {result.journeys} journeys"
    )
    console.print(
        f"  playbook [bold]{escape(result.old_version)}[/] → [bold]{escape(result.new_version)}[/]"
    )
    console.print(
        f"  hand-offs in force: {result.handoffs_old} → {result.handoffs_new} "
        f"([green]+{len(result.gained)} gained[/], [red]−{len(result.lost)} lost[/])"
    )
    for label, changes in (("gained", result.gained), ("lost", result.lost)):
        if changes:
            console.print(_changes_table(f"hand-offs {label}", changes))
    console.print(_shift_table("customers per stage", "stage", result.stages))
    console.print(_shift_table("KPIs", "KPI", result.kpis))
    console.print(_shift_table("signals emitted", "signal", result.signals))


def run_compare(
    touchpoints: list[Touchpoint],
    old: core.Playbook,
    new: core.Playbook,
    *,
    as_of: datetime | None,
    source: str,
    as_json: bool,
    summary: dict[str, object],
) -> None:
    """Backtest and print: JSON on stdout with `as_json`, else tables."""
    result = backtest(touchpoints, old, new, as_of)
    if as_json:
        typer.echo(json.dumps({"input": summary, **result.as_dict()}, indent=2))
    else:
        print_backtest(result, source, len(touchpoints))
