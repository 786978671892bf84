"""`streams.infra` without Kafka or Redis: configuration, PID-file safety, the `up` decisions.

Every test uses a temporary data dir and ports nothing listens on, so it never touches a
broker or Redis that `tandem infra up` may be running on this machine. The only processes
started are `sleep`/`sh` stand-ins, and each test stops what it started.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streams import infra
from streams.infra import ServiceState, _process
from streams.infra._process import (
    Action,
    InfraError,
    Probe,
    decide,
    pid_alive,
    read_pid,
    split_host_port,
    write_pid,
)
from streams.infra.kafka import (
    LOG4J_CONFIG,
    POM,
    KafkaService,
    kafka_version,
    new_cluster_id,
    parse_java_major,
    render_server_properties,
)
from streams.infra.redis import RedisService
from streams.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        kafka_heap="256m",
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is neither Kafka nor Redis."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


# --- server.properties ----------------------------------------------------------------------


def test_server_properties_single_kraft_node(tmp_path: Path) -> None:
    props = properties(render_server_properties("127.0.0.1", 19092, tmp_path / "data"))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str((tmp_path / "data").resolve())
    assert Path(props["log.dirs"]).is_absolute()


def test_server_properties_never_auto_create_topics_and_replicate_once(tmp_path: Path) -> None:
    props = properties(render_server_properties("127.0.0.1", 9092, tmp_path))

    assert props["auto.create.topics.enable"] == "false"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_kafka_service_follows_settings(settings: Settings) -> None:
    kafka = KafkaService(settings)
    port = int(settings.kafka_bootstrap.rsplit(":", 1)[1])

    assert (kafka.host, kafka.port) == ("127.0.0.1", port)
    assert kafka.jar.name == f"kafka_2.13-{kafka_version()}.jar"
    assert kafka.libs == settings.data_dir / "kafka" / "libs"
    assert kafka.pid_file == settings.data_dir / "run" / "kafka.pid"
    argv = kafka.command()
    assert "-Xmx256m" in argv and "-Xms256m" in argv
    assert argv[-2:] == ["kafka.Kafka", str(kafka.properties)]
    assert f"-Dlog4j2.configurationFile={LOG4J_CONFIG}" in argv


def test_kafka_heap_is_validated(settings: Settings) -> None:
    kafka = KafkaService(settings.model_copy(update={"kafka_heap": "-XX:+Bad"}))
    with pytest.raises(InfraError, match="TANDEM_KAFKA_HEAP"):
        kafka.command()


def test_pom_and_logging_config_ship_with_the_package() -> None:
    assert kafka_version(POM) == "4.4.0"
    config = yaml.safe_load(LOG4J_CONFIG.read_text())["Configuration"]
    assert config["shutdownHook"] == "disable"
    loggers = {logger["name"]: logger["level"] for logger in config["Loggers"]["Logger"]}
    # The readiness line "Kafka Server started" comes from this logger.
    assert loggers["kafka.server.KafkaRaftServer"] == "INFO"


def test_cluster_id_is_22_chars_of_urlsafe_base64() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    # One in 32 would, and the storage tool's parser then reads it as an option (seen: a
    # crash-loop test's own broker failed to format).
    assert not any(new_cluster_id().startswith("-") for _ in range(2_000))


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.13" 2024-10-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("no java here", 0),
    ],
)
def test_java_major(output: str, major: int) -> None:
    assert parse_java_major(output) == major


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("localhost:19092,otherhost:9092", ("localhost", 19092)),
        ("kafka://broker.example:9093", ("broker.example", 9093)),
        ("redis://127.0.0.1:6380/0", ("127.0.0.1", 6380)),
        ("redis://:secret@127.0.0.1/2", ("127.0.0.1", 6379)),
    ],
)
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address, 6379) == expected


def test_redis_command_has_no_persistence_and_logs_to_the_data_dir(settings: Settings) -> None:
    redis = RedisService(settings)
    argv = redis.command()
    options = dict(zip(argv[1::2], argv[2::2], strict=True))

    assert options["--port"] == str(redis.port)
    assert options["--bind"] == "127.0.0.1"
    assert options["--daemonize"] == "no"
    assert options["--save"] == ""
    assert options["--appendonly"] == "no"
    assert options["--logfile"] == str(settings.data_dir / "logs" / "redis.log")


# --- recognising our processes ------------------------------------------------------------


def test_kafka_owns_only_a_broker_running_our_properties(settings: Settings) -> None:
    kafka = KafkaService(settings)
    ours = ["/usr/bin/java", "-Xmx512m", "-cp", "x/*", "kafka.Kafka", str(kafka.properties)]
    someone_elses = [*ours[:-1], "/opt/kafka/config/server.properties"]

    assert kafka.owns(ours)
    assert not kafka.owns(someone_elses)
    assert not kafka.owns(["sleep", "60"])
    assert not kafka.owns([])  # a zombie or vanished process


def test_redis_owns_its_retitled_process_on_our_port(settings: Settings) -> None:
    redis = RedisService(settings)
    # Redis overwrites its argv with a title; both forms must be recognised.
    assert redis.owns([f"/usr/bin/redis-server 127.0.0.1:{redis.port}"])
    assert redis.owns(["redis-server", "--bind", "127.0.0.1", "--port", str(redis.port)])
    assert not redis.owns([f"/usr/bin/redis-server 127.0.0.1:{redis.port + 1}"])
    assert not redis.owns(["sleep", str(redis.port)])


# --- PID files ------------------------------------------------------------------------------


def test_pid_file_round_trip_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.pid"
    assert read_pid(path) is None
    write_pid(path, 4242)
    assert path.read_text() == "4242\n"
    assert read_pid(path) == 4242
    for garbage in ("", "abc", "-5", "0", "12 13"):
        path.write_text(garbage)
        assert read_pid(path) is None, garbage


def test_pid_alive_treats_exited_processes_as_dead() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)
    assert pid_alive(os.getpid())


def test_stale_pid_file_is_removed_and_nothing_is_signalled(settings: Settings) -> None:
    kafka = KafkaService(settings)
    gone = subprocess.Popen(["true"])
    gone.wait()
    write_pid(kafka.pid_file, gone.pid)

    assert kafka.our_pid() is None
    assert not kafka.pid_file.exists()
    assert kafka.stop().pid is None


@pytest.mark.parametrize("service_class", [KafkaService, RedisService])
def test_a_foreign_process_behind_our_pid_file_is_never_killed(
    settings: Settings,
    sleeper: subprocess.Popen[bytes],
    service_class: type[KafkaService] | type[RedisService],
) -> None:
    # The PID was recycled: the PID file now names a process that is not our server.
    service = service_class(settings)
    write_pid(service.pid_file, sleeper.pid)

    stopped = service.stop(grace=0.5)

    assert stopped.pid is None
    assert sleeper.poll() is None, "the foreign process must still be running"
    assert not service.pid_file.exists()


def test_down_leaves_foreign_processes_alone(
    settings: Settings, sleeper: subprocess.Popen[bytes]
) -> None:
    for key in ("kafka", "redis"):
        write_pid(settings.data_dir / "run" / f"{key}.pid", sleeper.pid)

    result = infra.down(settings, grace=0.5)

    assert sleeper.poll() is None
    assert [s.state for s in result.services] == [ServiceState.DOWN, ServiceState.DOWN]
    assert [s.pid for s in result.services] == [None, None]
    assert all(s.detail == "was not running" for s in result.services)
    assert not list((settings.data_dir / "run").glob("*.pid"))


def test_stop_terminates_our_process_and_removes_the_pid_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = KafkaService(settings)
    monkeypatch.setattr(KafkaService, "owns", lambda self, argv: "sleep" in argv)
    monkeypatch.setattr(KafkaService, "command", lambda self: ["sleep", "60"])
    pid = service.launch()
    assert read_pid(service.pid_file) == pid

    stopped = service.stop(grace=5)

    assert stopped.pid == pid and not stopped.killed
    assert not pid_alive(pid)
    assert not service.pid_file.exists()


def test_stop_kills_a_process_that_ignores_sigterm(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = KafkaService(settings)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    monkeypatch.setattr(KafkaService, "owns", lambda self, argv: stubborn in argv)
    monkeypatch.setattr(KafkaService, "command", lambda self: [sys.executable, "-c", stubborn])
    pid = service.launch()
    time.sleep(0.5)  # let the interpreter install its SIGTERM handler

    stopped = service.stop(grace=0.5)

    assert stopped.killed
    assert not pid_alive(pid)


# --- what `up` decides ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("our_pid", "probe", "local", "action"),
    [
        (123, Probe.ANSWERS, True, Action.ALREADY_RUNNING),
        (123, Probe.BUSY, True, Action.WAIT),
        (123, Probe.CLOSED, True, Action.WAIT),
        (None, Probe.ANSWERS, True, Action.REUSE),
        (None, Probe.ANSWERS, False, Action.REUSE),
        (None, Probe.BUSY, True, Action.CONFLICT),
        (None, Probe.CLOSED, True, Action.START),
        (None, Probe.CLOSED, False, Action.UNREACHABLE),
    ],
)
def test_decide(our_pid: int | None, probe: Probe, local: bool, action: Action) -> None:
    assert decide(our_pid, probe, local) is action


def _forbid_launching(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("must not prepare or launch anything")

    for cls in (KafkaService, RedisService):
        monkeypatch.setattr(cls, "prepare", refuse)
        monkeypatch.setattr(cls, "launch", refuse)


def test_up_reuses_services_that_already_answer(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_launching(monkeypatch)
    for cls in (KafkaService, RedisService):
        monkeypatch.setattr(cls, "probe", lambda self, timeout=3.0: Probe.ANSWERS)

    first = infra.up(settings)
    second = infra.up(settings)

    for result in (first, second):
        assert [s.state for s in result.services] == [ServiceState.REACHABLE] * 2
        assert all(s.pid is None and not s.started for s in result.services)
        assert all("reused" in s.detail for s in result.services)
    assert not list((settings.data_dir / "run").glob("*.pid")), "nothing recorded for reuse"
    # ...and `down` leaves them alone.
    after = infra.down(settings)
    assert all(s.detail == "left alone" and s.available for s in after.services)


def test_up_refuses_a_port_taken_by_something_else(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_launching(monkeypatch)
    monkeypatch.setattr(KafkaService, "probe", lambda self, timeout=3.0: Probe.BUSY)

    with pytest.raises(InfraError, match="is not a working Kafka"):
        infra.up(settings)


def test_up_refuses_to_start_a_remote_service(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_launching(monkeypatch)
    remote = settings.model_copy(update={"kafka_bootstrap": "kafka.invalid:9092"})
    monkeypatch.setattr(KafkaService, "probe", lambda self, timeout=3.0: Probe.CLOSED)

    with pytest.raises(InfraError, match="not on this machine"):
        infra.up(remote)


def _stand_in(monkeypatch: pytest.MonkeyPatch, cls: type, argv: Sequence[str], ready: bool) -> None:
    monkeypatch.setattr(cls, "prepare", lambda self, progress: None)
    monkeypatch.setattr(cls, "command", lambda self: list(argv))
    monkeypatch.setattr(cls, "owns", lambda self, cmdline: list(cmdline) == list(argv))
    # The port is free (nothing answers) until our stand-in "becomes ready".
    monkeypatch.setattr(
        cls,
        "probe",
        lambda self, timeout=3.0: Probe.ANSWERS if ready and self.our_pid() else Probe.CLOSED,
    )
    monkeypatch.setattr(_process, "port_open", lambda host, port, timeout=0.5: True)
    monkeypatch.setattr(cls, "speaks", lambda self, timeout: ready)


def test_failed_up_stops_everything_it_started(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in(monkeypatch, KafkaService, ["sleep", "61"], ready=False)  # never ready
    _stand_in(monkeypatch, RedisService, ["sleep", "62"], ready=True)
    run_dir = settings.data_dir / "run"

    with pytest.raises(InfraError, match=r"Kafka did not become ready within 1 s") as error:
        infra.up(settings, timeout=1, redis_timeout=5)

    assert "\n" not in str(error.value)
    assert str(settings.data_dir / "logs" / "kafka.log") in str(error.value)
    assert not list(run_dir.glob("*.pid"))
    leftovers = subprocess.run(["pgrep", "-f", "^sleep 6[12]$"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""


def test_up_reports_a_server_that_dies_while_starting(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in(monkeypatch, KafkaService, ["sh", "-c", "echo boom: bad config; exit 3"], False)
    _stand_in(monkeypatch, RedisService, ["sleep", "63"], ready=True)

    with pytest.raises(InfraError, match=r"Kafka exited with code 3 .*boom: bad config"):
        infra.up(settings, timeout=30)

    assert not list((settings.data_dir / "run").glob("*.pid"))


def test_up_then_up_then_down_with_stand_ins(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in(monkeypatch, KafkaService, ["sleep", "64"], ready=True)
    _stand_in(monkeypatch, RedisService, ["sleep", "65"], ready=True)

    first = infra.up(settings, timeout=5)
    assert all(s.started and s.state is ServiceState.RUNNING for s in first.services), [
        (s.name, s.state.value, s.pid, s.started, s.detail) for s in first.services
    ]  # the whole status is too long: pytest cuts it before the service that failed
    pids = [s.pid for s in first.services]
    assert all(pid and pid_alive(pid) for pid in pids), (first, [pid_alive(p) for p in pids])

    second = infra.up(settings, timeout=5)
    assert [s.pid for s in second.services] == pids
    assert all(not s.started and "already running" in s.detail for s in second.services)

    stopped = infra.down(settings, grace=5)
    assert all(s.state is ServiceState.DOWN for s in stopped.services), stopped
    assert all(pid is not None and not pid_alive(pid) for pid in pids), (stopped, pids)
    assert infra.down(settings).kafka.detail == "was not running"  # safe to call twice


def test_a_launch_records_its_pid_once_the_child_runs_the_server(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between fork and exec the child still shows this interpreter's command line; a launch
    # that recorded its PID then would have `our_pid` take the file for a stale one.
    _stand_in(monkeypatch, RedisService, ["sleep", "66"], ready=True)
    real = _process.pid_cmdline
    before_exec = iter(range(3))

    def cmdline(pid: int) -> list[str]:
        return (
            [sys.executable, "-m", "streams"] if next(before_exec, None) is not None else real(pid)
        )

    monkeypatch.setattr(_process, "pid_cmdline", cmdline)
    redis = RedisService(settings)

    pid = redis.launch()
    try:
        assert redis.our_pid() == pid
    finally:
        redis.stop(grace=1)
        if pid_alive(pid):  # the PID file was lost: stop the child by its PID
            os.kill(pid, signal.SIGKILL)


def test_purge_deletes_kafka_storage_only(settings: Settings) -> None:
    kafka = KafkaService(settings)
    (kafka.storage / "topic-0").mkdir(parents=True)
    (kafka.libs).mkdir(parents=True)

    result = infra.down(settings, purge=True)

    assert not kafka.storage.exists()
    assert kafka.libs.exists(), "the cached jars survive a purge"
    assert "deleted" in result.kafka.detail


def test_status_of_nothing(settings: Settings) -> None:
    result = infra.status(settings)
    assert [s.state for s in result.services] == [ServiceState.DOWN, ServiceState.DOWN]
    assert not result.available


def test_cli_status_check_fails_when_down(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streams.cli.infra as cli_infra
    from streams.cli import app

    monkeypatch.setattr(cli_infra, "get_settings", lambda: settings)
    runner = CliRunner()

    plain = runner.invoke(app, ["infra", "status"])
    checked = runner.invoke(app, ["infra", "status", "--check"])

    assert plain.exit_code == 0, plain.output
    assert "Kafka: down" in plain.output and "Redis: down" in plain.output
    assert checked.exit_code == 1


def test_servers_run_in_their_own_session(settings: Settings) -> None:
    # Detached means its own session: Ctrl-C in the terminal of `tandem infra up` (SIGINT to
    # the foreground process group) must not reach the server.
    service = KafkaService(settings)
    service.command = lambda: ["sleep", "66"]  # type: ignore[method-assign]
    pid = service.launch()
    try:
        assert os.getsid(pid) == pid != os.getsid(0)
    finally:
        os.kill(pid, signal.SIGKILL)
        _process._children.pop(pid).wait()
