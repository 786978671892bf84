"""The `tandem` CLI explains itself: one line and exit 69 when Kafka or Redis is unreachable,
one time parser, short flags with one meaning, `--version`, plain progress off a terminal.

The broker-down tests run real `tandem` subprocesses against closed ports (nothing listens on
port 1), so what they check is what a person sees: the whole stderr, the exit code, and that
nothing is printed when the clients are garbage-collected at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from events.examples import VALID_EXAMPLES
from streams.cli import _common, _register, app
from streams.cli._common import EXIT_UNAVAILABLE, parse_time, parse_tz
from streams.cli.kpis import day_window

runner = CliRunner()

CLOSED_KAFKA = "127.0.0.1:1"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def _tandem(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TANDEM_KAFKA_BOOTSTRAP": CLOSED_KAFKA,
        "TANDEM_REDIS_URL": CLOSED_REDIS,
        "PYTHONWARNINGS": "default",  # ResourceWarnings ("Unclosed …") would show too
        "TANDEM_WEBHOOKS": '[{"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}]',
    }
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture(scope="module")
def touchpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "in.jsonl"
    path.write_text(json.dumps(VALID_EXAMPLES["sales.deal_won"]) + "\n")
    return path


NEEDS_KAFKA = [
    ["tail", "signals.handoff", "--idle-exit", "1"],
    ["subscribe", "handoff", "--idle-exit", "1"],
    ["deadletter", "list"],
    ["deadletter", "redrive", "--all"],
    ["topics", "create"],
    ["topics", "describe"],
    ["worker"],
    ["webhooks"],
    ["forget", "ada@example.com", "--yes"],
]
NEEDS_REDIS = [
    ["kpis"],
    ["kpis", "--since", "2025-06-01", "--json"],
    ["journey", "ada@example.com"],
    ["journeys", "--csv"],
    ["unmerge", "ada@example.com", "--split", "email:bob@example.com", "--yes"],
]


def _assert_one_line_69(done: subprocess.CompletedProcess[str], address: str, fix: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EXIT_UNAVAILABLE, done.stderr
    assert len(lines) == 1, done.stderr
    assert address in lines[0] and "tandem infra up" in lines[0] and fix in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "Unclosed" not in done.stderr + done.stdout
    assert "KafkaConnectionError" not in done.stderr


@pytest.mark.parametrize("args", NEEDS_KAFKA, ids=" ".join)
def test_kafka_down_is_one_line_and_exit_69(args: list[str]) -> None:
    _assert_one_line_69(_tandem(*args), CLOSED_KAFKA, "TANDEM_KAFKA_BOOTSTRAP")


def test_publish_with_kafka_down(touchpoints: Path) -> None:
    _assert_one_line_69(
        _tandem("publish", str(touchpoints)), CLOSED_KAFKA, "TANDEM_KAFKA_BOOTSTRAP"
    )
    piped = _tandem("publish", "-", stdin=touchpoints.read_text())
    _assert_one_line_69(piped, CLOSED_KAFKA, "TANDEM_KAFKA_BOOTSTRAP")


@pytest.mark.parametrize("args", NEEDS_REDIS, ids=" ".join)
def test_redis_down_is_one_line_and_exit_69(args: list[str]) -> None:
    _assert_one_line_69(_tandem(*args), CLOSED_REDIS, "TANDEM_REDIS_URL")


def test_replay_needs_neither(touchpoints: Path) -> None:
    done = _tandem("replay", str(touchpoints), "--as-of", "2025-06-01")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_a_redis_password_is_not_printed() -> None:
    line = _common.unavailable_message("redis", "redis://tandem:s3cret@10.0.0.5:6380/2")
    assert "s3cret" not in line and "redis://tandem:***@10.0.0.5:6380/2" in line


# --- times -----------------------------------------------------------------------------------

JUNE_1 = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01", JUNE_1),
        ("2025-06-01T12:00", JUNE_1 + timedelta(hours=12)),
        ("2025-06-01 12:00:30", JUNE_1 + timedelta(hours=12, seconds=30)),
        ("2025-06-01T12:00Z", JUNE_1 + timedelta(hours=12)),
        ("2025-06-01T14:00+02:00", JUNE_1 + timedelta(hours=12)),
    ],
)
def test_one_parser_for_every_time_option(text: str, expected: datetime) -> None:
    assert parse_time(text, "--x") == expected


def test_naive_times_and_dates_are_read_in_the_time_zone() -> None:
    paris = parse_tz("Europe/Paris")
    assert parse_time("2025-06-01", "--x", paris) == JUNE_1 - timedelta(hours=2)
    assert parse_time("2025-06-01T12:00", "--x", parse_tz("+05:30")) == JUNE_1 + timedelta(
        hours=6, minutes=30
    )
    assert parse_time("2025-06-01", "--x", end_of_day=True) == JUNE_1 + timedelta(days=1)
    # An explicit offset wins over --tz.
    assert parse_time("2025-06-01T12:00Z", "--x", paris) == JUNE_1 + timedelta(hours=12)
    assert parse_tz("-0300") == timezone(-timedelta(hours=3))
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_time("now", "--x", now=now) == now


def test_kpi_windows_are_whole_utc_days() -> None:
    assert day_window("2025-06-01", "2025-06-30", UTC) == (
        JUNE_1,
        datetime(2025, 7, 1, tzinfo=UTC),
        False,
    )
    # Paris days start at 22:00 UTC the day before: widened to the UTC days they touch.
    start, end, widened = day_window("2025-06-01", "2025-06-01", parse_tz("Europe/Paris"))
    assert (start, end, widened) == (JUNE_1 - timedelta(days=1), JUNE_1 + timedelta(days=1), True)
    assert day_window("2025-06-01T12:00", None, UTC) == (JUNE_1, None, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "June"], "--since 'June' is not a time"),
        (["--until", "2025-02-30"], "--until '2025-02-30' is not a time"),
        (["--since", "2025-06-02", "--until", "2025-06-01"], "is not before --until"),
        (["--since", "2025-06-01", "--tz", "Nowhere/Land"], "is not a time zone"),
        (["--by", "planet"], "--by takes one of"),
    ],
)
def test_bad_time_options_are_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["kpis", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- flags, version, progress ----------------------------------------------------------------


def _short_flags() -> dict[str, set[str]]:
    _register()
    meanings: dict[str, set[str]] = {}

    def walk(command: object, path: str) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}".strip())
        for param in getattr(command, "params", []):
            opts = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
            long = next((o for o in opts if o.startswith("--")), None)
            for short in (o for o in opts if o.startswith("-") and not o.startswith("--")):
                meanings.setdefault(short, set()).add(str(long))

    walk(typer.main.get_command(app), "")
    return meanings


def test_a_short_flag_means_one_thing_in_every_command() -> None:
    meanings = _short_flags()
    assert {k: v for k, v in meanings.items() if len(v) > 1} == {}
    assert meanings["-o"] == {"--out"} and meanings["-n"] == {"--limit"}


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tandem {version('tandem-journeys')}"


def test_long_work_prints_plain_progress_lines_off_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.samples import demo_journeys

    path = tmp_path / "many.jsonl"
    documents = demo_journeys(datetime(2025, 5, 1, tzinfo=UTC))
    path.write_text("".join(json.dumps(d) + "\n" for d in documents))
    monkeypatch.setattr(_common, "PLAIN_PROGRESS_INTERVAL_S", 0.0)  # a line at every update
    result = runner.invoke(app, ["replay", str(path), "--json"])
    assert result.exit_code == 0, result.output
    progress = result.stderr.strip().splitlines()
    assert progress and all(line.startswith("replay: ") for line in progress)
    assert any("%" in line for line in progress)
    assert "\x1b" not in result.stderr and "\r" not in result.stderr  # no bar, no escapes
    assert json.loads(result.stdout)["touchpoints"] == len(documents)  # stdout stays JSON
