"""A single-node Apache Kafka broker (KRaft: broker and controller in one JVM), no Docker.

The broker's jars come from Maven Central through the bundled `pom.xml` (cached in
`<data_dir>/kafka/libs`); its storage is `<data_dir>/kafka/data`; its log is
`<data_dir>/logs/kafka.log`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from streams.infra._process import InfraError, Progress, Service, run_sync, tail
from streams.settings import Settings

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.yaml"
MAIN_CLASS = "kafka.Kafka"
MIN_JAVA = 17  # Kafka 4 brokers need Java 17+
MAVEN_TIMEOUT_S = 15 * 60


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version the bundled pom fetches (the pom is the single source of truth)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise InfraError(f"{pom} does not define <kafka.version>")
    return (node.text or "").strip()


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID as 22 characters of URL-safe base64, no padding.

    Never one starting with ``-`` (1 in 32 would): the storage tool's argument parser takes it
    for an option and formatting fails. Kafka's own `Uuid.randomUuid` avoids it the same way.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def render_server_properties(host: str, port: int, log_dir: Path) -> str:
    """server.properties of a combined broker+controller node listening on host:port.

    The controller listens on port + 1. Replication factors are 1 (there is one node).
    """
    controller_port = port + 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir.resolve()),
        "num.partitions": "1",
        # Tandem creates its topics with the partition counts its tables need; a topic
        # auto-created on first use gets 1 partition and silently breaks Faust's co-partitioning.
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # A lone local consumer should not wait 3 s for company before its first assignment.
        "group.initial.rebalance.delay.ms": "0",
    }
    header = "# Written by `tandem infra up`; regenerated on every start, edits are lost.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    # aiokafka logs an ERROR for every refused connection; a probe expects refusals.
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def broker_answers(bootstrap: str, timeout: float) -> bool:
    """True if a Kafka broker at `bootstrap` serves cluster metadata listing a live broker.

    A port that accepts is not enough: a KRaft broker opens it a moment before it is
    unfenced and can serve metadata.
    """

    async def check() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
        )
        try:
            await asyncio.wait_for(admin.start(), timeout)
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
            return bool(cluster.get("brokers"))
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    with _quiet("aiokafka"):
        return run_sync(check)


def java_major(java: str) -> int:
    """The major version of the `java` executable (0 if it cannot be told)."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return parse_java_major(out.stderr + out.stdout)


def parse_java_major(version_output: str) -> int:
    """`openjdk version "17.0.9"` -> 17; `java version "1.8.0_392"` -> 8; 0 if unknown."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class KafkaService(Service):
    """The local Kafka broker of `tandem infra`."""

    name = "Kafka"
    key = "kafka"
    default_port = 9092
    default_timeout = 90.0
    stop_grace = 30.0  # controlled shutdown of a KRaft node takes a few seconds

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.data_dir, settings.kafka_bootstrap)
        self.bootstrap = settings.kafka_bootstrap
        self.heap = settings.kafka_heap
        self.home = settings.data_dir / "kafka"
        self.libs = self.home / "libs"
        self.storage = self.home / "data"
        self.properties = self.home / "server.properties"
        self.version = kafka_version()
        self._java_path: str | None = None

    @property
    def jar(self) -> Path:
        """The jar whose presence means the libs folder holds this Kafka version."""
        return self.libs / f"kafka_2.13-{self.version}.jar"

    @property
    def classpath(self) -> str:
        return f"{self.libs}/*"  # the JVM expands the wildcard itself

    def owns(self, cmdline: Sequence[str]) -> bool:
        # Our broker runs kafka.Kafka with *our* properties file: another Kafka on this
        # machine (or a recycled PID) is never mistaken for it.
        return MAIN_CLASS in cmdline and str(self.properties) in cmdline

    def speaks(self, timeout: float) -> bool:
        return broker_answers(self.bootstrap, timeout)

    def prepare(self, progress: Progress) -> None:
        java = self._java()
        self.fetch_jars(progress)
        self.home.mkdir(parents=True, exist_ok=True)
        self.properties.write_text(render_server_properties(self.host, self.port, self.storage))
        self.format_storage(java, progress)

    def command(self) -> list[str]:
        if not re.fullmatch(r"\d+[kKmMgG]?", self.heap):
            raise InfraError(f"TANDEM_KAFKA_HEAP must look like 512m or 1g, not {self.heap!r}")
        return [
            self._java(),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            # A broker out of heap is broken; exiting makes the failure visible in `status`.
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            self.classpath,
            MAIN_CLASS,
            str(self.properties),
        ]

    def working_dir(self) -> Path:
        return self.home

    def fetch_jars(self, progress: Progress) -> bool:
        """Download Kafka and its runtime dependencies unless already cached; True if fetched."""
        if self.jar.exists():
            return False
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError("Maven (mvn) is needed once to fetch Kafka's jars; install maven")
        progress(f"fetching Kafka {self.version} from Maven Central (first run, ~1 min)…")
        # Into a scratch folder first: an interrupted download must not leave a libs folder
        # that has the marker jar but misses others.
        partial = self.home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        log = self.data_dir / "logs" / "maven.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={partial}",
        ]  # fmt: skip
        try:
            with log.open("wb") as out:
                done = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, timeout=MAVEN_TIMEOUT_S,
                    check=False,
                )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"fetching Kafka's jars took over {MAVEN_TIMEOUT_S} s; see {log}"
            ) from exc
        if done.returncode != 0 or not (partial / self.jar.name).exists():
            raise InfraError(
                f"fetching Kafka's jars failed (mvn exit {done.returncode}): "
                f"{tail(log, 3)} — see {log}"
            )
        shutil.rmtree(self.libs, ignore_errors=True)
        partial.replace(self.libs)
        return True

    def format_storage(self, java: str, progress: Progress) -> bool:
        """Format the KRaft storage with a new cluster id unless already formatted."""
        if (self.storage / "meta.properties").exists():
            return False
        progress("formatting Kafka storage (new cluster)…")
        self.storage.mkdir(parents=True, exist_ok=True)
        argv = [
            java, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", self.classpath,
            "kafka.tools.StorageTool", "format", "--ignore-formatted",
            "-t", new_cluster_id(), "-c", str(self.properties),
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            output = " | ".join(line for line in (done.stdout + done.stderr).splitlines() if line)
            raise InfraError(f"formatting Kafka storage failed: {output[-600:]}")
        return True

    def purge(self) -> bool:
        """Delete the broker's storage (topics, offsets, cluster id); True if there was any."""
        if not self.storage.exists():
            return False
        shutil.rmtree(self.storage)
        return True

    def _java(self) -> str:
        if self._java_path is not None:
            return self._java_path
        java = shutil.which("java")
        if java is None:
            raise InfraError(f"Java {MIN_JAVA}+ is needed to run Kafka; `java` is not on PATH")
        major = java_major(java)
        if major and major < MIN_JAVA:
            raise InfraError(f"Kafka {self.version} needs Java {MIN_JAVA}+, found Java {major}")
        self._java_path = java
        return java
