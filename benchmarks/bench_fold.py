"""Cost per touchpoint by journey length (in-order page views of one person), pure core.

What the worker does per customer per change: `apply_touchpoint`, `next_timer_due`,
`view.snapshot` and `kpis.journey_facts`. Printed with and without the KPI facts and for
`apply_touchpoint` alone.
Each figure is the mean over 50 appends after a journey of that length (built by `fold`), the
best of 3 runs. Run: `python -m benchmarks.bench_fold`.
"""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime, timedelta

from events import Touchpoint, parse_touchpoint
from streams import journey as core
from streams.journey import kpis
from streams.journey import record as rec

view = importlib.import_module("streams.journey.view")
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
LENGTHS = (10, 1000, 10000)
APPENDS = 50


def page_views(n: int) -> list[Touchpoint]:
    """n page views of one person, a minute apart."""
    return [
        parse_touchpoint(
            {
                "event_id": f"pv-{i:06d}",
                "type": "marketing.page_viewed",
                "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
                "source": "bench",
                "identity": {"email": "bench@example.com"},
                "properties": {"url": "https://x.example/"},
            }
        )
        for i in range(n)
    ]


def cost_us(length: int, playbook: core.Playbook, steps: tuple[bool, bool]) -> float:
    """Mean µs per change over APPENDS in-order appends after `length` touchpoints."""
    derived, facts = steps
    touchpoints = page_views(length + APPENDS + 1)
    customer_id = core.customer_id_for("email:bench@example.com")
    record = core.reevaluate(
        core.fold(customer_id, touchpoints[:length], playbook), playbook
    ).record

    def change(record: core.JourneyRecord, touchpoint: Touchpoint) -> core.JourneyRecord:
        record = core.apply_touchpoint(record, touchpoint, playbook).record
        if derived:
            rec.next_timer_due(record, playbook)
            view.snapshot(record, playbook)
        if facts:
            kpis.journey_facts(record, playbook)
        return record

    # Warm, like a worker that has seen the journey before: the fold state and the facts'
    # walk are kept from one change to the next (a cold start refolds and rewalks once).
    record = change(record, touchpoints[length])
    started = time.perf_counter()
    for touchpoint in touchpoints[length + 1 :]:
        record = change(record, touchpoint)
    return (time.perf_counter() - started) / APPENDS * 1e6


def main() -> int:
    playbook = core.default_playbook()
    modes = {"per change": (True, True), "without KPI facts": (True, False),
             "apply only": (False, False)}  # fmt: skip
    print(f"{'µs per touchpoint':>20} " + " ".join(f"{n:>9}" for n in LENGTHS))
    for name, steps in modes.items():
        costs = [min(cost_us(n, playbook, steps) for _ in range(3)) for n in LENGTHS]
        print(f"{name:>20} " + " ".join(f"{c:>9.0f}" for c in costs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
