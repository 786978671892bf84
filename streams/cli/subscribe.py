"""`tandem subscribe handoff|nurture|alerts`: an example consumer of the signals for sales tools.

Unlike `tandem tail`, this is a consumer-group member: it commits what it has shown, so the next
run with the same `--group` resumes where this one stopped, and other groups (a CRM sync, a
Slack bot) each get every signal. See `streams.delivery.subscriber` for the logic.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from schemas.signals import (
    AccountHandoffSignal,
    HandoffRevokedSignal,
    HandoffSignal,
    HandoffSlaBreachedSignal,
    HandoffSlaEscalatedSignal,
    IdentityQuarantinedSignal,
    NurtureSignal,
    NurtureWithdrawnSignal,
)
from streams.cli import app
from streams.cli._common import check_unreachable, console, err_console, fail, run
from streams.delivery._kafka import SignalKind, TopicMissingError
from streams.delivery.subscriber import (
    Received,
    SignalSubscriber,
    Status,
    SubscribeStats,
    Undecodable,
    default_group,
)
from streams.settings import Settings, get_settings


class Kind(StrEnum):
    """The signal streams one can subscribe to."""

    handoff = "handoff"
    nurture = "nurture"
    alerts = "alerts"


_STATUS_BADGE = {
    Status.NEW: "[bold green]NEW[/]",
    Status.CORRECTION: "[bold yellow]CORRECTION[/]",
    Status.REVOCATION: "[bold red]REVOKED[/]",
    Status.DUPLICATE: "[dim]DUPLICATE[/]",
    Status.STALE: "[dim]OUTDATED[/]",
}

_BORDER = {
    Status.NEW: "green",
    Status.CORRECTION: "yellow",
    Status.REVOCATION: "red",
    Status.DUPLICATE: "dim",
    Status.STALE: "dim",
}


def _content(items: list[Any]) -> str:
    if not items:
        return "-"
    return "\n".join(f"{escape(i.title)} [dim]{escape(i.url)}[/]" for i in items)


def _objections(items: list[Any]) -> str:
    if not items:
        return "none"
    return "\n".join(
        f"[bold]{escape(o.category)}[/]"
        + (f": {escape(o.note)}" if o.note else "")
        + f" [dim](raised {o.raised_at:%Y-%m-%d})[/]"
        for o in items
    )


def _fields(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def _customer(signal: Any) -> str:
    ids = ", ".join(escape(i) for i in signal.identities[:3]) or "-"
    more = f" (+{len(signal.identities) - 3})" if len(signal.identities) > 3 else ""
    return f"{escape(signal.customer_id)}  [dim]{ids}{more}[/]"


_Rows = list[tuple[str, str]]


def _handoff(signal: HandoffSignal) -> tuple[str, _Rows]:
    f, e = signal.firmographics, signal.engagement
    company = " · ".join(
        escape(str(v)) for v in (f.job_title, f.company, f.company_size, f.industry) if v
    )
    rows = [
        ("stage", f"{signal.stage} (cycle {signal.cycle}) — {escape(signal.reason)}"),
        (
            "scores",
            f"engagement {e.score:g} (this cycle {e.cycle_score:g}) · fit "
            f"{signal.fit.score:g} ({escape(signal.persona or 'no persona')})",
        ),
        ("who", company or "-"),
        ("pain points", escape(", ".join(f.pain_points)) or "-"),
        ("messages seen", escape(", ".join(signal.messages)) or "-"),
        ("campaigns", escape(", ".join(signal.campaigns)) or "-"),
        ("recommended", _content(signal.recommended_content)),
        ("open objections", _objections(signal.open_objections)),
    ]
    last = (signal.last_marketing + signal.last_sales)[-3:]
    if last:
        rows.append(
            ("last touches", "\n".join(f"{t.occurred_at:%Y-%m-%d %H:%M} {t.type}" for t in last))
        )
    if signal.supersedes:
        rows.append(("supersedes", escape(", ".join(signal.supersedes))))
    return "hand-off", rows


def _handoff_revoked(signal: HandoffRevokedSignal) -> tuple[str, _Rows]:
    return "hand-off", [
        ("cycle", str(signal.cycle)),
        ("why", escape(signal.reason)),
        ("action", "[bold red]stop working this lead as an MQL[/]"),
    ]


def _nurture(signal: NurtureSignal) -> tuple[str, _Rows]:
    return f"nurture · {signal.track} ({signal.channel})", [
        ("stage", f"{signal.stage} (cycle {signal.cycle})"),
        ("why", escape(signal.reason)),
        ("recommended", _content(signal.recommended_content)),
        ("open objections", _objections(signal.open_objections)),
    ]


def _nurture_withdrawn(signal: NurtureWithdrawnSignal) -> tuple[str, _Rows]:
    return f"nurture withdrawn · {signal.rule}", [
        ("why", escape(signal.reason)),
        ("action", "[bold red]stop this nurture track[/]"),
    ]


def _sla(signal: HandoffSlaBreachedSignal | HandoffSlaEscalatedSignal) -> tuple[str, _Rows]:
    what = "SLA breached" if isinstance(signal, HandoffSlaBreachedSignal) else "SLA escalated"
    return what, [
        (
            "hand-off",
            f"{signal.handoff_signal_id} v{signal.handoff_version} "
            f"at {signal.handoff_occurred_at:%Y-%m-%d %H:%M:%S}",
        ),
        ("deadline", f"{signal.deadline:%Y-%m-%d %H:%M:%S} ({signal.hours:g} h)"),
        ("stage", f"{signal.stage} (cycle {signal.cycle}) — nobody accepted or rejected"),
    ]


def _quarantined(signal: IdentityQuarantinedSignal) -> tuple[str, _Rows]:
    return f"identifier quarantined · {signal.identifier}", [
        ("why", escape(signal.reason)),
        ("linked", escape(", ".join(signal.linked))),
        ("action", f"tandem unmerge {signal.customer_id} --split IDENTIFIER (strangers)"),
    ]


def _account_handoff(signal: AccountHandoffSignal) -> tuple[str, _Rows]:
    people = ", ".join(
        f"{m.identities[0] if m.identities else m.customer_id} ({m.stage}"
        f"{', ' + m.persona if m.persona else ''})"
        for m in signal.buying_group
        if m.engaged
    )
    return f"account hand-off · {signal.account_id}", [
        ("stage", str(signal.stage)),
        ("why", escape(signal.reason)),
        ("engaged", escape(people)),
        ("action", f"tandem account {signal.account_id}"),
    ]


def _describe(signal: Any) -> tuple[str, _Rows]:
    """What the signal is (the panel's title) and the rows sales needs to act on it."""
    if isinstance(signal, HandoffSignal):
        return _handoff(signal)
    if isinstance(signal, HandoffRevokedSignal):
        return _handoff_revoked(signal)
    if isinstance(signal, NurtureSignal):
        return _nurture(signal)
    if isinstance(signal, NurtureWithdrawnSignal):
        return _nurture_withdrawn(signal)
    if isinstance(signal, HandoffSlaBreachedSignal | HandoffSlaEscalatedSignal):
        return _sla(signal)
    if isinstance(signal, IdentityQuarantinedSignal):
        return _quarantined(signal)
    if isinstance(signal, AccountHandoffSignal):
        return _account_handoff(signal)
    return signal.signal_type, []  # pragma: no cover - the Signal union is exhaustive


def _title(item: Received, what: str) -> str:
    """Status badge, what, and the version (with the one it replaces, unless a duplicate)."""
    signal = item.signal
    version = f"v{signal.version}"
    if item.previous_version is not None and item.status != Status.DUPLICATE:
        version += f" (was v{item.previous_version})"
    badge = _STATUS_BADGE[item.status]
    return f"{badge} [bold]{escape(what)}[/] {version}  [dim]{signal.signal_id}[/]"


def _subtitle(item: Received) -> str:
    """Where the signal was read from, when it happened, and under which playbook."""
    signal = item.signal
    return (
        f"[dim]{item.topic}[{item.partition}]@{item.offset} · "
        f"{signal.occurred_at:%Y-%m-%d %H:%M:%S %Z} · playbook {escape(signal.playbook_version)}[/]"
    )


def render_signal(item: Received) -> Panel:
    """One signal as a rich panel: what sales (or marketing) needs to act on it."""
    what, rows = _describe(item.signal)
    return Panel(
        Group(_fields([("customer", _customer(item.signal)), *rows])),
        title=_title(item, what),
        title_align="left",
        subtitle=_subtitle(item),
        subtitle_align="right",
        border_style=_BORDER[item.status],
    )


def _summary(stats: SubscribeStats, group: str) -> str:
    counts = stats.as_dict()
    parts = [f"{counts[s.value]} {s.value}" for s in (Status.NEW, Status.CORRECTION)]
    parts.append(f"{counts['revocation']} revocation(s)")
    skipped = counts["duplicate"] + counts["stale"]
    text = f"{stats.shown} signal(s): {', '.join(parts)}"
    if skipped:
        text += f"; {skipped} duplicate/outdated skipped"
    if stats.undecodable:
        text += f"; {stats.undecodable} undecodable"
    return f"{text}; offsets committed for group {group}"


async def _subscribe(
    settings: Settings,
    kinds: list[SignalKind],
    group: str,
    from_beginning: bool,
    as_json: bool,
    limit: int | None,
    idle_exit: float | None,
) -> SubscribeStats:
    def show(item: Received | Undecodable) -> None:
        if isinstance(item, Undecodable):
            err_console.print(
                f"[yellow]skipped[/] {item.topic}[{item.partition}]@{item.offset}: "
                f"{escape(item.error)}",
                highlight=False,
            )
        elif as_json:
            typer.echo(json.dumps(item.as_dict(), separators=(",", ":")))
        else:
            console.print(render_signal(item))

    async with SignalSubscriber(
        settings, kinds, group, from_beginning=from_beginning
    ) as subscriber:
        return await subscriber.run(show, limit=limit, idle_exit=idle_exit)


def _distinct_kinds(kinds: list[Kind]) -> list[SignalKind]:
    """The kinds asked for, each once, in the order given (it names the default group)."""
    unique: list[SignalKind] = []
    for kind in kinds:
        if kind.value not in unique:
            unique.append(kind.value)
    return unique


@app.command()
def subscribe(
    kinds: list[Kind] = typer.Argument(
        ...,
        metavar="KIND",
        help="which signals: handoff, nurture and/or alerts",
        show_default=False,
    ),
    group: str | None = typer.Option(
        None,
        "--group",
        "-g",
        help="consumer group (default tandem-subscribe-<kind>); a group resumes where it "
        "stopped, and every group sees every signal",
    ),
    from_beginning: bool = typer.Option(
        False,
        "--from-beginning",
        "-b",
        help="a new group starts at the oldest retained signal, not the newest "
        "(a group with committed offsets always resumes from them)",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="one JSON object per line: status, topic, offset, signal"
    ),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=1, help="stop after N signals (duplicates not counted)"
    ),
    idle_exit: float | None = typer.Option(
        None,
        "--idle-exit",
        min=0,
        help="stop after this many seconds without a signal (for scripts and tests)",
    ),
) -> None:
    """Follow hand-off, nurture or alert signals as a consumer group, like a sales tool would.

    Each signal is shown once per (signal_id, version).
    A correction (a higher version of an id) or a revoked hand-off is marked as such.
    Offsets are committed after signals are shown: the next run of the group resumes there.
    Ctrl-C stops cleanly.

    Exit codes: 0 stopped (limit, idle or Ctrl-C), 1 a signal topic is missing,
    69 Kafka unreachable.
    """
    unique = _distinct_kinds(kinds)
    settings = get_settings()
    group_name = group or default_group(unique)
    try:
        stats = run(
            _subscribe(settings, unique, group_name, from_beginning, as_json, limit, idle_exit)
        )
    except typer.Exit:
        raise
    except TopicMissingError as exc:
        fail(str(exc))
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot read signals from {settings.kafka_bootstrap}: {exc}")
    err_console.print(f"[dim]{_summary(stats, group_name)}[/]", highlight=False)
