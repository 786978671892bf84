"""The results of a run: the issue's targets, pass/fail, the printed table and the JSON file.

Pure (no I/O but `write_results`): the unit tests cover it. Every measure returns a flat dict
of named numbers (`Metrics`); a metric named here has a target, the others are reported as
they are. Targets come from issue 9, "Targets (2 cores, broker on the same machine)".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Metrics = dict[str, Any]
"""What one measure found: metric name -> number (or None when it could not be measured)."""


@dataclass(frozen=True)
class Target:
    """A bound a metric must meet: ``at_least`` or ``at_most`` (one of them)."""

    metric: str
    at_least: float | None = None
    at_most: float | None = None
    note: str = ""
    size_metric: str | None = None
    """The metric holding the size it was measured at (journeys, touchpoints)…"""
    size: int = 0
    """…and the size the issue sets the target at: smaller runs get a starred verdict."""

    def met(self, value: float) -> bool:
        if self.at_least is not None and value < self.at_least:
            return False
        return not (self.at_most is not None and value > self.at_most)

    def describe(self) -> str:
        bound = f">= {_number(self.at_least)}" if self.at_least is not None else ""
        if self.at_most is not None:
            bound = f"<= {_number(self.at_most)}"
        return f"{bound} {self.note}".strip()


JOURNEY_BYTES_AT_50_MAX = 8 * 1024

TARGETS: tuple[Target, ...] = (
    Target("ratio_faust", at_least=0.75),
    Target("core_events_per_s", at_least=20_000),
    Target("cost_flatness", at_most=2.0, note="(cost at 10,000 / cost at 10)"),
    Target("cost_flatness_hourly", at_most=2.0, note="(the same, touchpoints an hour apart)"),
    Target("journey_bytes_50", at_most=JOURNEY_BYTES_AT_50_MAX),
    Target(
        "journey_bytes_over_cap",
        at_most=0,
        note="(bytes above the cap at 100,000)",
        size_metric="journey_bytes_longest",
        size=100_000,
    ),
    Target(
        "journey_live_over_cap",
        at_most=0,
        note="(through a worker, at 100,000)",
        size_metric="journey_live_touchpoints",
        size=100_000,
    ),
    Target("handoff_latency_ms_p99", at_most=250, note="(at 50 % load)"),
    Target(
        "recovery_s_memory",
        at_most=15,
        note="(100,000 journeys)",
        size_metric="recovery_journeys_memory",
        size=100_000,
    ),
    Target(
        "recovery_s_rocksdb",
        at_most=15,
        note="(100,000 journeys)",
        size_metric="recovery_journeys_rocksdb",
        size=100_000,
    ),
    Target(
        "kpi_query_s",
        at_most=1.0,
        note="(at 1,000,000 journeys)",
        size_metric="kpi_query_journeys",
        size=1_000_000,
    ),
    Target("kpi_cpu_share", at_most=0.05),
    Target("signal_corrections_share_shuffled", at_most=0.20, note="(of the signals emitted)"),
)

TARGET_BY_METRIC = {t.metric: t for t in TARGETS}

# The order of the printed table: the headline numbers first, then everything else by name.
HEADLINE = (
    "ceiling_events_per_s",
    "faust_ceiling_events_per_s",
    "engine_events_per_s",
    "ratio",
    "ratio_faust",
    "skeleton_events_per_s",
    "skeleton_ratio_faust",
    "engine_share_of_skeleton",
    "core_events_per_s",
    "cost_per_touchpoint_us_10",
    "cost_per_touchpoint_us_1000",
    "cost_per_touchpoint_us_10000",
    "cost_flatness",
    "cost_per_touchpoint_us_10_hourly",
    "cost_per_touchpoint_us_10000_hourly",
    "cost_flatness_hourly",
    "cost_first_change_us_10",
    "cost_first_change_us_1000",
    "cost_first_change_us_10000",
    "journey_bytes_50",
    "journey_bytes_100000",
    "journey_bytes_over_cap",
    "journey_bytes_longest",
    "journey_live_entry_max_bytes",
    "journey_live_over_cap",
    "journey_live_touchpoints",
    "journey_live_s",
    "handoff_latency_ms_p50",
    "handoff_latency_ms_p99",
    "recovery_s_memory",
    "recovery_journeys_memory",
    "recovery_s_rocksdb",
    "recovery_journeys_rocksdb",
    "kpi_query_s",
    "kpi_query_journeys",
    "kpi_cpu_share",
    "worker_peak_rss_mb",
)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator ÷ denominator, None when either is unknown or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


SMALLER = "*"
"""Marks a verdict measured below the size the issue sets the target at."""


def verdict(metric: str, value: Any, metrics: Mapping[str, Any] | None = None) -> str:
    """``pass``, ``FAIL``, ``n/a`` (not measured) or empty (no target) for a metric's value.

    Starred (``pass*``) when `metrics` shows it was measured below the target's size.
    """
    target = TARGET_BY_METRIC.get(metric)
    if target is None:
        return ""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    found = "pass" if target.met(float(value)) else "FAIL"
    if target.size_metric is not None:
        size = (metrics or {}).get(target.size_metric)
        if not isinstance(size, int | float) or size < target.size:
            found += SMALLER
    return found


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def ordered_metrics(metrics: Mapping[str, Any]) -> list[str]:
    """The headline metrics (those present) in their order, then the rest alphabetically."""
    first = [m for m in HEADLINE if m in metrics]
    return first + sorted(set(metrics) - set(first))


def table(metrics: Mapping[str, Any], notes: Mapping[str, str] | None = None) -> str:
    """The printed table: metric, value, target, pass/FAIL, and a note per metric."""
    notes = notes or {}
    rows = [("metric", "value", "target", "", "note")]
    for name in ordered_metrics(metrics):
        target = TARGET_BY_METRIC.get(name)
        rows.append(
            (
                name,
                _number(metrics[name]),
                target.describe() if target else "",
                verdict(name, metrics[name], metrics),
                notes.get(name, ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                 row[3].ljust(widths[3]), row[4]]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    if any(row[3].endswith(SMALLER) for row in rows):
        lines.append(f"{SMALLER} measured below the size the issue sets the target at")
    return "\n".join(lines)


def derived(metrics: Mapping[str, Any]) -> Metrics:
    """The metrics computed from others: the ratios to the ceilings and to the skeleton, and
    the flatness of the cost.

    Computed after merging, so ``--only engine`` still gets its ratio from the ceilings of an
    earlier run (whose ``run_id`` the JSON file keeps).
    """
    return {
        "ratio": ratio(metrics.get("engine_events_per_s"), metrics.get("ceiling_events_per_s")),
        "ratio_faust": ratio(
            metrics.get("engine_events_per_s"), metrics.get("faust_ceiling_events_per_s")
        ),
        "skeleton_ratio_faust": ratio(
            metrics.get("skeleton_events_per_s"), metrics.get("faust_ceiling_events_per_s")
        ),
        "engine_share_of_skeleton": ratio(
            metrics.get("engine_events_per_s"), metrics.get("skeleton_events_per_s")
        ),
        "cost_flatness": ratio(
            metrics.get("cost_per_touchpoint_us_10000"), metrics.get("cost_per_touchpoint_us_10")
        ),
        "cost_flatness_hourly": ratio(
            metrics.get("cost_per_touchpoint_us_10000_hourly"),
            metrics.get("cost_per_touchpoint_us_10_hourly"),
        ),
    }


def merge_results(previous: Mapping[str, Any] | None, run: Mapping[str, Any]) -> dict[str, Any]:
    """This run's results over a previous file's (``--only`` keeps the other measures' results).

    Each measure keeps the run it came from (``measures[name]["run_id"]``), so numbers from
    different runs are never mistaken for one.
    """
    measures: dict[str, Any] = dict((previous or {}).get("measures", {}))
    measures.update(run["measures"])
    metrics: dict[str, Any] = {}
    for name in sorted(measures):
        metrics.update(measures[name].get("metrics", {}))
    metrics.update(derived(metrics))
    return {**run, "measures": measures, "metrics": metrics}


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    """Write the results as indented JSON."""
    path.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
