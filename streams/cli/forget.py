"""`tandem forget`: erase a person's journey everywhere Tandem keeps it, for good.

The request goes through the identity sequencer (`touchpoints.accepted`, key ``cmd:forget``),
so it is ordered with the touchpoints: the identity agent removes every identifier of the
person, keeps a suppression digest per identifier (later touchpoints of theirs are dropped),
and the journey agent erases their journey from the journeys table, `journeys.state` and
Redis. The request is audited: a ``person_forgotten`` alert on `signals.alerts` and a worker
log line, both naming only the SHA-256 of the reference (docs/privacy.md).
"""

from __future__ import annotations

import getpass
import logging
import time
from datetime import UTC, datetime

import typer

from streams.cli import app
from streams.cli._common import check_unreachable, console, fail, run
from streams.settings import Settings, get_settings
from streams.workflow.messages import ForgetRequest

log = logging.getLogger("tandem.forget")


async def _send(settings: Settings, request: ForgetRequest) -> None:
    from events.publisher import TouchpointPublisher
    from streams.app import FORGET_KEY, forget_request
    from streams.topics import ACCEPTED, full_name

    async with TouchpointPublisher(
        settings.kafka_bootstrap, settings.topic_prefix, client_id="tandem-forget"
    ) as publisher:
        topic = full_name(ACCEPTED, settings.topic_prefix)
        await publisher.publish_raw(forget_request(request), topic, FORGET_KEY)
        await publisher.flush()


async def _journey_of(settings: Settings, reference: str) -> str | None:
    """The customer id Redis shows a live journey for, under this reference (None: none)."""
    from streams.projection import JourneyProjection

    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        customer_id = await projection.resolve(reference)
        if customer_id is None or await projection.snapshot(customer_id) is None:
            return None
        return customer_id
    finally:
        await projection.close()


def _wait_until_gone(settings: Settings, reference: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(_journey_of(settings, reference)) is None:
            return True
        time.sleep(0.5)
    return False


HELP = (
    "Forget a person for good: their journey is erased from the journeys table, "
    "journeys.state and Redis (snapshot, KPI facts, identifier lookups), and a SHA-256 digest "
    "of each of their identifiers is kept so that no later, replayed or redriven touchpoint of "
    "theirs is ever processed again (counted as suppressed). Signals and dead letters already "
    "on their topics expire with the topics' retention (docs/privacy.md). Example: "
    "tandem forget ada@x.example --yes"
)


@app.command(help=HELP)
def forget(
    reference: str = typer.Argument(
        ..., help="the person: any identifier (kind:value, or a bare email) or customer id"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    by: str | None = typer.Option(
        None, "--by", help="who asks, for the audit trail (default: cli:<login name>)"
    ),
    wait: float = typer.Option(
        30.0, "--wait", help="seconds to wait until Redis shows no journey (0: do not wait)"
    ),
) -> None:
    """Erase a person's journey and suppress their identifiers (see HELP)."""
    settings = get_settings()
    requested_by = by or f"cli:{getpass.getuser()}"
    request = ForgetRequest.for_reference(reference, requested_by, datetime.now(UTC))
    if not request.identifiers and request.customer_id is None:
        fail("name the person: an identifier (kind:value, or a bare email) or a customer id")
    if not yes and not typer.confirm(
        f"Forget {reference!r} for good? This cannot be undone.", default=False
    ):
        fail("cancelled")
    try:
        run(_send(settings, request))
    except Exception as exc:
        check_unreachable(exc, kafka=settings.kafka_bootstrap)
        fail(f"cannot send the forget request to Kafka at {settings.kafka_bootstrap}: {exc}")
    log.info("forget %s sent by %s: reference sha256 %s", request.request_id, requested_by,
             request.reference_sha256)  # fmt: skip
    console.print(f"sent {request.request_id} (reference sha256 {request.reference_sha256})")
    if wait <= 0:
        return
    try:
        gone = _wait_until_gone(settings, reference, wait)
    except Exception as exc:
        check_unreachable(exc, redis=settings.redis_url)
        fail(f"cannot read journeys from Redis at {settings.redis_url}: {exc}")
    if not gone:
        fail(f"a journey is still visible after {wait:g} s (is the worker running?)")
    console.print("[green]done:[/] no journey left for this person; their identifiers are "
                  "suppressed")  # fmt: skip
