"""`tandem account ID`: one account's buying group, engagement, stage and hand-off."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from streams.cli import app
from streams.cli._common import check_unreachable, console, fail, run
from streams.settings import get_settings

if TYPE_CHECKING:
    from schemas.account import AccountView


async def _fetch(reference: str) -> AccountView | None:
    from streams.account_service import find_account, read_account
    from streams.playbooks import load_configured_playbook
    from streams.projection import JourneyProjection

    settings = get_settings()
    playbook = load_configured_playbook(settings)
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        account_id = await find_account(projection, reference)
        if account_id is None:
            return None
        return await read_account(projection, account_id, playbook)
    finally:
        await projection.close()


def render_account(view: AccountView) -> None:
    """Print an account for people."""
    console.rule(f"[bold]{view.account_id}[/]  stage [bold cyan]{view.stage.value}[/]")
    e = view.engagement
    console.print(
        f"{view.people} people, engagement {e.total} (max {e.max}), {e.engaged_people} engaged, "
        f"as of {view.as_of.isoformat() if view.as_of else '-'}, playbook {view.playbook_version}"
    )
    group = Table(title="buying group")
    for column in ("customer", "identity", "stage", "persona", "job title", "engagement", "fit",
                   "last touch", "engaged"):  # fmt: skip
        group.add_column(column)
    for m in view.buying_group:
        last = m.last_touch
        touch = f"{last.type} {last.occurred_at.isoformat()}" if last else "-"
        group.add_row(m.customer_id, m.identities[0] if m.identities else "-", m.stage.value,
                      m.persona or "-", m.job_title or "-", f"{m.engagement:g}", f"{m.fit:g}",
                      touch, "yes" if m.engaged else "")  # fmt: skip
    console.print(group)
    if view.handoff is None:
        console.print("account hand-off: no rule in the playbook")
    else:
        state = "[bold green]READY[/]" if view.handoff.ready else "not ready"
        console.print(f"account hand-off {view.handoff.signal_id}: {state} — {view.handoff.reason}")


@app.command()
def account(
    reference: str = typer.Argument(
        ...,
        help="account id (identity.account_id, or domain:acme.example), or any person's "
        "customer id or identifier (their account is shown)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the account view as JSON"),
) -> None:
    """Show one account: its buying group (people, stages, roles, last touch), engagement,
    stage and the account hand-off.

    Exit codes: 0 shown, 1 no account for this reference, 69 Redis unreachable.
    """
    settings = get_settings()
    try:
        view = run(_fetch(reference))
    except Exception as exc:
        check_unreachable(exc, redis=settings.redis_url)
        fail(f"cannot read accounts from Redis at {settings.redis_url}: {exc}")
    if view is None:
        fail(f"no account for {reference!r} (no journey names it in identity.account_id)")
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
    else:
        render_account(view)


__all__ = ["account", "render_account"]
