"""A Kafka broker of a test's own, to restart at will (the shared one serves other tests).

Started the way `tandem infra up` starts the shared one (the same `KafkaService`, the same
jars, a 512 MB heap), on free ports and with its storage in the test's directory, and stopped
by the PID it recorded.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.infra.kafka import KafkaService
from streams.settings import Settings
from tests.integration.own_redis import free_port


def free_port_pair() -> int:
    """A port p with p + 1 free too (the controller listens on p + 1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


class OwnKafka:
    """A single-node KRaft broker in `directory`, sharing the downloaded jars."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.bootstrap = f"127.0.0.1:{free_port_pair()}"
        settings = Settings(data_dir=directory, kafka_bootstrap=self.bootstrap, kafka_heap="512m")
        self.service = KafkaService(settings)
        libs = KafkaService(Settings()).libs  # the jars `tandem infra up` fetched
        self.service.home.mkdir(parents=True, exist_ok=True)
        if libs.is_dir() and not self.service.libs.exists():  # else fetched like the shared
            self.service.libs.symlink_to(libs, target_is_directory=True)

    def start(self) -> float:
        """Start the broker; the seconds until it answered."""
        self.service.prepare(lambda _line: None)
        pid = self.service.launch()
        return self.service.wait_ready(pid, timeout=90.0)

    def stop(self) -> None:
        self.service.stop()

    def restart(self) -> float:
        """A controlled stop and a start on the same storage; the seconds it was away."""
        self.stop()
        return self.start()


@pytest.fixture
def own_kafka(tmp_path: Path, infrastructure: object) -> Iterator[OwnKafka]:
    broker = OwnKafka(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()
