"""`tandem infra up|down|status`: a local Kafka broker and Redis, without Docker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from streams.cli import app
from streams.cli._common import console, fail
from streams.settings import get_settings

if TYPE_CHECKING:
    from streams.infra import InfraStatus, ServiceStatus

infra_app = typer.Typer(
    help=(
        "Run Tandem's infrastructure locally without Docker: a real Apache Kafka broker "
        "(KRaft, fetched from Maven Central on first use) and Redis. Anything already "
        "answering at the configured addresses (TANDEM_KAFKA_BOOTSTRAP, TANDEM_REDIS_URL) "
        "is reused and never stopped."
    ),
    no_args_is_help=True,
)
app.add_typer(infra_app, name="infra")

_STYLE = {"running": "green", "reachable": "cyan", "not ready": "yellow", "down": "red"}


def _state(service: ServiceStatus) -> str:
    style = _STYLE.get(service.state.value, "white")
    return f"[{style}]{service.state.value}[/]"


def _report(result: InfraStatus) -> None:
    # One line per service (not a table: tables squeeze the detail away in narrow terminals).
    for service in result.services:
        if service.pid is not None:
            owner = f" (ours, PID {service.pid})"
        elif service.available:
            owner = " (not started by tandem)"
        else:
            owner = ""
        detail = f" — {service.detail}" if service.detail else ""
        console.print(
            f"[bold]{service.name}[/]: {_state(service)} at {service.address}{owner}{detail}",
            highlight=False,
        )
        if service.ours or not service.available:
            console.print(f"  log: {service.log_path}", highlight=False, soft_wrap=True)


@infra_app.command("up")
def up(
    timeout: float = typer.Option(
        90.0, "--timeout", min=1, help="Seconds to wait for Kafka to become ready."
    ),
    redis_timeout: float = typer.Option(
        20.0, "--redis-timeout", min=1, help="Seconds to wait for Redis to become ready."
    ),
) -> None:
    """Start Kafka and Redis unless they already answer; wait until both are ready.

    Idempotent: a service that already answers is reused (and left alone by `down`). On the
    first run the Kafka jars are fetched (~1 min) and redis-server may be installed with
    apt-get. The servers run detached, so they outlive this command; stop them with
    `tandem infra down`. Exits non-zero, after stopping what it started, if a service does
    not become ready in time.
    """
    from streams import infra

    settings = get_settings()
    with console.status("checking Kafka and Redis…") as spinner:

        def progress(message: str) -> None:
            console.print(f"[dim]·[/] {message}", highlight=False)
            spinner.update(message)

        try:
            result = infra.up(
                settings, timeout=timeout, redis_timeout=redis_timeout, progress=progress
            )
        except infra.InfraError as exc:
            spinner.stop()
            fail(str(exc))
    _report(result)
    console.print(f"logs: {settings.data_dir / 'logs'}  ·  stop with: tandem infra down")


@infra_app.command("down")
def down(
    purge: bool = typer.Option(
        False, "--purge", help="Also delete Kafka's storage (all topics), for a fresh cluster."
    ),
    grace: float | None = typer.Option(
        None,
        "--grace",
        min=0,
        help="Seconds between SIGTERM and SIGKILL (default: 30 for Kafka, 10 for Redis).",
    ),
) -> None:
    """Stop the Kafka and Redis that `tandem infra up` started; leave anything else alone.

    Only processes recorded in the PID files under the data dir, and still recognisably ours,
    are signalled (SIGTERM, then SIGKILL after the grace period). Safe when nothing runs.
    """
    from streams import infra

    settings = get_settings()
    with console.status("stopping…") as spinner:
        try:
            result = infra.down(settings, purge=purge, grace=grace, progress=spinner.update)
        except infra.InfraError as exc:
            spinner.stop()
            fail(str(exc))
    _report(result)


@infra_app.command("status")
def status(
    check: bool = typer.Option(
        False, "--check", help="Exit 1 unless both Kafka and Redis answer (for scripts)."
    ),
) -> None:
    """Show, for Kafka and Redis: running (ours, PID) / reachable (not ours) / down."""
    from streams import infra

    result = infra.status(get_settings())
    _report(result)
    if check and not result.available:
        down_names = ", ".join(s.name for s in result.services if not s.available)
        fail(f"not available: {down_names}")
