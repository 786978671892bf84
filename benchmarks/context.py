"""What the measures of one run share: sizes, the workload, the published backlog, cleanup.

The workload is generated once (`streams.workload`, fixed seed and reference time) and the
backlog is published once to one deployment's input topics; the two ceilings and the engine
all consume that same backlog.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from benchmarks.deployment import Deployment, message_count
from benchmarks.report import Metrics
from events import Touchpoint, parse_touchpoint
from streams.workload import Workload, build

SEED = 9
WORKLOAD_NOW = datetime(2025, 3, 1, tzinfo=UTC)
"""The workload's reference time: fixed, so every run publishes the very same backlog."""


@dataclass(frozen=True)
class Sizes:
    """How big each measure runs (the full run; `quick()` for a smoke run)."""

    people: int = 2_700  # ~22,400 touchpoints (7.5 per person and 10 % duplicates)
    cost_lengths: tuple[int, ...] = (10, 1_000, 10_000)
    cost_appends: int = 50
    cost_rounds: int = 8
    bytes_lengths: tuple[int, ...] = (50, 100_000)
    live_journey_length: int = 100_000
    latency_s: float = 60.0
    recovery_journeys: int = 100_000
    recovery_stores: tuple[str, ...] = ("memory://", "rocksdb://")
    kpi_journeys: int = 100_000
    kpi_runs: int = 3
    drain_timeout_s: float = 600.0
    quick: bool = False

    @classmethod
    def quick_run(cls) -> Sizes:
        return cls(
            people=250,
            cost_appends=5,
            cost_rounds=1,
            bytes_lengths=(50, 5_000),
            live_journey_length=3_000,
            latency_s=10.0,
            recovery_journeys=1_000,
            kpi_journeys=5_000,
            kpi_runs=1,
            drain_timeout_s=300.0,
            quick=True,
        )

    def with_overrides(self, **overrides: Any) -> Sizes:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Result:
    """What a measure hands back: its metrics, notes for the table, details for the JSON."""

    metrics: Metrics
    notes: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """One run: its sizes, earlier results, and what must be cleaned up at the end."""

    sizes: Sizes
    previous: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)
    deployments: list[Deployment] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _workloads: dict[int, tuple[Workload, list[Touchpoint]]] = field(default_factory=dict)
    _backlog: Deployment | None = None
    replayed_journeys: dict[int, int] = field(default_factory=dict)
    """Journeys the replay of the workload of N people ends with (filled by the first replay)."""

    def progress(self, message: str) -> None:
        """A progress line, with the time since the run started."""
        print(f"  [{time.monotonic() - self.started:6.1f} s] {message}", flush=True)

    def workload(self, people: int | None = None) -> tuple[Workload, list[Touchpoint]]:
        """The shuffled workload of `people` (default: the run's) and its touchpoints."""
        people = people or self.sizes.people
        if people not in self._workloads:
            workload = build(people, seed=SEED, now=WORKLOAD_NOW, prefix=f"wl{people}")
            touchpoints = [parse_touchpoint(d) for d in workload.documents]
            self._workloads[people] = (workload, touchpoints)
        return self._workloads[people]

    def replay_journeys(self, people: int | None = None) -> int:
        """How many journeys the replay of the workload ends with (what "drained" expects)."""
        people = people or self.sizes.people
        if people not in self.replayed_journeys:
            from streams import journey as core
            from streams import workflow

            _, touchpoints = self.workload(people)
            result = workflow.replay(touchpoints, core.default_playbook())
            self.replayed_journeys[people] = len(result.records)
        return self.replayed_journeys[people]

    def deployment(self, tag: str, *, store: str = "memory://") -> Deployment:
        """A fresh deployment, deleted at the end of the run."""
        deployment = Deployment(tag, store=store)
        self.deployments.append(deployment)
        return deployment

    def backlog(self) -> tuple[Deployment, int]:
        """The deployment whose input topics hold the run's workload, and how many messages."""
        if self._backlog is None:
            _, touchpoints = self.workload()
            deployment = self.deployment("backlog")
            self.progress(f"publishing the backlog: {len(touchpoints):,} touchpoints")
            asyncio.run(deployment.create())
            asyncio.run(deployment.publish(touchpoints))
            self._backlog = deployment
        count = asyncio.run(message_count(self._backlog.bootstrap, self._backlog.input_topics))
        return self._backlog, count

    def metric(self, name: str) -> Any:
        """A metric from this run, else from the previous results file (None: unknown)."""
        for result in self.results.values():
            if name in result.metrics:
                return result.metrics[name]
        return self.previous.get("metrics", {}).get(name)

    def cleanup(self, *, keep_files: bool = False) -> None:
        """Delete every deployment's topics and Redis keys, and its data directory (logs).

        With `keep_files` (a measure failed) the data directories stay, for their logs.
        """
        for deployment in self.deployments:
            try:
                asyncio.run(deployment.delete())
            except Exception as exc:  # report and go on: the other deployments still go
                print(f"  could not clean up {deployment.settings.topic_prefix}: {exc}")
            if keep_files:
                print(f"  logs kept in {deployment.data_dir}")
            else:
                _remove_tree(deployment.data_dir)
        self.deployments.clear()


def _remove_tree(path: os.PathLike[str]) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
