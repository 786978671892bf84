"""`tandem webhooks`: the process that POSTs every signal to the configured webhook URLs.

The logic — configuration, signing, retries, dead letters, the consumer loop — lives in
`streams.delivery.webhooks`; this module reads the options, wires logging and signals, and
prints what happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import typer
from rich.markup import escape
from rich.table import Table

from streams.cli import app
from streams.cli._common import check_unreachable, console, err_console, fail, run
from streams.delivery._kafka import TopicMissingError, group_id
from streams.delivery.webhooks import (
    DEFAULT_GROUP,
    DeliveryStats,
    WebhookConfig,
    WebhookConfigError,
    WebhookDelivery,
    load_config,
    redact_url,
)
from streams.settings import Settings, get_settings


def _with_overrides(config: WebhookConfig, **overrides: float | int | None) -> WebhookConfig:
    changes = {name: value for name, value in overrides.items() if value is not None}
    if not changes:
        return config
    try:
        retry = config.retry.model_validate({**config.retry.model_dump(), **changes})
    except ValueError as exc:
        fail(f"invalid retry option: {exc}")
    return config.model_copy(update={"retry": retry})


def _describe(config: WebhookConfig, settings: Settings, group: str) -> None:
    table = Table(title=f"webhooks (group {group_id(settings, group)})")
    for column in ("target", "url", "signals"):
        table.add_column(column)
    for target in config.targets:
        table.add_row(
            escape(target.name or "-"), escape(redact_url(target.url)), ", ".join(target.topics)
        )
    console.print(table)
    r = config.retry
    console.print(
        f"retry: {r.max_attempts} attempts, backoff {r.base_delay_s:g}–{r.max_delay_s:g} s "
        f"(jittered), timeout {r.timeout_s:g} s; failures go to signals.webhook-deadletter"
    )


async def _deliver(
    settings: Settings,
    config: WebhookConfig,
    group: str,
    from_beginning: bool,
    idle_exit: float | None,
    limit: int | None,
) -> DeliveryStats:
    async with WebhookDelivery(settings, config, group, from_beginning=from_beginning) as delivery:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            # SIGTERM (a service manager stopping us) ends like Ctrl-C: the signal in flight
            # is abandoned uncommitted and delivered again by the next run.
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await delivery.run(idle_exit=idle_exit, limit=limit)
        except asyncio.CancelledError:
            return delivery.stats
        finally:
            loop.remove_signal_handler(signal.SIGTERM)


def _check_kafka(settings: Settings) -> None:
    """Before the service logs anything: Kafka unreachable is one line and exit 69."""
    from streams.api.operations import kafka_answers

    try:
        run(kafka_answers(settings.kafka_bootstrap))
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot reach Kafka at {settings.kafka_bootstrap}: {type(exc).__name__}: {exc}")


def _configure(settings: Settings, **overrides: float | int | None) -> WebhookConfig:
    """The targets from the environment, with the retry options given on the command line."""
    try:
        config = load_config(settings)
    except WebhookConfigError as exc:
        fail(str(exc))
    return _with_overrides(config, **overrides)


def _configure_logging(loglevel: str) -> None:
    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if loglevel.lower() != "debug":
        # Group joins and metadata refreshes are Kafka's business; keep the log about signals.
        logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _serve(
    settings: Settings,
    config: WebhookConfig,
    group: str,
    from_beginning: bool,
    idle_exit: float | None,
    limit: int | None,
) -> DeliveryStats:
    """Announce the service on stderr, then deliver until stopped; failures exit with a line."""
    err_console.print(
        f"tandem webhooks: {len(config.targets)} target(s) for {', '.join(config.kinds())}, "
        f"group {group_id(settings, group)}, broker {settings.kafka_bootstrap}",
        highlight=False,
    )
    try:
        return run(_deliver(settings, config, group, from_beginning, idle_exit, limit), quiet=False)
    except typer.Exit:
        raise
    except TopicMissingError as exc:
        fail(str(exc))
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"webhook delivery stopped: {type(exc).__name__}: {exc}")


def _print_stats(stats: DeliveryStats, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(stats.as_dict(), separators=(",", ":")))
    else:
        err_console.print(
            f"{stats.signals} signal(s): {stats.delivered} delivered, "
            f"{stats.dead_lettered} dead-lettered, {stats.retries} retries",
            highlight=False,
        )


@app.command()
def webhooks(
    group: str = typer.Option(
        DEFAULT_GROUP, "--group", "-g", help="consumer group whose offsets record what was sent"
    ),
    from_beginning: bool = typer.Option(
        False,
        "--from-beginning",
        "-b",
        help="a new group starts at the oldest retained signal, not the newest",
    ),
    max_attempts: int | None = typer.Option(
        None, "--max-attempts", min=1, max=20, help="attempts per signal and URL [default: 5]"
    ),
    base_delay: float | None = typer.Option(
        None, "--base-delay", min=0, help="seconds before the first retry [default: 1]"
    ),
    max_delay: float | None = typer.Option(
        None, "--max-delay", min=0, help="cap of any retry delay, seconds [default: 60]"
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, help="per-request timeout, seconds [default: 10]"
    ),
    check: bool = typer.Option(False, "--check", help="validate the configuration and exit"),
    idle_exit: float | None = typer.Option(
        None, "--idle-exit", min=0, help="stop after this many seconds without a signal"
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="stop after N signals"),
    as_json: bool = typer.Option(False, "--json", help="print the final summary as JSON"),
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning, error"),
) -> None:
    """Deliver every signal to the configured webhook URLs, signed, until Ctrl-C or SIGTERM.

    Targets: TANDEM_WEBHOOKS (JSON) or TANDEM_WEBHOOKS_FILE (JSON or YAML),
    a list of {url, secret, topics} (topics: handoff, nurture, alerts).

    Each POST body is the signal JSON; X-Tandem-Signature is t=<unix>,v1=<HMAC-SHA256 of
    "<unix>.<body>">: receivers refuse it outside a tolerance window (replays).
    URLs are shown redacted (no credentials, query or secret-looking path segments).
    Failures are retried with jittered exponential backoff.
    After the last attempt the signal goes to signals.webhook-deadletter.
    At-least-once: receivers deduplicate by X-Tandem-Signal-Id and X-Tandem-Signal-Version.
    """
    settings = get_settings()
    config = _configure(
        settings,
        max_attempts=max_attempts,
        base_delay_s=base_delay,
        max_delay_s=max_delay,
        timeout_s=timeout,
    )
    if check:
        _describe(config, settings, group)
        return
    _check_kafka(settings)
    _configure_logging(loglevel)
    _print_stats(_serve(settings, config, group, from_beginning, idle_exit, limit), as_json)
