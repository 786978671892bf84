"""What the worker does when an agent crashes: restart it a few times, then stop, loudly.

A handler dead-letters what it cannot take, and an outage is waited out inside the agents, so
an agent that crashes met something its code did not foresee. Restarted, it carries on: what
it held unprocessed is fetched again (`streams.adapters.consumer`). But a cause that stays
(a table whose changelog the consumer's metadata does not show, say) crashes it again on
every restart. Faust's own supervisor would restart it forever while that agent's partitions
stall and the process looks alive. This one stops the worker with exit code 1 once an agent
has crashed too often, so whatever runs the worker sees it and starts it afresh, with new
metadata and a new consumer.

Faust's own shutdown can hang (a rebalance in flight, a consumer waiting for messages the
crashed agent will never acknowledge), and a worker that means to stop but hangs would stall
its partitions as surely as one restarting forever. So giving up also arms a deadline: a
worker still running `stop_deadline_s` later exits there and then, with exit code 1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import Any

from mode import ServiceT
from mode.supervisors import OneForOneSupervisor

log = logging.getLogger("tandem.worker")

CRASHES_TOLERATED = 5
"""Crashes of one agent's actors restarted within `CRASH_WINDOW_S`; one more stops the worker."""

CRASH_WINDOW_S = 120.0

STOP_DEADLINE_S = 60.0
"""How long a worker that gave up on an agent may take to stop before it exits at once."""


class CrashWindow:
    """The crash times of the last `window_s` seconds; over `tolerated`, it is too many."""

    def __init__(self, tolerated: int, window_s: float) -> None:
        self.tolerated = tolerated
        self.window_s = window_s
        self._times: deque[float] = deque()

    def crashed(self, at: float) -> bool:
        """Record a crash at `at` (monotonic seconds); True when there have been too many."""
        self._times.append(at)
        while self._times and self._times[0] <= at - self.window_s:
            self._times.popleft()
        return len(self._times) > self.tolerated


class AgentSupervisor(OneForOneSupervisor):
    """Faust's one-for-one supervisor, which stops the worker when an agent keeps crashing."""

    tolerated = CRASHES_TOLERATED
    window_s = CRASH_WINDOW_S
    stop_deadline_s = STOP_DEADLINE_S

    def __init__(self, *services: ServiceT, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        self.crashes = CrashWindow(self.tolerated, self.window_s)

    async def restart_service(self, service: ServiceT) -> None:
        if not self.crashes.crashed(time.monotonic()):
            await super().restart_service(service)
            return
        reason = service.crash_reason
        log.critical(
            "%s crashed %d times in %.0f s (last: %r); stopping the worker (exit code 1) "
            "so that it starts afresh",
            service,
            self.tolerated + 1,
            self.window_s,
            reason,
        )
        exit_unless_stopped_within(self.stop_deadline_s)
        worker = self.beacon.root.data if self.beacon.root is not None else None
        target = worker if isinstance(worker, ServiceT) else service
        await target.crash(reason or RuntimeError(f"{service} keeps crashing"))


def exit_unless_stopped_within(seconds: float) -> threading.Timer:
    """Exit the process with code 1 if it is still running `seconds` from now.

    A daemon thread, not a task: the event loop it guards against may be the thing that hangs.
    """
    timer = threading.Timer(seconds, _exit_now, args=(seconds,))
    timer.daemon = True
    timer.start()
    return timer


def _exit_now(seconds: float) -> None:
    log.critical("the worker did not stop within %g s; exiting now (exit code 1)", seconds)
    with contextlib.suppress(Exception):  # a closed stream must not keep the process alive
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
    os._exit(1)
