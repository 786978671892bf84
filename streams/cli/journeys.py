"""`tandem journeys`: the live journeys in a few fields each, newest touch first (`--csv`).

The rows are those of ``GET /v1/journeys`` (`streams.api.journeys.JourneyRow`), read from the
Redis read model: journeys absorbed by a merge and the spend ledger are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from schemas.journey import Stage
from streams.cli import _csv, app
from streams.cli._common import check_unreachable, console, fail, run, usage_error
from streams.settings import get_settings


async def _snapshots() -> dict[str, dict[str, Any]]:
    from streams.projection import JourneyProjection

    settings = get_settings()
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        return await projection.snapshots()
    finally:
        await projection.close()


def rows(snapshots: dict[str, dict[str, Any]], stages: set[str] | None) -> list[dict[str, Any]]:
    """The journey rows (JSON-ready), newest touch first, only `stages` if given."""
    from streams.api.journeys import JourneyRow
    from streams.journey import LEDGER_CUSTOMER

    found = [
        JourneyRow.of(snapshot)
        for customer_id, snapshot in snapshots.items()
        if customer_id != LEDGER_CUSTOMER and (stages is None or snapshot["stage"] in stages)
    ]
    # RFC 3339 UTC strings of one format sort as time; no touch at all sorts last.
    found.sort(key=lambda row: (row.last_touch_at or "", row.customer_id), reverse=True)
    return [row.model_dump(mode="json") for row in found]


def columns() -> list[str]:
    """The columns of `journeys --csv`, in a fixed order (the fields of a journey row)."""
    from streams.api.journeys import JourneyRow

    return list(JourneyRow.model_fields)


def _render(found: list[dict[str, Any]], total: int) -> None:
    table = Table(title=f"journeys ({len(found)} of {total}), newest touch first")
    for column in ("customer", "stage", "engagement", "fit", "persona", "company", "last touch"):
        table.add_column(column, justify="right" if column in ("engagement", "fit") else "left")
    for row in found:
        last = " ".join(x for x in (row["last_touch_at"], row["last_touch_type"]) if x)
        scores = f"{row['engagement']:.2f}", f"{row['fit']:.2f}"
        who = row["persona"] or "", row["company"] or ""
        table.add_row(row["customer_id"], row["stage"], *scores, *who, last)
    console.print(table)


@app.command()
def journeys(
    stage: list[str] = typer.Option(
        [], "--stage", help="only journeys in this stage (repeat for several)"
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="at most this many rows"),
    as_json: bool = typer.Option(False, "--json", help="print the rows as one JSON array"),
    as_csv: bool = typer.Option(False, "--csv", help="print the rows as CSV (a header row)"),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="write the --csv or --json output to this file"
    ),
) -> None:
    """List the journeys: customer, identities, stage, scores, persona, company, last touch.

    Exit codes: 0 listed (even none), 2 a bad option, 69 Redis unreachable.
    """
    known = [s.value for s in Stage]
    unknown = [s for s in stage if s not in known]
    if unknown:
        usage_error(f"--stage takes one of {', '.join(known)} (got {', '.join(unknown)})")
    if as_json and as_csv:
        usage_error("--json and --csv are two formats: choose one")
    if out is not None and not (as_json or as_csv):
        usage_error("--out writes --csv or --json output: add one of them")
    settings = get_settings()
    try:
        snapshots = run(_snapshots())
    except Exception as exc:
        check_unreachable(exc, redis=settings.redis_url)
        fail(f"cannot read journeys from Redis at {settings.redis_url}: {exc}")
    found = rows(snapshots, set(stage) or None)
    shown = found[:limit]
    if as_csv:
        _csv.emit(_csv.render(columns(), shown), out)
    elif as_json:
        _csv.emit(json.dumps(shown, indent=2) + "\n", out)
    else:
        _render(shown, len(found))
