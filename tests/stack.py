"""Real Kafka and Redis, a real worker, started once per session (a pytest plugin).

Loaded for every test directory by ``tests/conftest.py`` (``pytest_plugins``), so the
integration and browser tests share one session's infrastructure, topics and worker.

`tandem infra up` semantics: whatever already answers is reused; what this session started is
stopped at the end. Each session uses its own topic prefix, Faust app id and Redis key prefix,
so runs never see each other's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from streams import infra
from streams.kafka_admin import create_topics, delete_topics
from streams.projection import JourneyProjection
from streams.settings import Settings

TEST_PLAYBOOK = Path(__file__).parent / "integration" / "playbook.yaml"


def _runs_xdist_workers(config: pytest.Config) -> bool:
    """Whether this process is pytest-xdist's controller (it runs no test itself)."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    # With `-n`, the controller starts Kafka and Redis once, before any worker runs a test,
    # and stops them after the last: a worker that started them would stop them at its own
    # end, under the other worker's tests (the unit tests that use Redis among them).
    if _runs_xdist_workers(session.config):
        session.config.stash[_STARTED] = infra.up(Settings())


def pytest_sessionfinish(session: pytest.Session) -> None:
    status = session.config.stash.get(_STARTED, None)
    if status is not None and any(service.started for service in status.services):
        infra.down(Settings())


_STARTED = pytest.StashKey[infra.InfraStatus]()

STACK_TESTS = ("tests/integration/", "tests/browser/")
"""The tests of the shared stack (the session's worker, topics and Redis prefix)."""

OWN_STACK_TESTS = tuple(
    f"tests/integration/test_{name}.py"
    for name in (
        "crash_loop", "redis_outage", "several_workers", "live_equals_replay", "long_journey",
        "forget_rebuild", "playbook_change", "worker_metrics", "tail",
    )
)  # fmt: skip
"""Integration tests with a deployment of their own (topics, consumer group, Redis keys, worker;
the crash loop and the outages also their own broker or Redis): any xdist worker may take them,
beside the shared stack's tests."""


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """One xdist worker runs every test of the shared stack, in order (one session worker,
    its topics and Redis prefix); the others take every other test meanwhile.
    (`--dist loadgroup` with `xdist_group` marks does not group under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class StackScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            shared = nodeid.startswith(STACK_TESTS) and not nodeid.startswith(OWN_STACK_TESTS)
            return "stack" if shared else nodeid

    return StackScheduling(config, log)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[infra.InfraStatus]:
    """Kafka and Redis: reused if they answer (always, under xdist), else started here."""
    status = infra.up(Settings())
    yield status
    if any(service.started for service in status.services):
        infra.down(Settings())


@pytest.fixture(scope="session")
def settings(
    infrastructure: infra.InfraStatus, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    run_id = uuid.uuid4().hex[:8]
    return Settings(
        topic_prefix=f"t{run_id}.",
        app_id="tandem-test",
        redis_prefix=f"tandem-test-{run_id}:",
        partitions=4,
        store="memory://",
        data_dir=tmp_path_factory.mktemp("tandem-data"),
        playbook=TEST_PLAYBOOK,
        timer_interval_s=1.0,
        # A killed worker's successor waits this out before it joins: the broker's minimum.
        session_timeout_s=6.0,
        # Every worker of the suite collects its frozen garbage in full every few seconds, so
        # the tests run through reclaims while journeys change (6 hours by default).
        collector_reclaim_s=5.0,
        metrics_port=0,  # many workers per machine; a test that scrapes picks a free port
        kafka_bootstrap=Settings().kafka_bootstrap,
        redis_url=Settings().redis_url,
    )


@pytest_asyncio.fixture(scope="session")
async def topics(settings: Settings) -> AsyncIterator[dict[str, str]]:
    created = await create_topics(settings)
    yield created
    await delete_topics(settings)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `tandem` subprocess use these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[f"TANDEM_{name.upper()}"] = text
    return env


class WorkerProcess:
    """A real `tandem worker` in a subprocess, with its log."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode("utf-8", "replace")
            if "Worker: Ready" in text or "[^Worker]: Ready" in text:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{text[-3000:]}")
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"worker not ready within {timeout} s; see {self.log_path}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        """A crash: SIGKILL, no graceful shutdown, no final commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def worker(settings: Settings, topics: dict[str, str]) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, settings.data_dir / "worker.log")
    process.start()
    yield process
    process.stop()


async def close_read_model(read_model: JourneyProjection, prefix: str) -> None:
    """Delete every Redis key under `prefix` (a test's own), then close the read model."""
    keys = [k async for k in read_model.redis.scan_iter(f"{prefix}*")]
    if keys:
        await read_model.redis.delete(*keys)
    await read_model.close()


@pytest_asyncio.fixture(scope="session")
async def projection(settings: Settings) -> AsyncIterator[JourneyProjection]:
    read_model = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    yield read_model
    await close_read_model(read_model, settings.redis_prefix)
