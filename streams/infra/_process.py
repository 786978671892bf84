"""Process plumbing shared by the Kafka and Redis services.

PID files, "is this PID still *our* process" checks, detached launching, readiness waiting
and stopping. No Kafka or Redis knowledge lives here: each service describes itself through
the `Service` base class and this module does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

Progress = Callable[[str], None]
"""Receives one human-readable line about what is happening right now."""

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", ""})

EXEC_WAIT_S = 5.0
"""How long a launch waits for its child to show the server's command line."""

# Children launched by *this* interpreter. Keeping the Popen objects lets `down` reap them
# when `up` and `down` run in the same process (the test session), instead of leaving a
# zombie whose PID looks alive, and stops Popen.__del__ warning about a running child.
_children: dict[int, subprocess.Popen[bytes]] = {}


class InfraError(RuntimeError):
    """A service could not be started, reached or stopped; the message is one line for users."""


class Probe(StrEnum):
    """What is found at a service's address."""

    ANSWERS = "answers"  # the protocol works: a Kafka broker / a Redis that replies to PING
    BUSY = "busy"  # the port accepts connections but the protocol check fails
    CLOSED = "closed"  # nothing listens


class Action(StrEnum):
    """What `up` does about one service, from what it finds (see `decide`)."""

    ALREADY_RUNNING = "already running"  # ours (PID file, live process) and answering
    WAIT = "wait"  # ours and alive but not answering yet: still starting, wait for it
    REUSE = "reuse"  # someone else's service answers: use it, start nothing
    START = "start"  # nothing there and the address is local: start ours
    CONFLICT = "conflict"  # the port is taken by something that does not speak the protocol
    UNREACHABLE = "unreachable"  # nothing there, and the address is not on this machine


def decide(our_pid: int | None, probe: Probe, local: bool) -> Action:
    """The idempotency rule of `up`: never start a second copy, never fight over a port."""
    if our_pid is not None:
        return Action.ALREADY_RUNNING if probe is Probe.ANSWERS else Action.WAIT
    if probe is Probe.ANSWERS:
        return Action.REUSE
    if probe is Probe.BUSY:
        return Action.CONFLICT
    return Action.START if local else Action.UNREACHABLE


# --- /proc helpers -----------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True if `pid` is a live process (zombies count as dead: they only await reaping)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    """The argv of `pid` ([] if it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _reap(pid: int) -> None:
    # A child of this interpreter that exited stays a zombie until waited for.
    child = _children.get(pid)
    if child is not None:
        child.poll()  # reaps it if it exited; the exit code stays on the Popen object
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# --- PID files ------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The PID recorded in `path`, or None if the file is missing or garbage."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid(path: Path, pid: int) -> None:
    """Record `pid` atomically (a reader never sees a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


# --- network probes -------------------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """'host:port' (first entry of a comma-separated list, optional scheme) -> (host, port)."""
    first = address.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"//{first}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def tail(path: Path, lines: int = 5, max_chars: int = 600) -> str:
    """The last non-empty lines of a log file, joined on one line (for one-line errors)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16_384))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept) or "(log is empty)"
    return joined if len(joined) <= max_chars else "…" + joined[-max_chars:]


# --- services -------------------------------------------------------------------------------


@dataclass
class Stopped:
    """How `Service.stop` went."""

    pid: int | None  # the PID that was stopped, None if nothing of ours was running
    seconds: float = 0.0
    killed: bool = False  # needed SIGKILL after the grace period


class Service(ABC):
    """One local server process that `tandem infra` can start, find, probe and stop."""

    name: str  # human name: "Kafka"
    key: str  # file-name stem: "kafka" -> run/kafka.pid, logs/kafka.log
    default_port: int
    default_timeout: float  # seconds to wait for readiness after launch
    stop_grace: float = 30.0  # seconds between SIGTERM and SIGKILL

    def __init__(self, data_dir: Path, address: str) -> None:
        self.data_dir = data_dir
        self.host, self.port = split_host_port(address, self.default_port)
        self.pid_file = data_dir / "run" / f"{self.key}.pid"
        self.log_path = data_dir / "logs" / f"{self.key}.log"
        self.launched_at: float | None = None  # monotonic time of our last launch

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        """Whether the configured address is on this machine (so we may start a server)."""
        return self.host in LOCAL_HOSTS

    # What each service must tell us about itself.

    @abstractmethod
    def owns(self, cmdline: Sequence[str]) -> bool:
        """True if a process with this argv is a server this service would have started."""

    @abstractmethod
    def speaks(self, timeout: float) -> bool:
        """True if the protocol works at the address (the port is known to accept)."""

    @abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Everything before launch: binaries, configuration, storage. Idempotent."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv of the server process."""

    def working_dir(self) -> Path:
        return self.data_dir

    # Shared behaviour.

    def our_pid(self) -> int | None:
        """The PID of the server we started, if it is still alive; clears a stale PID file.

        A PID file whose process is gone, or whose PID now belongs to some other program
        (PIDs are recycled), is stale: it is removed so nobody ever signals that PID.
        """
        pid = read_pid(self.pid_file)
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        if pid_alive(pid) and self.owns(pid_cmdline(pid)):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def probe(self, timeout: float = 3.0) -> Probe:
        """Look at the address: nothing there, something there, or our protocol there."""
        if not port_open(self.host, self.port):
            return Probe.CLOSED
        return Probe.ANSWERS if self.speaks(timeout) else Probe.BUSY

    def launch(self) -> int:
        """Start the server detached (own session, output to the log); record its PID."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._rotate_log()
        argv = self.command()
        cwd = self.working_dir()
        cwd.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Own session: no controlling terminal, so neither Ctrl-C in the shell
                    # nor the exit of `tandem infra up` takes the server down with it.
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise InfraError(f"could not launch {self.name} ({argv[0]}): {exc}") from exc
        self.launched_at = time.monotonic()
        _children[proc.pid] = proc
        self._await_exec(proc)
        write_pid(self.pid_file, proc.pid)
        return proc.pid

    def _await_exec(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait until the child runs the server's program (or has exited), briefly.

        Between fork and exec a child still shows this interpreter's command line: `our_pid`
        would then take the new PID file for a stale one and remove it (seen under load, with
        a stand-in server that answered at once)."""
        deadline = time.monotonic() + EXEC_WAIT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if self.owns(pid_cmdline(proc.pid)):
                return
            time.sleep(0.005)

    def wait_ready(self, pid: int, timeout: float, started_here: bool = True) -> float:
        """Block until the service answers; returns the seconds since launch (or since called).

        Fails fast if the process dies, and with the log's last lines after `timeout`.
        """
        began = time.monotonic()
        deadline = began + timeout
        while True:
            if not pid_alive(pid):
                code = self._exit_code(pid)
                how = f" with code {code}" if code is not None else ""
                raise InfraError(
                    f"{self.name} exited{how} while starting; last log lines: "
                    f"{tail(self.log_path)} — see {self.log_path}"
                )
            remaining = deadline - time.monotonic()
            if port_open(self.host, self.port) and self.speaks(max(0.5, min(5.0, remaining))):
                since = self.launched_at if started_here and self.launched_at else began
                return time.monotonic() - since
            if time.monotonic() >= deadline:
                what = "did not become ready" if started_here else "(started earlier) is not ready"
                raise InfraError(
                    f"{self.name} {what} within {timeout:g} s; last log lines: "
                    f"{tail(self.log_path)} — see {self.log_path}"
                )
            time.sleep(0.25)

    def stop(self, grace: float | None = None) -> Stopped:
        """Stop the server we started (SIGTERM, then SIGKILL after `grace` s).

        Only a PID from our PID file whose process still looks like our server is signalled.
        """
        pid = self.our_pid()
        if pid is None:
            return Stopped(pid=None)
        grace = self.stop_grace if grace is None else grace
        began = time.monotonic()
        killed = False
        self._signal(pid, signal.SIGTERM)
        while pid_alive(pid) and time.monotonic() - began < grace:
            time.sleep(0.1)
        if pid_alive(pid):
            # Still ours? (Checked again: the PID cannot be recycled while it is alive, but
            # the check is cheap and keeps the rule "never kill a foreign PID" local.)
            if self.owns(pid_cmdline(pid)):
                self._signal(pid, signal.SIGKILL)
                killed = True
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        _children.pop(pid, None)
        return Stopped(pid=pid, seconds=time.monotonic() - began, killed=killed)

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise InfraError(f"could not signal {self.name} (PID {pid}): {exc}") from exc

    def _exit_code(self, pid: int) -> int | None:
        child = _children.pop(pid, None)
        return child.poll() if child is not None else None

    def _rotate_log(self) -> None:
        # One generation is kept, so the log of the previous run survives a restart and the
        # current log starts with this run (its last lines explain this run's failures).
        if self.log_path.exists() and self.log_path.stat().st_size > 0:
            self.log_path.replace(self.log_path.with_suffix(self.log_path.suffix + ".1"))


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from plain synchronous code, even if the caller sits in an event loop.

    `up`/`status` are synchronous so scripts and pytest fixtures can call them; when the caller
    is itself inside a running loop (an async fixture), asyncio.run would refuse, so the
    coroutine then runs on a fresh loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
