"""`tandem topics create|describe`: Tandem's topics with their partitions, retention, compaction."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from streams.cli import app
from streams.cli._common import check_unreachable, console, fail, run
from streams.settings import get_settings

topics_app = typer.Typer(help="Create and inspect Tandem's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def create() -> None:
    """Create every Tandem topic that is missing (idempotent)."""
    from streams.kafka_admin import create_topics

    settings = get_settings()
    try:
        outcome = run(create_topics(settings))
    except Exception as exc:  # one clear line for any broker problem
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot create topics on {settings.kafka_bootstrap}: {exc}")
    created = sorted(n for n, s in outcome.items() if s == "created")
    console.print(
        f"topics: {len(created)} created, {len(outcome) - len(created)} already there "
        f"({settings.kafka_bootstrap})"
    )
    for name in created:
        console.print(f"  + {name}")


@topics_app.command("describe")
def describe(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Show each Tandem topic: purpose, key, partitions, retention/compaction, drift."""
    from streams.kafka_admin import describe_topics

    settings = get_settings()
    try:
        states = run(describe_topics(settings))
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot describe topics on {settings.kafka_bootstrap}: {exc}")
    if as_json:
        rows = [
            {
                "topic": s.name,
                "purpose": s.spec.purpose,
                "key": s.spec.key,
                "exists": s.exists,
                "partitions": s.partitions,
                "expected_partitions": s.expected_partitions,
                "cleanup.policy": s.config.get("cleanup.policy"),
                "retention.ms": s.config.get("retention.ms"),
                "drift": s.drift,
            }
            for s in states
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Tandem topics on {settings.kafka_bootstrap}")
    for column in ("topic", "partitions", "policy", "retention", "key", "purpose", "status"):
        table.add_column(column)
    for s in states:
        retention = s.config.get("retention.ms")
        days = f"{int(retention) / 86_400_000:g} d" if retention and retention != "-1" else "-"
        status = "ok" if not s.drift else ", ".join(s.drift)
        table.add_row(
            s.name,
            str(s.partitions or "-"),
            s.config.get("cleanup.policy", "-"),
            days,
            s.spec.key,
            s.spec.purpose,
            f"[green]{status}[/]" if status == "ok" else f"[red]{status}[/]",
        )
    console.print(table)
    if any(s.drift for s in states):
        raise typer.Exit(1)
