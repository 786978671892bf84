"""Counting an agent's crashes: how many, within how long, stop the worker."""

from __future__ import annotations

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
