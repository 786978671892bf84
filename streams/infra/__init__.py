"""Local infrastructure without Docker: a real Kafka broker (KRaft) and Redis.

The public surface is three synchronous, idempotent functions, safe to call twice and from
scripts, the CLI (`tandem infra up|down|status`) and pytest fixtures alike:

    from streams.infra import up, down, status
    up(settings, timeout=90)   # reuse what answers, start what is missing, wait until ready
    status(settings)           # what runs where, and whether we started it
    down(settings)             # stop only what `up` started (by PID file)

State lives under `settings.data_dir`: `run/*.pid` (only for processes we started),
`logs/*.log`, `kafka/libs` (cached jars), `kafka/data` (broker storage), `redis/`.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from streams.infra._process import (
    Action,
    InfraError,
    Probe,
    Progress,
    Service,
    decide,
)
from streams.infra.kafka import KafkaService
from streams.infra.redis import RedisService
from streams.settings import Settings, get_settings

__all__ = [
    "InfraError",
    "InfraStatus",
    "ServiceState",
    "ServiceStatus",
    "down",
    "status",
    "up",
]


class ServiceState(StrEnum):
    """How a service is doing, as far as `tandem infra` can tell."""

    RUNNING = "running"  # started by tandem (PID file) and answering
    NOT_READY = "not ready"  # started by tandem, alive, but not answering (starting or hung)
    REACHABLE = "reachable"  # answering, but not started by tandem: used, never stopped
    DOWN = "down"  # nothing answering at the address


@dataclass(frozen=True)
class ServiceStatus:
    """One service after `up`, `down` or `status`."""

    name: str
    address: str
    state: ServiceState
    pid: int | None  # PID of the process tandem started (None if not ours / not running)
    log_path: Path
    detail: str = ""  # what happened, for people: "started in 5.1 s", "left alone", …
    started: bool = False  # started by this very call of `up`

    @property
    def ours(self) -> bool:
        """Whether tandem started this service (and so `down` will stop it)."""
        return self.pid is not None

    @property
    def available(self) -> bool:
        """Whether the service answers (ours or not)."""
        return self.state in (ServiceState.RUNNING, ServiceState.REACHABLE)


@dataclass(frozen=True)
class InfraStatus:
    """Kafka and Redis together."""

    kafka: ServiceStatus
    redis: ServiceStatus

    @property
    def services(self) -> tuple[ServiceStatus, ServiceStatus]:
        return (self.kafka, self.redis)

    @property
    def available(self) -> bool:
        """Whether both services answer."""
        return all(service.available for service in self.services)


def _services(settings: Settings) -> tuple[KafkaService, RedisService]:
    return KafkaService(settings), RedisService(settings)


def _quiet_progress(_: str) -> None:
    pass


@contextlib.contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    # Two `up`s at once (two terminals, parallel test sessions) must not both start a broker.
    lock_path = settings.data_dir / "run" / "infra.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _snapshot(service: Service, detail: str = "", started: bool = False) -> ServiceStatus:
    pid = service.our_pid()
    probe = service.probe()
    if pid is not None:
        state = ServiceState.RUNNING if probe is Probe.ANSWERS else ServiceState.NOT_READY
    elif probe is Probe.ANSWERS:
        state = ServiceState.REACHABLE
    else:
        state = ServiceState.DOWN
        if probe is Probe.BUSY and not detail:
            detail = f"port {service.port} is taken by something that is not {service.name}"
    return ServiceStatus(
        name=service.name,
        address=service.address,
        state=state,
        pid=pid,
        log_path=service.log_path,
        detail=detail,
        started=started,
    )


def _refuse(service: Service, action: Action) -> InfraError:
    if action is Action.CONFLICT:
        return InfraError(
            f"{service.address} accepts connections but is not a working {service.name}; "
            f"free port {service.port} or point Tandem elsewhere (TANDEM_ settings)"
        )
    return InfraError(
        f"{service.name} at {service.address} is not reachable, and it is not on this machine "
        "so tandem cannot start it"
    )


def up(
    settings: Settings | None = None,
    *,
    timeout: float = KafkaService.default_timeout,
    redis_timeout: float = RedisService.default_timeout,
    progress: Progress | None = None,
) -> InfraStatus:
    """Make Kafka and Redis available; return what runs where.

    Whatever already answers at the configured address is reused as is (nothing started,
    nothing recorded). Otherwise the server is prepared (jars fetched once, storage formatted
    once, redis-server installed once), started detached (it outlives this call), and waited
    for: `timeout` seconds for Kafka, `redis_timeout` for Redis.

    Raises InfraError (one-line message) on failure, after stopping whatever this call started.
    """
    settings = settings or get_settings()
    say = progress or _quiet_progress
    kafka, redis = _services(settings)
    budgets: dict[str, float] = {kafka.key: timeout, redis.key: redis_timeout}
    with _exclusive(settings):
        plan: list[tuple[Service, Action, int | None]] = []
        service: Service
        for service in (kafka, redis):
            pid = service.our_pid()
            action = decide(pid, service.probe(), service.local)
            if action in (Action.CONFLICT, Action.UNREACHABLE):
                raise _refuse(service, action)
            plan.append((service, action, pid))

        started: list[Service] = []
        try:
            for index, (service, action, pid) in enumerate(plan):
                if action is not Action.START:
                    continue
                service.prepare(say)
                # Preparing may have brought a server up by itself (a distro package that
                # starts its service on install): look again rather than fight it for the port.
                action = decide(None, service.probe(), service.local)
                if action is Action.START:
                    say(f"starting {service.name} at {service.address}…")
                    pid = service.launch()
                    started.append(service)
                elif action is not Action.REUSE:
                    raise _refuse(service, action)
                plan[index] = (service, action, pid)

            details = _wait_ready(plan, budgets, started, say)
        except BaseException:
            # A half-started stack is worse than none: stop what this attempt started.
            for service in reversed(started):
                with contextlib.suppress(Exception):
                    service.stop()
            raise

        return InfraStatus(
            kafka=_snapshot(kafka, details[kafka.key], started=kafka in started),
            redis=_snapshot(redis, details[redis.key], started=redis in started),
        )


def _wait_ready(
    plan: list[tuple[Service, Action, int | None]],
    budgets: dict[str, float],
    started: list[Service],
    say: Progress,
) -> dict[str, str]:
    """Wait for every service of the plan to answer; what happened to each, for people."""
    details: dict[str, str] = {}
    # Quick services first, so each "ready in" is its own and not Kafka's wait.
    for service, action, pid in sorted(plan, key=lambda item: budgets[item[0].key]):
        if action is Action.REUSE:
            details[service.key] = "reused (it was already running)"
        elif action is Action.ALREADY_RUNNING:
            details[service.key] = "already running"
        else:
            assert pid is not None
            budget = budgets[service.key]
            say(f"waiting for {service.name} at {service.address} (up to {budget:g} s)…")
            took = service.wait_ready(pid, budget, started_here=service in started)
            details[service.key] = (
                f"started, ready in {took:.1f} s"
                if service in started
                else f"was starting, ready after {took:.1f} s more"
            )
    return details


def down(
    settings: Settings | None = None,
    *,
    purge: bool = False,
    grace: float | None = None,
    progress: Progress | None = None,
) -> InfraStatus:
    """Stop the Kafka and Redis that `up` started (by PID file); leave anything else alone.

    Each process gets SIGTERM, then SIGKILL after `grace` seconds (default: 30 for Kafka,
    whose controlled shutdown takes a few seconds; 10 for Redis). A PID that no longer
    belongs to our server is never signalled. `purge` also deletes Kafka's storage, so the
    next `up` formats a fresh cluster. Safe to call when nothing runs.
    """
    settings = settings or get_settings()
    say = progress or _quiet_progress
    kafka, redis = _services(settings)
    details: dict[str, str] = {}
    service: Service
    with _exclusive(settings):
        for service in (kafka, redis):
            if service.our_pid() is not None:
                say(f"stopping {service.name}…")
            stopped = service.stop(grace)
            if stopped.pid is not None:
                how = " (killed after the grace period)" if stopped.killed else ""
                details[service.key] = f"stopped PID {stopped.pid} in {stopped.seconds:.1f} s{how}"
            elif service.probe() is Probe.ANSWERS:
                details[service.key] = "left alone"
            else:
                details[service.key] = "was not running"
        if purge:
            if kafka.probe() is not Probe.CLOSED:
                raise InfraError(
                    f"Kafka still answers at {kafka.address} (not started by tandem); "
                    f"not deleting {kafka.storage}"
                )
            if kafka.purge():
                details[kafka.key] += f"; deleted {kafka.storage}"
        return InfraStatus(
            kafka=_snapshot(kafka, details[kafka.key]),
            redis=_snapshot(redis, details[redis.key]),
        )


def status(settings: Settings | None = None) -> InfraStatus:
    """What runs at the configured addresses, and whether tandem started it. Starts nothing."""
    settings = settings or get_settings()
    kafka, redis = _services(settings)
    return InfraStatus(kafka=_snapshot(kafka), redis=_snapshot(redis))
