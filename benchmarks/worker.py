"""A real `tandem worker` for a deployment, through the KPI probe, started and awaited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks.deployment import Deployment

READY_TIMEOUT_S = 180.0


def start_worker(deployment: Deployment, name: str = "worker") -> processes.Child:
    """Start a worker on the deployment's settings; returns once it is started (not ready)."""
    env = processes.python_env(
        {**deployment.env(), "TANDEM_BENCH_PROBE": str(probe_path(deployment))}
    )
    log = deployment.data_dir / f"{name}.log"
    return processes.Child(name, processes.worker_argv(), env, log).start()


def wait_ready(worker: processes.Child) -> float:
    """The `time.time()` the worker logged that it is ready."""
    return worker.wait_for(*processes.WORKER_READY, timeout=READY_TIMEOUT_S)


def probe_path(deployment: Deployment) -> Path:
    return deployment.data_dir / "kpi-probe.json"


def read_probe(deployment: Deployment) -> dict[str, Any] | None:
    """The worker's latest KPI CPU accounting (`benchmarks.worker_probe`), if written yet."""
    path = probe_path(deployment)
    return json.loads(path.read_text()) if path.exists() else None
