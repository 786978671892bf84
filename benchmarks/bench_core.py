"""Throughput of the pure journey core: touchpoints applied per second, by journey length.

Each step is what the worker does per message: decode the stored record, apply the touchpoint,
encode the record, and build the snapshot it publishes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from events import Touchpoint, parse_touchpoint
from streams import journey as core

LENGTHS = (10, 100, 400)


def _journey(length: int, now: datetime) -> list[Touchpoint]:
    kinds = ["marketing.page_viewed", "marketing.email_clicked", "marketing.email_opened"]
    events = [
        parse_touchpoint(
            {
                "event_id": f"bench-{i}",
                "type": kinds[i % len(kinds)],
                "occurred_at": (now - timedelta(minutes=length - i)).isoformat(),
                "source": "bench",
                "identity": {"email": "bench@example.com"},
                "properties": {"url": "https://x.example/"} if i % 3 == 0 else {},
            }
        )
        for i in range(length)
    ]
    return list(events)


def main() -> int:
    playbook = core.default_playbook()
    now = datetime.now(UTC)
    print(f"{'journey length':>15} {'touchpoints/s':>14} {'ms per touchpoint (last)':>25}")
    for length in LENGTHS:
        events = _journey(length, now)
        record = core.new_journey(core.customer_id_for("email:bench@example.com"))
        started = time.perf_counter()
        last = 0.0
        for touchpoint in events:
            t0 = time.perf_counter()
            stored = record.model_dump_json()
            record = core.JourneyRecord.model_validate_json(stored)
            record = core.apply_touchpoint(record, touchpoint, playbook).record
            core.snapshot(record, playbook).model_dump(mode="json")
            last = time.perf_counter() - t0
        elapsed = time.perf_counter() - started
        print(f"{length:>15} {length / elapsed:>14.0f} {last * 1000:>25.1f}")
    return 0
