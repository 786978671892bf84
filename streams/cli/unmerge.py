"""`tandem unmerge`: split a wrong merge by rebuilding both journeys from their events.

The request goes through the identity sequencer (`touchpoints.accepted`, key ``cmd:unmerge``),
so it is ordered with the touchpoints: the identity agent splits the identifiers off and
separates them for good (no later touchpoint links them again), then the journey agent
rebuilds both journeys from their touchpoints (docs/journey.md, *Unmerge*).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import typer
from rich.markup import escape

from streams.cli import app
from streams.cli._common import check_unreachable, console, fail, run, usage_error
from streams.settings import Settings, get_settings

KINDS = ("contact", "email", "anon")


def normalise(identifier: str) -> str:
    """``kind:value`` as Tandem stores it; a bare value with an ``@`` is an email."""
    kind, sep, value = identifier.partition(":")
    if sep and kind in KINDS:
        return f"email:{value.strip().lower()}" if kind == "email" else identifier
    if "@" in identifier:
        return f"email:{identifier.strip().lower()}"
    return identifier


async def _fetch(reference: str, settings: Settings) -> tuple[str | None, dict[str, Any] | None]:
    from streams.projection import JourneyProjection

    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        customer_id = await projection.resolve(reference)
        if customer_id is None:
            return None, None
        return customer_id, await projection.snapshot(customer_id)
    finally:
        await projection.close()


async def _send(settings: Settings, customer_id: str, identifiers: list[str]) -> str:
    from events.publisher import TouchpointPublisher
    from streams.app import UNMERGE_KEY, unmerge_request
    from streams.topics import ACCEPTED, full_name

    request_id = f"unmerge-{uuid.uuid4().hex[:12]}"
    value = unmerge_request(customer_id, identifiers, request_id, datetime.now(UTC))
    async with TouchpointPublisher(
        settings.kafka_bootstrap, settings.topic_prefix, client_id="tandem-unmerge"
    ) as publisher:
        await publisher.publish_raw(value, full_name(ACCEPTED, settings.topic_prefix), UNMERGE_KEY)
        await publisher.flush()
    return request_id


async def _wait(settings: Settings, split_id: str, split: list[str], timeout: float) -> bool:
    """Until the split-off journey is live in Redis with its identifiers."""
    from streams.projection import JourneyProjection

    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snapshot = await projection.snapshot(split_id)
            if snapshot is not None and set(split) & set(snapshot["identities"]):
                return True
            await _sleep(0.5)
        return False
    finally:
        await projection.close()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def plan(snapshot: dict[str, Any], split: list[str]) -> tuple[tuple[str, list[str]], ...]:
    """(customer id, identifiers) of the remaining side and of the split-off side."""
    from streams.journey import customer_id_for
    from streams.journey.identity import by_strength

    remaining = [i for i in snapshot["identities"] if i not in split]
    ordered = by_strength(split)
    return (
        (customer_id_for(remaining[0]), remaining),
        (customer_id_for(ordered[0]), ordered),
    )


HELP = (
    "Split a wrong merge: the named identifiers get a journey of their own, rebuilt from their "
    "events, and are never linked to the rest again.\n\n"
    "Each touchpoint goes with its strongest identifier (so an event carrying both sides' "
    "identifiers goes where its strongest one goes). Stages, scores and signals of both "
    "journeys are recomputed: a hand-off the rest no longer earns is revoked. Example: "
    "tandem unmerge ada@x.example --split email:bob@y.example --split anon:bob-laptop"
)


def _journey_or_fail(reference: str, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The customer id and snapshot of `reference`; fails if Redis or the journey is missing."""
    try:
        customer_id, snapshot = run(_fetch(reference, settings))
    except Exception as exc:
        check_unreachable(exc, redis=settings.redis_url)
        fail(f"cannot read journeys from Redis at {settings.redis_url}: {exc}")
    if customer_id is None or snapshot is None:
        fail(f"no journey for {reference!r}")
    return customer_id, snapshot


def _identifiers_to_split(
    customer_id: str, snapshot: dict[str, Any], split: list[str], merge: str | None
) -> list[str]:
    """The identifiers `--split` or `--merge` name, sorted; fails unless they are some, but
    not all, of the journey's identifiers."""
    identities: list[str] = snapshot["identities"]
    if merge is not None:
        entries = [m for m in snapshot["merges"] if m["absorbed_customer_id"] == merge]
        if not entries:
            absorbed = ", ".join(m["absorbed_customer_id"] for m in snapshot["merges"]) or "none"
            fail(f"{customer_id} has no merge of {merge!r} (merged: {absorbed})")
        wanted = sorted({i for m in entries for i in m["identifiers"]})
    else:
        wanted = sorted({normalise(i) for i in split})
    unknown = [i for i in wanted if i not in identities]
    if unknown:
        fail(f"{', '.join(unknown)} not among the identifiers of {customer_id}: "
             f"{', '.join(identities)}")  # fmt: skip
    if set(wanted) >= set(identities):
        fail(f"splitting off every identifier of {customer_id} would leave nothing")
    return wanted


def _print_plan(
    customer_id: str,
    snapshot: dict[str, Any],
    keeps: tuple[str, list[str]],
    splits: tuple[str, list[str]],
) -> None:
    (remaining_id, remaining), (split_id, split_off) = keeps, splits
    count = snapshot["counts"]["touchpoints"]
    console.print(f"[bold]{customer_id}[/] ({snapshot['stage']}, {count} touchpoints) "
                  "becomes two journeys:")  # fmt: skip
    console.print(f"  keeps     {remaining_id}: {escape(', '.join(remaining))}")
    console.print(f"  split off {split_id}: {escape(', '.join(split_off))}")
    console.print("Each touchpoint goes with its strongest identifier; both are rebuilt from "
                  "their events and never linked again.")  # fmt: skip


@app.command(help=HELP)
def unmerge(
    reference: str = typer.Argument(
        ..., help="the merged journey: customer id (cus_…) or any of its identifiers"
    ),
    split: list[str] = typer.Option(
        [], "--split", "-s", help="an identifier to split off (kind:value; repeatable)"
    ),
    merge: str | None = typer.Option(
        None,
        "--merge",
        "-m",
        help="split off the identifiers of this absorbed customer id (from the journey's merges)",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would happen, send nothing"),
    wait: float = typer.Option(
        30.0, "--wait", help="seconds to wait for the split journey to appear (0: do not wait)"
    ),
) -> None:
    """Split identifiers off a merged journey (see HELP)."""
    settings = get_settings()
    if bool(split) == bool(merge):
        usage_error(
            "name what to split off: --split IDENTIFIER (repeatable) or --merge CUSTOMER_ID"
        )
    customer_id, snapshot = _journey_or_fail(reference, settings)
    wanted = _identifiers_to_split(customer_id, snapshot, split, merge)
    (remaining_id, remaining), (split_id, split_off) = plan(snapshot, wanted)
    _print_plan(customer_id, snapshot, (remaining_id, remaining), (split_id, split_off))
    if dry_run:
        console.print("[yellow]dry run:[/] nothing sent")
        return
    if not yes and not typer.confirm("Unmerge?", default=False):
        fail("cancelled")
    try:
        request_id = run(_send(settings, customer_id, wanted))
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot send the unmerge request to Kafka at {settings.kafka_bootstrap}: {exc}")
    console.print(f"sent {request_id}")
    if wait > 0:
        if run(_wait(settings, split_id, split_off, wait)):
            console.print(f"[green]done:[/] {split_id} is a journey of its own")
        else:
            fail(f"{split_id} not visible after {wait:g} s (is the worker running?)")
