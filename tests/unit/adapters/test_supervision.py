"""Counting an agent's crashes: how many, within how long, stop the worker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from streams.adapters.supervision import CrashWindow


def test_crashes_up_to_the_tolerated_number_are_restarted() -> None:
    window = CrashWindow(tolerated=3, window_s=60.0)

    assert [window.crashed(at) for at in (0.0, 1.0, 2.0)] == [False, False, False]
    assert window.crashed(3.0)


def test_crashes_older_than_the_window_are_forgotten() -> None:
    window = CrashWindow(tolerated=2, window_s=10.0)

    assert not window.crashed(0.0)
    assert not window.crashed(5.0)
    assert not window.crashed(10.0)  # the crash at 0 s has left the window
    assert not window.crashed(20.0)  # so have those at 5 s and 10 s
    assert not window.crashed(21.0)
    assert window.crashed(22.0)


HANGING_WORKER = """
import logging, sys, time
from streams.adapters.supervision import exit_unless_stopped_within
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
exit_unless_stopped_within({deadline})
time.sleep({runs_for})
"""


def _run(deadline: float, runs_for: float) -> subprocess.CompletedProcess[str]:
    code = HANGING_WORKER.format(deadline=deadline, runs_for=runs_for)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[3],
    )


def test_a_worker_still_running_at_the_deadline_exits_with_code_1() -> None:
    started = time.monotonic()

    done = _run(deadline=0.3, runs_for=20)

    assert done.returncode == 1
    assert time.monotonic() - started < 30
    assert "the worker did not stop within 0.3 s; exiting now (exit code 1)" in done.stderr


def test_a_worker_that_stops_in_time_keeps_its_own_exit_code() -> None:
    started = time.monotonic()

    done = _run(deadline=50, runs_for=0.1)

    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30  # the armed deadline does not keep it alive
    assert "exiting now" not in done.stderr
