"""An agent that keeps crashing stops the worker with exit code 1 (a real Faust worker)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from streams.kafka_admin import NamedTopic, create_named_topics, delete_topics, wait_until_visible
from streams.settings import Settings

pytestmark = pytest.mark.integration

APP = """
import asyncio

import faust
import mode

from streams.adapters.supervision import AgentSupervisor


class QuickToGiveUp(AgentSupervisor):
    tolerated = 1
    stop_deadline_s = {stop_deadline_s}


app = faust.App(
    "{name}", broker="kafka://{bootstrap}", web_enabled=False, topic_disable_leader=True,
    store="memory://", datadir="{datadir}", broker_session_timeout=10.0,
)
source = app.topic("{name}", value_serializer="raw", partitions=1, internal=True)


@app.agent(source, supervisor_strategy=QuickToGiveUp)
async def always_crashes(stream):
    async for _ in stream:
        raise RuntimeError("an unforeseen failure")


@app.timer(0.5)
async def feed():
    await source.send(value=b"x")


if {stop_hangs}:

    @app.service
    class HangsOnStop(mode.Service):
        async def on_stop(self):
            await asyncio.sleep(3600)


if __name__ == "__main__":
    app.main()
"""


def _run_crashing_worker(
    settings: Settings, tmp_path: Path, *, stop_deadline_s: float, stop_hangs: bool
) -> tuple[int, str]:
    """Run the app above until it exits; its exit code and its log."""
    name = f"{settings.topic_prefix}supervision{uuid.uuid4().hex[:6]}"
    script = tmp_path / "crashing_app.py"
    script.write_text(
        textwrap.dedent(APP).format(
            name=name,
            bootstrap=settings.kafka_bootstrap,
            datadir=tmp_path / "data",
            stop_deadline_s=stop_deadline_s,
            stop_hangs=stop_hangs,
        )
    )
    # The topic exists, led, before the worker joins its group: a group that joins while it is
    # still missing from the metadata is assigned nothing, and only notices it at its next
    # metadata refresh, minutes later (seen once in CI: no crash within 120 s).
    asyncio.run(create_named_topics(settings, [NamedTopic(name, 1, {})]))
    asyncio.run(wait_until_visible(settings, {name: 1}))
    # `worker` turns Faust's web server on whatever the app says; two of these at once (or
    # anything else on its port) would then crash on the port, not in the agent.
    worker = subprocess.Popen(
        [sys.executable, str(script), "worker", "--without-web", "--loglevel", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        log, _ = worker.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        worker.kill()
        log, _ = worker.communicate()
        pytest.fail(f"the worker was still running after 120 s:\n{log[-6000:]}")
    finally:
        asyncio.run(delete_topics(settings.model_copy(update={"topic_prefix": name})))

    return worker.returncode, log


def test_an_agent_crashing_again_and_again_stops_the_worker(
    settings: Settings, tmp_path: Path
) -> None:
    code, log = _run_crashing_worker(settings, tmp_path, stop_deadline_s=60.0, stop_hangs=False)

    assert code == 1, log[-3000:]
    assert "Restarting dead" in log  # the first crash is restarted
    assert "crashed 2 times in 120 s (last: RuntimeError('an unforeseen failure'))" in log


def test_a_worker_whose_stop_hangs_exits_at_the_deadline(
    settings: Settings, tmp_path: Path
) -> None:
    code, log = _run_crashing_worker(settings, tmp_path, stop_deadline_s=3.0, stop_hangs=True)

    assert code == 1, log[-3000:]
    assert "stopping the worker (exit code 1)" in log
    assert "the worker did not stop within 3 s; exiting now (exit code 1)" in log
