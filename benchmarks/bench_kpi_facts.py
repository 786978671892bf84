"""The worker's KPI facts cost on the bench workload, in process.

    python -m benchmarks.bench_kpi_facts [people]     # default 2,700, as `make bench`

Replays the `make bench` workload (`streams.workload.build`, the run's seed) through the
workflow's handlers like the worker with one-message journeys batches: after every journey
message, each changed journey's facts are built and encoded as the worker does it
(`kpis.journey_facts_json`, the probe's entry point). Prints the thread CPU time per changed
journey, its share of the replay's CPU, and a digest of every facts JSON in order
(equal digests: equal facts), so two versions of the code can be compared run by run
(``PYTHONPATH=<checkout> python -m …``).
"""

from __future__ import annotations

import hashlib
import sys
import time
from datetime import UTC, datetime

from events import Touchpoint, parse_touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from streams import journey as core
from streams.collector import freeze_survivors
from streams.journey import kpis
from streams.workflow.replay import Replayer
from streams.workload import build

SEED = 9  # benchmarks.context
NOW = datetime(2025, 3, 1, tzinfo=UTC)


class FactsProbe(Replayer):
    """A replay that builds every changed journey's facts after each journey message."""

    def __init__(self, playbook: Playbook) -> None:
        super().__init__(playbook)
        self.playbook = playbook
        self.facts_s = 0.0
        self.calls = 0
        self.digest = hashlib.sha256()

    def _handled(self) -> None:
        unit = self.journeys
        changed = [unit.load(customer_id) for customer_id in unit.changed]
        unit.changed = {}
        for stored in changed:
            if not isinstance(stored, JourneyRecord):
                continue
            t0 = time.thread_time()
            text = kpis.journey_facts_json(stored, self.playbook)
            self.facts_s += time.thread_time() - t0
            self.calls += 1
            self.digest.update(text.encode())


def measure(people: int) -> dict[str, float | int | str]:
    """Replay the workload of `people`; the facts' cost and digest."""
    workload = build(people, seed=SEED, now=NOW, prefix=f"wl{people}")
    touchpoints: list[Touchpoint] = [parse_touchpoint(d) for d in workload.documents]
    freeze_survivors()
    probe = FactsProbe(core.default_playbook())
    started = time.process_time()
    for touchpoint in touchpoints:
        probe.touchpoint(touchpoint)
    total = time.process_time() - started
    return {
        "touchpoints": len(touchpoints),
        "facts_calls": probe.calls,
        "replay_cpu_s": round(total, 2),
        "facts_json_us_per_call": round(probe.facts_s / probe.calls * 1e6, 1),
        "facts_json_share": round(probe.facts_s / total, 4),
        "digest": probe.digest.hexdigest()[:16],
    }


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2_700))
