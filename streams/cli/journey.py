"""`tandem journey ID`: one customer's journey, by customer id or any identifier."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from streams.cli import app
from streams.cli._common import check_unreachable, console, fail, run
from streams.settings import get_settings


async def _fetch(reference: str) -> tuple[str | None, dict[str, Any] | None]:
    from streams.projection import JourneyProjection

    settings = get_settings()
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        customer_id = await projection.resolve(reference)
        if customer_id is None:
            return None, None
        return customer_id, await projection.snapshot(customer_id)
    finally:
        await projection.close()


def render_journey(snapshot: dict[str, Any]) -> None:
    """Print a journey snapshot for people."""
    _print_header(snapshot)
    console.print(_stage_history(snapshot))
    console.print(_score_breakdown(snapshot["scores"]))
    console.print(_recent_touchpoints(snapshot))
    if snapshot["open_objections"]:
        console.print("open objections: " + ", ".join(
            f"{o['category']} ({o.get('note') or ''})" for o in snapshot["open_objections"]
        ))  # fmt: skip
    for merge in snapshot["merges"]:
        console.print(
            f"merged {merge['absorbed_customer_id']} ({', '.join(merge['identifiers'])}) "
            f"because of {merge['cause_event_id']} at {merge['at']}"
        )
    if snapshot["signals"]:
        console.print(_signals(snapshot))
    counts = snapshot["counts"]
    # Repeats leave no trace in a journey (docs/journey.md): the worker's metrics count them.
    console.print(f"{counts['touchpoints']} touchpoints ({counts['retained']} retained in full)")


def _print_header(snapshot: dict[str, Any]) -> None:
    """Who, where in the funnel, how they first came, and their scores."""
    scores = snapshot["scores"]
    engagement, fit = scores["engagement"], scores["fit"]
    console.rule(f"[bold]{snapshot['customer_id']}[/]  stage [bold cyan]{snapshot['stage']}[/]")
    console.print(f"identities: {', '.join(snapshot['identities']) or '-'}")
    firm = {k: v for k, v in snapshot["firmographics"].items() if v}
    if firm:
        console.print(f"firmographics: {json.dumps(firm)}")
    first = snapshot.get("first_touch")
    if first:
        console.print(
            f"first touch: {first['type']} via {first.get('channel') or '-'} "
            f"(campaign {first.get('campaign_id') or '-'}) at {first['at']}"
        )
    console.print(
        f"engagement {engagement['score']} (half-life {engagement['half_life_days']} d), "
        f"fit {fit['score']} (persona {fit.get('persona') or '-'}), "
        f"playbook {snapshot['playbook_version']}, version {snapshot['version']}"
    )


def _stage_history(snapshot: dict[str, Any]) -> Table:
    stages = Table(title="stage history", show_lines=False)
    for column in ("stage", "entered at", "cause", "reason"):
        stages.add_column(column)
    for change in snapshot["stage_history"]:
        stages.add_row(change["stage"], change["entered_at"], change["cause_event_id"],
                       change["reason"])  # fmt: skip
    return stages


def _score_breakdown(scores: dict[str, Any]) -> Table:
    engagement, fit = scores["engagement"], scores["fit"]
    breakdown = Table(title="score breakdown")
    for column in ("kind", "what", "points"):
        breakdown.add_column(column)
    for item in engagement["breakdown"][-10:]:
        breakdown.add_row("engagement", f"{item['type']} ({item['event_id']})",
                          f"{item['decayed']} of {item['points']}")  # fmt: skip
    for item in fit.get("breakdown", []):
        breakdown.add_row("fit", f"{item['attribute']}: {', '.join(item['matched'])}",
                          str(item["points"]))  # fmt: skip
    return breakdown


def _recent_touchpoints(snapshot: dict[str, Any]) -> Table:
    recent = Table(title="recent touchpoints")
    for column in ("at", "type", "source", "channel", "campaign", "message"):
        recent.add_column(column)
    for tp in snapshot["recent_touchpoints"][-10:]:
        recent.add_row(tp["occurred_at"], tp["type"], tp["source"], tp.get("channel") or "",
                       tp.get("campaign_id") or "", tp.get("message_id") or "")  # fmt: skip
    return recent


def _signals(snapshot: dict[str, Any]) -> Table:
    signals = Table(title="signals")
    for column in ("signal", "type", "rule", "version", "status", "at"):
        signals.add_column(column)
    for ref in snapshot["signals"]:
        signals.add_row(ref["signal_id"], ref["signal_type"], ref["rule"],
                        str(ref["version"]), ref["status"], ref["occurred_at"])  # fmt: skip
    return signals


@app.command()
def journey(
    reference: str = typer.Argument(
        ..., help="customer id (cus_…), or any identifier: email, contact id, anonymous id"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the snapshot as JSON"),
) -> None:
    """Show one customer's journey: identities, stages, scores, touchpoints, merges, signals.

    Exit codes: 0 shown, 1 no journey for this reference, 69 Redis unreachable.
    """
    settings = get_settings()
    try:
        customer_id, snapshot = run(_fetch(reference))
    except Exception as exc:
        check_unreachable(exc, redis=settings.redis_url)
        fail(f"cannot read journeys from Redis at {settings.redis_url}: {exc}")
    if customer_id is None or snapshot is None:
        fail(f"no journey for {reference!r} (is the worker running and has it seen this person?)")
    if as_json:
        typer.echo(json.dumps(snapshot, indent=2))
    else:
        render_journey(snapshot)
