"""Small helpers shared by the command modules: exit codes, one-line errors, consoles, the async
runner, the one time parser, and progress that also speaks to logs and pipes.

Exit codes (the same for every command; docs/cli.md):

- 0 — done.
- 1 — the command ran and found a problem: rejected input lines, nothing found, a failed step.
- 2 — usage: a bad option or argument value, an unreadable input file or playbook.
- 69 — infrastructure unavailable: Kafka or Redis could not be reached (``EX_UNAVAILABLE``).
- 130 — interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
import warnings
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and found a problem (rejected lines, nothing found, a failed step)."""
EXIT_USAGE = 2
"""A bad option or argument value, an unreadable input (Click's own usage errors are 2 too)."""
EXIT_UNAVAILABLE = 69
"""Kafka or Redis could not be reached (sysexits' EX_UNAVAILABLE)."""
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    """A bad option or argument value: one line, exit 2."""
    fail(message, EXIT_USAGE)


# --- infrastructure unavailable --------------------------------------------------------------

Service = Literal["kafka", "redis"]

_FIX = {
    "kafka": ("Kafka", "TANDEM_KAFKA_BOOTSTRAP"),
    "redis": ("Redis", "TANDEM_REDIS_URL"),
}


def redact(address: str) -> str:
    """An address without its password (``redis://user:secret@host`` → ``redis://user:***@host``)."""
    parts = urlsplit(address)
    if "://" not in address or parts.password is None:
        return address
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def unavailable_message(service: Service, address: str) -> str:
    """The one line that says what could not be reached and how to fix it."""
    name, variable = _FIX[service]
    return (
        f"{name} is not reachable at {redact(address)}: start it with `tandem infra up`, "
        f"or set {variable} to where it runs"
    )


def unavailable(service: Service, address: str) -> NoReturn:
    """Kafka or Redis could not be reached: one line naming the address and the fix, exit 69."""
    fail(unavailable_message(service, address), EXIT_UNAVAILABLE)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it wraps (cause, context, failures of a publish) and group members."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        stack.extend(getattr(current, "exceptions", ()) or ())
        stack.extend(getattr(current, "failures", ()) or ())


def kafka_unreachable(exc: BaseException) -> bool:
    """Whether `exc` means the broker could not be reached (not: it refused a request)."""
    from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError

    unreachable = (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError, ConnectionError)
    return any(isinstance(e, unreachable) for e in _causes(exc))


def redis_unreachable(exc: BaseException) -> bool:
    """Whether `exc` means Redis could not be reached."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    unreachable = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)
    return any(isinstance(e, unreachable) for e in _causes(exc))


def check_unreachable(
    exc: BaseException, kafka: str | None = None, redis: str | None = None
) -> None:
    """Exit 69 with the one line if `exc` means Kafka (at `kafka`) or Redis (at `redis`) could
    not be reached; return otherwise, for the caller's own message."""
    if kafka is not None and kafka_unreachable(exc):
        unavailable("kafka", kafka)
    if redis is not None and redis_unreachable(exc):
        unavailable("redis", redis)


_CLIENT_LOGGERS = ("aiokafka", "kafka", "asyncio", "redis")


def quiet_clients() -> None:
    """Keep the clients' own logging off the terminal of short commands.

    aiokafka logs every failed connection attempt and, when a client that failed to start is
    garbage-collected, asyncio logs "Unclosed AIOKafkaConsumer/Producer": noise next to the one
    line the command prints itself. Long-running services (worker, webhooks) configure their
    logging themselves and do not call this.
    """
    for name in _CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # The same, as a ResourceWarning (shown under -W default or -X dev).
    warnings.filterwarnings("ignore", "Unclosed AIOKafka", ResourceWarning)


def restore_clients_logging() -> None:
    """Undo `quiet_clients` (a service that goes on running after a short client step)."""
    for name in _CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def run(coro: Coroutine[Any, Any, T], *, quiet: bool = True) -> T:
    """Run a coroutine to completion; Ctrl-C exits cleanly with code 130.

    `quiet` silences the Kafka and Redis clients' logging (see `quiet_clients`).
    """
    if quiet:
        quiet_clients()
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


# --- times -------------------------------------------------------------------------------------

TIME_FORMATS = (
    "a date (2025-06-01), a date and time (2025-06-01T12:00, 2025-06-01 12:00:30), either with "
    "an offset (+02:00, Z) or without (then in --tz, UTC by default), or `now`"
)

_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_tz(value: str | None) -> tzinfo:
    """A time zone: an IANA name (Europe/Paris), UTC, Z, or an offset (+02:00, -0530)."""
    if value is None or value.upper() in ("UTC", "Z"):
        return UTC
    match = _OFFSET.match(value.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta >= timedelta(hours=24):
            usage_error(f"--tz {value!r}: an offset must be less than 24 hours")
        from datetime import timezone

        return timezone(-delta if sign == "-" else delta)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        usage_error(f"--tz {value!r} is not a time zone: use e.g. UTC, Europe/Paris or +02:00")


def parse_time(
    value: str,
    option: str,
    tz: tzinfo = UTC,
    *,
    end_of_day: bool = False,
    now: datetime | None = None,
) -> datetime:
    """`value` as an aware moment: the one parser of every time option of the CLI.

    Accepts `TIME_FORMATS`. A time without an offset is read in `tz`. A bare date is the start
    of that day in `tz`, or with `end_of_day` the start of the next day (an inclusive "until").
    Anything else exits 2 with one line naming `option`.
    """
    text = value.strip()
    if text.lower() == "now":
        return now or datetime.now(UTC)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        usage_error(f"{option} {value!r} is not a time: give {TIME_FORMATS}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment


# --- progress ----------------------------------------------------------------------------------

PLAIN_PROGRESS_INTERVAL_S = 5.0
"""How often long work prints a progress line when stderr is not a terminal (CI, pipes)."""


class PlainProgress:
    """`rich.progress.Progress`'s small API for logs and pipes: a plain line every
    `PLAIN_PROGRESS_INTERVAL_S` seconds (never a bar, never control characters)."""

    def __init__(self, label: str, unit: str = "") -> None:
        self.label = label
        self.unit = unit
        self._tasks: dict[int, dict[str, Any]] = {}
        self._last = time.monotonic()

    def __enter__(self) -> PlainProgress:
        self._last = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> TaskID:
        task = TaskID(len(self._tasks))
        self._tasks[task] = {"description": description, "total": total, "done": 0.0, **fields}
        return task

    def update(
        self,
        task: TaskID,
        *,
        advance: float | None = None,
        completed: float | None = None,
        total: float | None = None,
        **fields: Any,
    ) -> None:
        state = self._tasks[task]
        if total is not None:
            state["total"] = total
        if completed is not None:
            state["done"] = completed
        if advance is not None:
            state["done"] += advance
        state.update(fields)
        self._maybe_print(state)

    def advance(self, task: TaskID, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def _maybe_print(self, state: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last < PLAIN_PROGRESS_INTERVAL_S:
            return
        self._last = now
        done, total = state["done"], state["total"]
        line = f"{self.label}: {state['description']} {_amount(done, self.unit)}"
        if total:
            line += f" of {_amount(total, self.unit)} ({100 * done / total:.0f} %)"
        if "lines" in state:
            line += f", {state['lines']} lines"
        print(line, file=sys.stderr, flush=True)


def _amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1_000_000:.1f} MB"
    return f"{int(value):,}"


@contextmanager
def progress_for(
    rich_progress: Progress, label: str, unit: str = ""
) -> Iterator[Progress | PlainProgress]:
    """`rich_progress` on a terminal; plain lines (`PlainProgress`) for logs and pipes."""
    if err_console.is_terminal:
        with rich_progress as progress:
            yield progress
    else:
        with PlainProgress(label, unit) as plain:
            yield plain
