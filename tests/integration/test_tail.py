"""`tandem tail`: `--limit N` shows N messages, even when one fetch spans several partitions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.settings import Settings
from streams.topics import MARKETING, full_name
from tests.integration.equivalence import isolated_deployment
from tests.stack import settings_env

pytestmark = pytest.mark.integration

MESSAGES = 12


def tail(settings: Settings, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "tail", MARKETING, "--from-beginning", "--json",
         *args],
        env=settings_env(settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if line.strip()]


async def test_limit_stops_at_n_messages_across_partitions(
    settings: Settings, tmp_path: Path
) -> None:
    async with isolated_deployment(settings, "tail", tmp_path) as (own, _):
        producer = AIOKafkaProducer(bootstrap_servers=own.kafka_bootstrap)
        await producer.start()
        try:
            topic = full_name(MARKETING, own.topic_prefix)
            partitions = sorted(await producer.partitions_for(topic))
            assert len(partitions) > 1
            for n in range(MESSAGES):  # spread over every partition
                value = json.dumps({"event_type": "marketing.page_viewed", "n": n}).encode()
                await producer.send_and_wait(
                    topic, value, key=f"k{n}".encode(), partition=partitions[n % len(partitions)]
                )
        finally:
            await producer.stop()
        assert len(tail(own, "--idle-exit", "3")) == MESSAGES
        assert len(tail(own, "--limit", "5")) == 5
