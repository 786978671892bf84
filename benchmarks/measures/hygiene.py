"""``signal_corrections_share``: how much of what Tandem sends is a correction of itself.

`streams.workflow.replay` (no I/O) over the workload of 1,500 people, twice: fully shuffled
(every delivery, duplicates included, in random order) and in order (each distinct event
once, in event time). For each it counts the signals emitted per person, the hand-off
corrections (a hand-off sent again with a higher version, or revoked) per hand-off, the
nurture corrections and withdrawals, and the share of corrections among everything emitted.
A *correction* is any signal that is not a first send: version > 1, a revocation or a
withdrawal. Target (issue 12): at most 20 % on the shuffled workload.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.context import SEED, WORKLOAD_NOW, Context, Result
from events import Touchpoint, parse_touchpoint
from schemas.signals import Signal
from streams import journey as core
from streams import workflow
from streams.workload import build

PEOPLE = 1_500
CORRECTION_TYPES = frozenset({"handoff_revoked", "nurture_withdrawn"})


@dataclass(frozen=True)
class SignalCounts:
    """What one replay emitted, by kind."""

    people: int
    emitted: int
    handoffs: int
    handoff_corrections: int
    nurtures: int
    nurture_corrections: int

    @property
    def corrections(self) -> int:
        """Every signal that is not a first send."""
        return self.handoff_corrections + self.nurture_corrections

    def as_dict(self) -> dict[str, Any]:
        """The counts and the ratios the bench reports."""
        return {
            "emitted": self.emitted,
            "messages_per_person": round(self.emitted / max(1, self.people), 3),
            "handoffs": self.handoffs,
            "handoff_corrections": self.handoff_corrections,
            "corrections_per_handoff": round(self.handoff_corrections / max(1, self.handoffs), 3),
            "nurtures": self.nurtures,
            "nurture_corrections": self.nurture_corrections,
            "corrections": self.corrections,
            "corrections_share": round(self.corrections / max(1, self.emitted), 4),
        }


def count(signals: Sequence[Signal], people: int) -> SignalCounts:
    """Tally a replay's emitted signals."""
    kinds: Counter[str] = Counter()
    handoff_ids: set[str] = set()
    nurture_ids: set[str] = set()
    for signal in signals:
        kind = signal.signal_type
        corrected = signal.version > 1 or kind in CORRECTION_TYPES
        if kind in ("handoff", "handoff_revoked"):
            if kind == "handoff":
                handoff_ids.add(signal.signal_id)
            kinds["handoff_corrections"] += corrected
        elif kind.startswith("nurture"):
            if kind == "nurture":
                nurture_ids.add(signal.signal_id)
            kinds["nurture_corrections"] += corrected
    return SignalCounts(
        people=people,
        emitted=len(signals),
        handoffs=len(handoff_ids),
        handoff_corrections=kinds["handoff_corrections"],
        nurtures=len(nurture_ids),
        nurture_corrections=kinds["nurture_corrections"],
    )


def workloads(people: int = PEOPLE) -> dict[str, list[Touchpoint]]:
    """The shuffled deliveries and the in-order events of one generated workload."""
    workload = build(people, seed=SEED, now=WORKLOAD_NOW, prefix=f"hy{people}")
    shuffled = list(workload.documents)
    random.Random(SEED).shuffle(shuffled)
    return {
        "shuffled": [parse_touchpoint(d) for d in shuffled],
        "in_order": [parse_touchpoint(d) for d in workload.events],
    }


def run(ctx: Context) -> Result:
    playbook = core.default_playbook()
    metrics: dict[str, float] = {}
    notes: dict[str, str] = {}
    details: dict[str, Any] = {}
    for name, touchpoints in workloads().items():
        ctx.progress(f"replaying {len(touchpoints):,} touchpoints ({name})")
        result = workflow.replay(touchpoints, playbook, now=WORKLOAD_NOW)
        counts = count(result.signals, PEOPLE).as_dict()
        details[name] = counts
        metrics[f"signal_messages_per_person_{name}"] = counts["messages_per_person"]
        metrics[f"handoff_corrections_per_handoff_{name}"] = counts["corrections_per_handoff"]
        metrics[f"signal_corrections_share_{name}"] = counts["corrections_share"]
        notes[f"signal_corrections_share_{name}"] = (
            f"{counts['corrections']:,} of {counts['emitted']:,} signals"
        )
    return Result(metrics=metrics, notes=notes, details=details)
