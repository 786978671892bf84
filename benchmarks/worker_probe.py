"""`tandem worker` with its KPI work accounted: ``python -m benchmarks.worker_probe worker …``.

Wraps the worker's KPI entry points (`KPI_ENTRY_POINTS`: building a changed journey's KPI
facts, queueing their version-checked write in the Redis pipeline) so each call adds the CPU
time of the thread that ran it (`time.thread_time`, so work done in a worker thread counts
too), and every half second writes, to the file named by ``TANDEM_BENCH_PROBE``, the
process's CPU time and the KPI share of it, its peak resident memory, and the collector's
pauses and the garbage it found per generation (those of 50 ms or more with their time). Costs
two clock reads per call and per collection. A coroutine function is timed around its await:
right for these, which queue into a pipeline and never wait on I/O (one that did would be
charged for whatever ran meanwhile).

The entry points are looked up by name: the engine's KPI code is being rebuilt, so a missing
one is reported (``missing``), never an error — update the list when the names change.
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import json
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

KPI_ENTRY_POINTS = (
    "streams.journey.kpis:journey_facts",
    "streams.journey.kpis:journey_facts_json",  # what the worker calls: the facts and their JSON
    "streams.kpi_store:KpiStore.queue_facts",
)

_cpu: dict[str, float] = {}
_calls: dict[str, int] = {}
_lock = threading.Lock()
_inside = threading.local()


def _charge(name: str, spent: float) -> None:
    with _lock:
        _cpu[name] = _cpu.get(name, 0.0) + spent
        _calls[name] = _calls.get(name, 0) + 1


def _accounted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                _charge(name, time.thread_time() - started)

        return coroutine

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "active", False):  # nested KPI calls count once
            return function(*args, **kwargs)
        _inside.active = True
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _inside.active = False
            _charge(name, time.thread_time() - started)

    return wrapper


def install() -> list[str]:
    """Wrap every entry point that exists; the names of those that do not."""
    missing = []
    for entry in KPI_ENTRY_POINTS:
        module_name, path = entry.split(":")
        try:
            owner: Any = importlib.import_module(module_name)
            *parents, attribute = path.split(".")
            for parent in parents:  # a method: patched on its class
                owner = getattr(owner, parent)
            setattr(owner, attribute, _accounted(entry, getattr(owner, attribute)))
        except (ImportError, AttributeError):
            missing.append(entry)
    return missing


LONG_PAUSE_S = 0.05
"""A collection at least this long is listed with its time (it shows in a latency tail)."""

_gc: dict[int, list[float]] = {g: [0, 0.0, 0.0, 0] for g in range(3)}
"""Per generation: collections, their pauses in all, the longest, and the garbage found."""
_long_pauses: list[tuple[float, int, float]] = []
_gc_started = 0.0


def _collecting(phase: str, info: dict[str, Any]) -> None:
    """`gc.callbacks` hook: count each generation's collections and their pauses."""
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
        return
    spent = time.perf_counter() - _gc_started
    seen = _gc[info["generation"]]
    seen[0] += 1
    seen[1] += spent
    seen[2] = max(seen[2], spent)
    seen[3] += info["collected"]
    if spent >= LONG_PAUSE_S:
        _long_pauses.append((time.time(), info["generation"], spent))
        del _long_pauses[:-200]


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB, since it started its program.

    Linux's `getrusage` keeps the peak across `execve`, so a worker started by a bench process
    that had built a 100,000-touchpoint journey reported the bench process's peak (1,533 MB
    against its own 522). The address space's high-water mark (`VmHWM`) starts afresh with
    the program; `getrusage` only where there is no /proc.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _report(path: str, missing: list[str]) -> None:
    while True:
        with _lock:
            state = {
                "at": time.time(),
                "process_cpu_s": time.process_time(),
                "peak_rss_mb": peak_rss_mb(),
                "kpi_cpu_s": sum(_cpu.values()),
                "by_entry_point": {k: {"cpu_s": v, "calls": _calls[k]} for k, v in _cpu.items()},
                "missing": missing,
                "gc": {
                    str(generation): {
                        "collections": n,
                        "pause_s": total,
                        "max_pause_s": most,
                        "found": found,
                    }
                    for generation, (n, total, most, found) in _gc.items()
                },
                "gc_long_pauses": list(_long_pauses),
            }
        temporary = f"{path}.tmp"
        with open(temporary, "w") as out:
            json.dump(state, out)
        os.replace(temporary, path)  # readers never see half a file
        time.sleep(0.5)


def main() -> None:
    missing = install()
    gc.callbacks.append(_collecting)
    path = os.environ.get("TANDEM_BENCH_PROBE")
    if path:
        threading.Thread(target=_report, args=(path, missing), daemon=True).start()
    from streams.cli import main as tandem

    tandem()


if __name__ == "__main__":
    main()
