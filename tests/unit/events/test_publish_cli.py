"""`tandem publish FILE.jsonl`: validation summary, exit codes, and what reaches the publisher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from events.examples import INVALID_EXAMPLES, VALID_EXAMPLES
from streams.cli import _register, app
from streams.cli import publish as publish_cli
from streams.settings import Settings, get_settings

_register()
runner = CliRunner()


class RecordingPublisher:
    """Stands in for TouchpointPublisher: records what would be published."""

    instances: ClassVar[list[RecordingPublisher]] = []

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.published: list[Any] = []
        self.flushed = False
        RecordingPublisher.instances.append(self)

    async def __aenter__(self) -> RecordingPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.flushed = True

    async def publish(self, touchpoint: Any) -> None:
        self.published.append(touchpoint)

    async def flush(self) -> None:
        self.flushed = True


@pytest.fixture(autouse=True)
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[RecordingPublisher]]:
    monkeypatch.setenv("TANDEM_TOPIC_PREFIX", "t9.")
    get_settings.cache_clear()
    RecordingPublisher.instances = []
    monkeypatch.setattr(publish_cli, "publisher_factory", RecordingPublisher)
    yield RecordingPublisher
    get_settings.cache_clear()


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    with path.open("wb") as out:
        for line in lines:
            out.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
    return path


@pytest.fixture
def mixed_file(tmp_path: Path) -> Path:
    lines: list[str | bytes] = [json.dumps(d) for d in VALID_EXAMPLES.values()]
    lines.append("")  # blank lines are skipped
    lines += [json.dumps(e.document) for e in INVALID_EXAMPLES if e.domain is None][:5]
    lines.append('{"event_id": "broken"')
    lines.append(b'{"event_id": "\xff"}')
    return write_lines(tmp_path / "mixed.jsonl", lines)


def test_all_valid_publishes_everything_and_exits_0(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "ok.jsonl", [json.dumps(d) for d in VALID_EXAMPLES.values()])
    result = runner.invoke(app, ["publish", str(path)])
    assert result.exit_code == 0, result.output
    (publisher,) = RecordingPublisher.instances
    assert [t.event_id for t in publisher.published] == [
        d["event_id"] for d in VALID_EXAMPLES.values()
    ]
    assert publisher.flushed
    assert f"{len(VALID_EXAMPLES)} accepted" in result.output
    assert "0 rejected" in result.output
    assert "t9.touchpoints.marketing (13)" in result.output


def test_rejections_are_grouped_by_reason_and_exit_1(mixed_file: Path) -> None:
    result = runner.invoke(app, ["publish", str(mixed_file), "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["lines"] == len(VALID_EXAMPLES) + 7
    assert summary["accepted"] == summary["published"] == len(VALID_EXAMPLES)
    assert summary["rejected"] == 7
    assert summary["rejections"]["invalid"]["count"] == 5
    assert summary["rejections"]["bad_json"]["examples"][0]["line"] == len(VALID_EXAMPLES) + 7
    assert summary["rejections"]["bad_utf8"]["examples"][0]["line"] == len(VALID_EXAMPLES) + 8
    first_invalid = summary["rejections"]["invalid"]["examples"][0]
    assert first_invalid["line"] == len(VALID_EXAMPLES) + 2  # after the blank line
    assert first_invalid["errors"] == ["properties.url: Field required"]
    assert summary["topics"] == {"t9.touchpoints.marketing": 13, "t9.touchpoints.sales": 17}
    assert sum(len(p.published) for p in RecordingPublisher.instances) == len(VALID_EXAMPLES)


def test_allow_rejects_exits_0(mixed_file: Path) -> None:
    result = runner.invoke(app, ["publish", str(mixed_file), "--allow-rejects"])
    assert result.exit_code == 0, result.output
    assert "7 rejected" in result.output
    assert "invalid (" in result.output and "bad_json (1)" in result.output


def test_dry_run_validates_without_publishing(mixed_file: Path) -> None:
    result = runner.invoke(app, ["publish", str(mixed_file), "--dry-run", "--json"])
    assert result.exit_code == 1
    assert RecordingPublisher.instances == []
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True and summary["published"] == 0
    assert summary["accepted"] == len(VALID_EXAMPLES)


def test_stdin(tmp_path: Path) -> None:
    data = "\n".join(json.dumps(d) for d in list(VALID_EXAMPLES.values())[:3]) + "\r\n"
    result = runner.invoke(app, ["publish", "-", "--json"], input=data)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["source"] == "stdin" and summary["published"] == 3


def test_publishing_a_file_twice_sends_the_same_event_ids(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "ok.jsonl", [json.dumps(d) for d in VALID_EXAMPLES.values()])
    for _ in range(2):
        assert runner.invoke(app, ["publish", str(path)]).exit_code == 0
    first, second = RecordingPublisher.instances
    assert [t.model_dump() for t in first.published] == [t.model_dump() for t in second.published]


def test_repeated_event_ids_are_reported(tmp_path: Path) -> None:
    line = json.dumps(VALID_EXAMPLES["sales.deal_won"])
    path = write_lines(tmp_path / "dup.jsonl", [line, line])
    result = runner.invoke(app, ["publish", str(path), "--json"])
    assert json.loads(result.stdout)["duplicate_event_ids"] == 1


def test_missing_file_is_a_one_line_error_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["publish", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_broker_is_one_line_and_exit_69(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Unreachable(RecordingPublisher):
        async def __aenter__(self) -> RecordingPublisher:
            raise ConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    monkeypatch.setattr(publish_cli, "publisher_factory", Unreachable)
    path = write_lines(tmp_path / "ok.jsonl", [json.dumps(VALID_EXAMPLES["sales.deal_won"])])
    result = runner.invoke(app, ["publish", str(path)])
    assert result.exit_code == 69
    assert "Kafka is not reachable at" in result.stderr and "tandem infra up" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_other_broker_trouble_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Refusing(RecordingPublisher):
        async def __aenter__(self) -> RecordingPublisher:
            raise RuntimeError("1 message(s) not delivered; first: MessageSizeTooLargeError")

    monkeypatch.setattr(publish_cli, "publisher_factory", Refusing)
    path = write_lines(tmp_path / "ok.jsonl", [json.dumps(VALID_EXAMPLES["sales.deal_won"])])
    result = runner.invoke(app, ["publish", str(path)])
    assert result.exit_code == 1
    assert "cannot publish to" in result.stderr and "not delivered" in result.stderr


def test_help_explains_the_command() -> None:
    result = runner.invoke(app, ["publish", "--help"])
    assert result.exit_code == 0
    for word in ("--dry-run", "--json", "--allow-rejects", "stdin", "Exit codes"):
        assert word in result.output


def test_format_segment_maps_calls_and_batches_and_reports_the_unmapped(tmp_path: Path) -> None:
    at = "2025-03-04T09:15:00Z"
    page = {"type": "page", "messageId": "p1", "anonymousId": "a1", "timestamp": at,
            "properties": {"url": "https://t.example/"}}  # fmt: skip
    batch = {
        "batch": [
            {"type": "identify", "messageId": "i1", "anonymousId": "a1", "userId": "u1",
             "timestamp": at, "traits": {"email": "ada@x.example"}},
            {"type": "track", "messageId": "t1", "userId": "u1", "timestamp": at,
             "event": "Cart Viewed"},
        ]
    }  # fmt: skip
    path = write_lines(tmp_path / "segment.jsonl", [json.dumps(page), json.dumps(batch)])
    args = ["publish", str(path), "--format", "segment", "--source", "website", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert (summary["lines"], summary["accepted"], summary["rejected"]) == (3, 2, 1)
    [example] = summary["rejections"]["unmapped_segment_event"]["examples"]
    assert (example["line"], example["event_id"]) == (2, "segment-t1")
    [publisher] = RecordingPublisher.instances
    assert [(t.event_id, t.type, t.source) for t in publisher.published] == [
        ("segment-p1", "marketing.page_viewed", "website"),
        ("segment-i1", "marketing.identified", "website"),
    ]


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", [])
    result = runner.invoke(app, ["publish", str(path), "--format", "csv"])
    assert result.exit_code == 2
