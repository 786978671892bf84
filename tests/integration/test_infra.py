"""`streams.infra` against the real local Kafka broker and Redis.

If the stack is not running, the first test starts it, and stops at the end what it started.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams import infra
from streams.settings import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[infra.InfraStatus]:
    settings = get_settings()
    assert settings.kafka_heap == "512m", "tests never run a broker with more than 512m of heap"
    result = infra.up(settings, timeout=120)
    yield result
    if any(service.started for service in result.services):
        infra.down(settings)


def test_up_twice_starts_nothing_new(stack: infra.InfraStatus) -> None:
    again = infra.up(get_settings())

    assert again.available
    assert [s.pid for s in again.services] == [s.pid for s in stack.services]
    assert not any(s.started for s in again.services)
    for service in again.services:
        assert service.state in (infra.ServiceState.RUNNING, infra.ServiceState.REACHABLE)


def test_status_matches_up(stack: infra.InfraStatus) -> None:
    now = infra.status(get_settings())

    assert [(s.state, s.pid) for s in now.services] == [(s.state, s.pid) for s in stack.services]


async def test_the_broker_does_not_auto_create_topics(stack: infra.InfraStatus) -> None:
    del stack
    settings: Settings = get_settings()
    name = f"tandem-infra-probe-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([name])  # a metadata request for the topic
        assert described[0]["error_code"] != 0
        assert name not in await admin.list_topics()
    finally:
        await admin.close()
