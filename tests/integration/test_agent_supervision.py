"""An agent that keeps crashing stops the worker with exit code 1 (a real Faust worker)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from streams.kafka_admin import delete_topics
from streams.settings import Settings

pytestmark = pytest.mark.integration

APP = """
import faust

from streams.adapters.supervision import AgentSupervisor


class QuickToGiveUp(AgentSupervisor):
    tolerated = 1


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


if __name__ == "__main__":
    app.main()
"""


def test_an_agent_crashing_again_and_again_stops_the_worker(
    settings: Settings, tmp_path: Path
) -> None:
    name = f"{settings.topic_prefix}supervision{uuid.uuid4().hex[:6]}"
    script = tmp_path / "crashing_app.py"
    script.write_text(
        textwrap.dedent(APP).format(
            name=name, bootstrap=settings.kafka_bootstrap, datadir=tmp_path / "data"
        )
    )

    try:
        done = subprocess.run(
            [sys.executable, str(script), "worker", "--loglevel", "info"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[2],
        )
    finally:
        asyncio.run(delete_topics(settings.model_copy(update={"topic_prefix": name})))

    log = done.stdout + done.stderr
    assert done.returncode == 1, log[-3000:]
    assert "Restarting dead" in log  # the first crash is restarted
    assert "crashed 2 times in 120 s (last: RuntimeError('an unforeseen failure'))" in log
