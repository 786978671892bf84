"""`tandem worker`: run the stream processor (Faust worker) in the foreground."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer

from streams.cli import app
from streams.cli._common import (
    check_unreachable,
    console,
    fail,
    restore_clients_logging,
    run,
)
from streams.collector import reclaim_every, tune_worker_gc
from streams.event_loop import use_uvloop
from streams.settings import Settings, get_settings

if TYPE_CHECKING:
    from streams.app import TandemApp


@app.command()
def worker(
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning, error"),
    create_topics: bool = typer.Option(
        True,
        "--create-topics/--no-create-topics",
        help="create missing topics and changelogs, and wait until the broker shows them",
    ),
) -> None:
    """Run the Tandem stream processor until Ctrl-C or SIGTERM."""
    from faust import Worker

    from streams.app import build_app
    from streams.playbooks import load_configured_playbook

    settings = get_settings()
    use_uvloop()
    try:
        playbook = load_configured_playbook(settings)
    except Exception as exc:
        fail(str(exc))
    tandem = build_app(settings, playbook)
    if create_topics:
        try:
            run(_prepare_topics(settings, tandem))
        except Exception as exc:
            check_unreachable(exc, kafka=settings.kafka_bootstrap)
            fail(f"cannot prepare topics on {settings.kafka_bootstrap}: {exc}")
        restore_clients_logging()  # from here on the worker's log reports the clients
    worker_process = Worker(tandem.app, loglevel=loglevel)
    # The loop the worker will run, named by its own module ("uvloop", "asyncio").
    loop = type(worker_process.loop).__module__.partition(".")[0]
    console.print(
        f"tandem worker: app {tandem.app.conf.id}, broker {settings.kafka_bootstrap}, "
        f"redis {settings.redis_url}, store {settings.store}, playbook {playbook.version}, "
        f"event loop {loop}"
    )
    if settings.metrics_port:
        _serve_metrics(settings, tandem)
    tune_worker_gc()
    reclaim_every(worker_process.loop, settings.collector_reclaim_s)
    # The Kafka clients log every produce request at DEBUG; building those records costs ~6 %
    # of the worker's time even when nothing prints them.
    level = max(logging.INFO, logging.getLevelName(loglevel.upper()))
    for name in ("aiokafka", "faust", "mode"):
        logging.getLogger(name).setLevel(level)
    worker_process.execute_from_commandline()


async def _prepare_topics(settings: Settings, tandem: TandemApp) -> None:
    """Create the catalogue's topics and the tables' changelogs, then wait until the broker's
    metadata shows them all, so that the worker's group joins with every topic in view."""
    from streams.app import changelog_topics
    from streams.kafka_admin import catalogue_topics, create_named_topics, wait_until_visible

    # The suppressions table's changelog is a catalogue topic: the catalogue's spec wins.
    by_name = {t.name: t for t in [*changelog_topics(tandem.app), *catalogue_topics(settings)]}
    await create_named_topics(settings, list(by_name.values()))
    await wait_until_visible(settings, {name: t.partitions for name, t in by_name.items()})


def _serve_metrics(settings: Settings, tandem: TandemApp) -> None:
    """Serve the worker's Prometheus metrics (docs/operations.md) on their own thread."""
    from streams.metrics import serve_worker_metrics

    host, port = settings.metrics_host, settings.metrics_port
    server = serve_worker_metrics(
        port,
        host,
        app=tandem.app,
        topics=getattr(tandem.app, "source_topics", frozenset()),  # the agents' inputs
        topic_prefix=settings.topic_prefix,
        redis_url=settings.redis_url,
        redis_prefix=settings.redis_prefix,
    )
    if server is not None:
        console.print(f"tandem worker: metrics at http://{host}:{port}/metrics")
