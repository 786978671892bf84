"""``python -m benchmarks [--quick] [--only NAME ...]``: run the measures, write the results.

Writes ``bench-results.json`` (``--out``) and prints a table of every metric with its target
from issue 9 and pass/FAIL. Exits 0 when every measurement was taken, targets met or not (the
bench reports, it does not gate); 1 when a measurement itself failed. Whatever it started —
workers, the Faust passthrough — is stopped by PID at the end, and every deployment's topics
and Redis keys are deleted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks.context import Context, Result, Sizes
from benchmarks.measures import ORDER
from benchmarks.report import merge_results, table, write_results
from streams.event_loop import use_uvloop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME",
        help=f"run only these measures (repeat or comma-separate): {', '.join(ORDER)}",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--people", type=int, help="people in the workload (full: 2,700)")
    parser.add_argument(
        "--recovery-journeys", type=int,
        help="journeys in state when the worker is killed (full: 100,000)",
    )  # fmt: skip
    parser.add_argument(
        "--kpi-journeys", type=int, help="journeys' facts for the KPI query (full: 100,000)"
    )
    parser.add_argument("--latency-seconds", type=float, help="how long the paced publisher runs")
    parser.add_argument(
        "--engine-rate", type=float,
        help="the engine's rate for the latency measure when the engine is not measured",
    )  # fmt: skip
    return parser


def _wanted(only: list[str]) -> list[str]:
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        raise SystemExit(f"unknown measure(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    return [n for n in ORDER if n in names] if names else list(ORDER)


def _git_commit() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
        cwd=processes.PROJECT_ROOT,
    )  # fmt: skip
    return done.stdout.strip() or None


def _measure(ctx: Context, name: str) -> tuple[dict[str, Any], bool]:
    print(f"== {name} ==", flush=True)
    started = time.monotonic()
    module = importlib.import_module(f"benchmarks.measures.{name}")
    try:
        result: Result = module.run(ctx)
    except Exception as exc:
        traceback.print_exc()
        print(f"== {name}: FAILED ({exc})", flush=True)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}, False
    finally:
        for stray in processes.stop_all():  # a failed measure may leave a child behind
            print(f"  stopped {stray}")
    ctx.results[name] = result
    elapsed = time.monotonic() - started
    print(f"== {name}: done in {elapsed:.1f} s", flush=True)
    return {"status": "ok", "seconds": elapsed, "metrics": result.metrics,
            "notes": result.notes, "details": result.details}, True  # fmt: skip


IN_PROCESS = {"core", "cost", "bytes"}
"""Measures that need no broker and no Redis."""


def _infrastructure(wanted: list[str]) -> Any:
    """Kafka and Redis: reused when they answer, else started (`tandem infra up`)."""
    if set(wanted) <= IN_PROCESS:
        return None
    from streams import infra
    from streams.settings import Settings

    return infra.up(Settings())


def _release(status: Any) -> None:
    """Stop Kafka and Redis only if this run started them."""
    if status is not None and any(service.started for service in status.services):
        from streams import infra
        from streams.settings import Settings

        infra.down(Settings())


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    # Producing to topics created a moment ago logs NotLeaderForPartition retries: normal.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # The worker's event loop, so the raw-aiokafka ceiling runs on the engine's runtime too.
    loop = use_uvloop()
    base = Sizes.quick_run() if args.quick else Sizes()
    sizes = base.with_overrides(
        people=args.people, recovery_journeys=args.recovery_journeys,
        kpi_journeys=args.kpi_journeys, latency_s=args.latency_seconds,
    )  # fmt: skip
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    ctx = Context(sizes=sizes, previous=previous)
    if args.engine_rate:
        ctx.results["engine (given)"] = Result({"engine_events_per_s": args.engine_rate})
    run_id = uuid.uuid4().hex[:8]
    run: dict[str, Any] = {
        "run": {"run_id": run_id, "started_at": datetime.now(UTC).isoformat(),
                "commit": _git_commit(), "quick": args.quick, "sizes": vars(sizes),
                "cpus": os.cpu_count(), "python": platform.python_version(), "event_loop": loop,
                "load_average_at_start": os.getloadavg()},
        "measures": {},
    }  # fmt: skip
    failed = 0
    wanted = _wanted(args.only)
    status = _infrastructure(wanted)
    try:
        for name in wanted:
            entry, ok = _measure(ctx, name)
            run["measures"][name] = {**entry, "run_id": run_id}
            failed += not ok
    finally:
        for stray in processes.stop_all():
            print(f"stopped {stray}")
        ctx.progress("cleaning up topics and Redis keys")
        ctx.cleanup(keep_files=failed > 0)
        _release(status)
    run["run"]["load_average_at_end"] = os.getloadavg()
    results = merge_results(previous, run)
    write_results(args.out, results)
    notes = {k: v for m in results["measures"].values() for k, v in m.get("notes", {}).items()}
    print()
    print(table(results["metrics"], notes))
    print(f"\nwritten to {args.out}" + (f"; {failed} measure(s) FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
