"""Child processes of a run (workers, the Faust passthrough): started, watched, stopped by PID.

Every child is registered in `CHILDREN` when it starts; the runner stops whatever is still
running at the end (also after a failure or Ctrl-C), by its own PID only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CHILDREN: list[Child] = []


class Child:
    """A subprocess whose output goes to a log file, so a run can wait for a line in it."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self.started_at = 0.0
        """`time.time()` just before the process was started (wall clock, like Kafka's)."""

    def start(self) -> Child:
        """Start the process (cwd: the project, so ``python -m`` runs this checkout's code)."""
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.started_at = time.time()
            self.process = subprocess.Popen(
                [sys.executable, *self.argv],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the runner only
            )
        CHILDREN.append(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What this start of the process has logged so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[self._offset :].decode("utf-8", "replace")

    def wait_for(self, *texts: str, timeout: float = 120.0) -> float:
        """Wait until the log shows one of `texts`; the `time.time()` it was first seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in self.output() for text in texts):
                return time.time()
            if not self.running():
                raise RuntimeError(f"{self.name} exited early:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: no {texts[0]!r} within {timeout:.0f} s ({self.log_path})")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if not self.running() or self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        """A crash: SIGKILL, no graceful shutdown, no final commit."""
        if self.running() and self.process is not None:
            self.process.kill()
            self.process.wait(10)


def stop_all() -> list[str]:
    """Stop every child still running (by PID); the names of those that were."""
    stopped = []
    for child in CHILDREN:
        if child.running():
            stopped.append(f"{child.name} (pid {child.pid})")
            child.stop()
    CHILDREN.clear()
    return stopped


def worker_argv(*, probe: bool = True) -> list[str]:
    """A `tandem worker`, through the KPI CPU probe (`benchmarks.worker_probe`) or not."""
    entry = ["-m", "benchmarks.worker_probe"] if probe else ["-m", "streams.cli"]
    return [*entry, "worker", "--loglevel", "info", "--no-create-topics"]


def python_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment plus `extra`, with the project first on the path."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


WORKER_READY = ("Worker: Ready", "[^Worker]: Ready")
"""How a Faust worker says it has started (tables recovered, agents running)."""
