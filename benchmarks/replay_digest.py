"""The replay's output as two digests, and its CPU time: proof that a speed-up changed nothing.

``python -m benchmarks.replay_digest [PEOPLE] [--profile FILE]`` replays the bench workload
of PEOPLE people (default 1,000; the bench's own seed and time) through `streams.workflow`
with the collector set as `tandem replay` sets it, then prints the CPU seconds, the
touchpoints per CPU-second, and sha256 digests of every record and signal (in order) and of
every journey's snapshot. An optimisation of the core must leave both digests as they were;
compare them before and after, and time in pairs (before, after, before, after) on a shared
machine. With ``--profile FILE`` the replay runs under cProfile and the stats go to FILE.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import importlib
import time

from benchmarks.context import SEED, WORKLOAD_NOW
from events import parse_touchpoint
from streams import journey as core
from streams import workflow
from streams.collector import freeze_survivors
from streams.workflow.replay import ReplayResult
from streams.workload import build

view = importlib.import_module("streams.journey.view")  # the package's `view` is a function


def digests(result: ReplayResult, playbook: core.Playbook) -> tuple[str, str]:
    """sha256 of the records and signals, and of the snapshots, in a fixed order."""
    records, snapshots = hashlib.sha256(), hashlib.sha256()
    for customer_id in sorted(result.records):
        record = result.records[customer_id]
        records.update(customer_id.encode())
        records.update(record.model_dump_json().encode())
        snapshots.update(view.snapshot(record, playbook).model_dump_json().encode())
    for signal in result.signals:
        records.update(signal.model_dump_json().encode())
    return records.hexdigest(), snapshots.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_digest", description=__doc__)
    parser.add_argument("people", nargs="?", type=int, default=1_000)
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats here")
    args = parser.parse_args(argv)
    workload = build(args.people, seed=SEED, now=WORKLOAD_NOW, prefix=f"wl{args.people}")
    touchpoints = [parse_touchpoint(document) for document in workload.documents]
    playbook = core.default_playbook()
    freeze_survivors()
    profiler = cProfile.Profile() if args.profile else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    result = workflow.replay(touchpoints, playbook)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu = time.process_time() - started
    records, snapshots = digests(result, playbook)
    print(
        f"{len(touchpoints):,} touchpoints in {cpu:.2f} CPU s ({len(touchpoints) / cpu:,.0f}/s); "
        f"{len(result.records):,} journeys, {len(result.signals):,} signals; "
        f"records+signals {records[:16]}, snapshots {snapshots[:16]}"
    )


if __name__ == "__main__":
    main()
