"""`tandem replay FILE.jsonl`: the pure core over a file, offline, with an exact summary."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from events import parse_touchpoint
from events.examples import VALID_EXAMPLES
from schemas.journey import JourneySnapshot
from schemas.signals import SIGNAL
from streams import journey as core
from streams import workflow
from streams.cli import _register, app
from streams.samples import demo_journeys
from streams.settings import PROJECT_ROOT, get_settings

_register()
runner = CliRunner()

NOW = datetime(2025, 1, 1, tzinfo=UTC)
BAD_LINES = [b"{not json", b"[1, 2]", b'{"event_id": "x1", "type": "marketing.teleported"}']


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TANDEM_PLAYBOOK", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def write_jsonl(path: Path, documents: list[dict[str, Any]], extra: Sequence[bytes] = ()) -> Path:
    with path.open("wb") as out:
        for document in documents:
            out.write(json.dumps(document).encode() + b"\n")
        out.write(b"\n")  # a blank line is skipped, not rejected
        for line in extra:
            out.write(line + b"\n")
    return path


def replay_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, ["replay", *args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_summary_equals_the_pure_core(tmp_path: Path) -> None:
    documents = demo_journeys(NOW)
    repeated = documents[:4]
    path = write_jsonl(tmp_path / "in.jsonl", documents + repeated, BAD_LINES)
    expected = workflow.replay(
        [parse_touchpoint(d) for d in documents + repeated], core.default_playbook()
    )

    summary = replay_json(str(path))

    assert summary["lines"] == len(documents) + len(repeated) + len(BAD_LINES)
    assert summary["touchpoints"] == len(documents) + len(repeated)
    assert summary["applied"] == len(documents) == expected.applied
    assert summary["duplicates"] == len(repeated)
    assert summary["rejected"] == 3
    assert {code: r["count"] for code, r in summary["rejections"].items()} == {
        "bad_json": 1, "not_an_object": 1, "unknown_type": 1,
    }  # fmt: skip
    bad_json = summary["rejections"]["bad_json"]["examples"][0]
    assert bad_json["line"] == len(documents) + len(repeated) + 2  # after the blank line
    assert summary["rejections"]["unknown_type"]["examples"][0]["event_id"] == "x1"

    customers = set(expected.records) - {core.LEDGER_CUSTOMER}
    assert summary["journeys"] == len(customers) == 5
    assert summary["ledger_touchpoints"] == 1
    assert summary["merges"] == expected.moves == 2
    playbook = core.default_playbook()
    stages = Counter(core.view(expected.records[c], playbook).stage.value for c in customers)
    assert summary["stages"] == dict(stages)
    assert summary["stages"]["mql"] == 1 and summary["stages"]["customer"] == 1
    by_type = Counter(s.signal_type for s in expected.signals)
    assert summary["signals"]["by_type"] == dict(by_type)
    assert summary["signals"]["total"] == len(expected.signals)
    assert summary["signals"]["by_type"]["handoff"] == 2
    assert summary["signals"]["by_rule"]["nurture.onboarding"] == 1
    assert summary["playbook"] == playbook.version and summary["as_of"] is None


def test_a_batched_replay_ends_with_the_same_journeys(tmp_path: Path) -> None:
    documents = demo_journeys(NOW)
    path = write_jsonl(tmp_path / "in.jsonl", documents + documents[:4])
    one, out = replay_json(str(path)), tmp_path / "out"
    together = replay_json(str(path), "--batch", "1000", "--out", str(out))
    for key in ("touchpoints", "journeys", "stages", "ledger_touchpoints", "merges"):
        assert together[key] == one[key], key
    assert together["applied"] + together["duplicates"] == one["applied"] + one["duplicates"]
    assert together["signals"]["total"] <= one["signals"]["total"]
    assert (one["batch"], together["batch"]) == (1, 1000)
    written = (out / "signals.jsonl").read_text().splitlines()
    assert len(written) == together["signals"]["total"]


def test_a_batch_is_not_taken_with_compare(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", demo_journeys(NOW))
    bundled = str(PROJECT_ROOT / "streams" / "defaults" / "playbook.yaml")
    result = runner.invoke(app, ["replay", str(path), "--compare", bundled, "--batch", "10"])
    assert result.exit_code == 2
    assert "leave --batch out" in result.output


def test_every_valid_contract_example_replays(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "examples.jsonl", list(VALID_EXAMPLES.values()))
    summary = replay_json(str(path))
    assert summary["rejected"] == 0
    assert summary["touchpoints"] == len(VALID_EXAMPLES)


def test_out_writes_a_snapshot_per_journey_and_the_signals(tmp_path: Path) -> None:
    documents = demo_journeys(NOW)
    path = write_jsonl(tmp_path / "in.jsonl", documents)
    out = tmp_path / "out"
    summary = replay_json(str(path), "--out", str(out))
    expected = workflow.replay([parse_touchpoint(d) for d in documents], core.default_playbook())

    files = sorted((out / "journeys").glob("*.json"))
    assert [f.stem for f in files] == sorted(expected.records)
    for file in files:
        snap = JourneySnapshot.model_validate_json(file.read_text())
        want = core.snapshot(expected.records[snap.customer_id], core.default_playbook())
        assert snap == want
    lines = (out / "signals.jsonl").read_text().splitlines()
    assert [SIGNAL.validate_json(line) for line in lines] == expected.signals
    assert summary["out"] == str(out)


def test_a_playbook_override_changes_the_outcome(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", demo_journeys(NOW))
    strict = (PROJECT_ROOT / "streams/defaults/playbook.yaml").read_text()
    assert "min_engagement: 40" in strict
    strict = strict.replace("min_engagement: 40", "min_engagement: 4000")
    strict = strict.replace('version: "2024.1-default"', 'version: "unreachable-mql"')
    playbook = tmp_path / "strict.yaml"
    playbook.write_text(strict)

    summary = replay_json(str(path), "--playbook", str(playbook))
    assert summary["playbook"] == "unreachable-mql"
    # Dana's hand-off was accepted anyway (sales moves on its own); Ada never becomes an MQL.
    assert summary["signals"]["by_type"].get("handoff", 0) == 0
    assert "mql" not in summary["stages"]


def test_as_of_fires_the_timers_due_by_then(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", demo_journeys(NOW))
    without = replay_json(str(path))
    assert "handoff_sla_breached" not in without["signals"]["by_type"]
    later = replay_json(str(path), "--as-of", "2025-06-01T00:00:00+00:00")
    assert later["signals"]["by_type"]["handoff_sla_breached"] == 1
    assert later["as_of"] == "2025-06-01T00:00:00+00:00"
    assert later["signals"]["by_rule"]["nurture.upsell"] == 1
    # The same moment as a bare date, or naive in UTC, or in another zone's wall time.
    for args in (
        ["--as-of", "2025-06-01"],
        ["--as-of", "2025-06-01T00:00"],
        ["--as-of", "2025-06-01 02:00", "--tz", "Europe/Paris"],
        ["--as-of", "2025-06-01T02:00+02:00"],
    ):
        same = replay_json(str(path), *args)
        assert same["as_of"] in ("2025-06-01T00:00:00+00:00", "2025-06-01T02:00:00+02:00"), args
        assert same["signals"] == later["signals"], args


def test_stdin_and_the_human_summary(tmp_path: Path) -> None:
    data = b"\n".join(json.dumps(d).encode() for d in demo_journeys(NOW)) + b"\n{oops\n"
    result = runner.invoke(app, ["replay", "-"], input=data)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stdin" in out and "5 journeys" in out and "customers per stage" in out
    assert "handoff" in out and "bad_json" in out and "1 rejected" in out


def test_strict_exits_1_on_rejected_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", demo_journeys(NOW)[:3], BAD_LINES[:1])
    assert runner.invoke(app, ["replay", str(path)]).exit_code == 0
    assert runner.invoke(app, ["replay", str(path), "--strict"]).exit_code == 1
    clean = write_jsonl(tmp_path / "clean.jsonl", demo_journeys(NOW)[:3])
    assert runner.invoke(app, ["replay", str(clean), "--strict"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/in.jsonl"], "cannot read /nonexistent/in.jsonl"),
        (["{in}", "--playbook", "/nonexistent/p.yaml"], "cannot load the playbook"),
        (["{in}", "--as-of", "yesterday"], "--as-of 'yesterday' is not a time"),
        (["{in}", "--as-of", "2025-13-01"], "is not a time"),
        (["{in}", "--as-of", "2025-06-01", "--tz", "Mars/Olympus"], "is not a time zone"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", demo_journeys(NOW)[:2])
    result = runner.invoke(app, ["replay", *(a.replace("{in}", str(path)) for a in args)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


SAMPLE = PROJECT_ROOT / "docs" / "examples" / "sample-journeys.jsonl"
VARIANT = PROJECT_ROOT / "docs" / "examples" / "playbook-mql-variant.yaml"
BUNDLED = PROJECT_ROOT / "streams" / "defaults" / "playbook.yaml"


def test_compare_backtests_the_sample_under_two_playbooks() -> None:
    """`replay --compare` on the bundled sample: the comparator's result, as JSON and as text."""
    from streams.workflow.backtest import compare

    args = ["replay", str(SAMPLE), "-p", str(VARIANT), "--compare", str(BUNDLED)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    lines = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line]
    touchpoints = [parse_touchpoint(json.loads(line)) for line in lines]
    old, new = core.default_playbook(), core.load_playbook_file(VARIANT)
    expected = compare(
        workflow.replay(touchpoints, old), old, workflow.replay(touchpoints, new), new,
        now=max(t.occurred_at for t in touchpoints),
    ).as_dict()  # fmt: skip
    assert document == {"input": document["input"], **expected}
    assert document["input"]["touchpoints"] == len(lines) and document["input"]["rejected"] == 0
    assert (document["old_playbook"], document["new_playbook"]) == (old.version, new.version)
    gained = document["handoffs"]["gained"]
    assert gained and document["handoffs"]["lost"]
    assert document["kpis"]["mqls"]["delta"] == (
        document["kpis"]["mqls"]["new"] - document["kpis"]["mqls"]["old"]
    )

    text = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    handoffs = document["handoffs"]
    assert (
        f"hand-offs in force: {handoffs['old']} → {handoffs['new']} "
        f"(+{len(gained)} gained, −{len(handoffs['lost'])} lost)"
    ) in text.stdout
    assert f"hand-offs gained ({len(gained)})" in text.stdout
    assert gained[0]["customer_id"] in text.stdout
    assert "customers per stage" in text.stdout and "KPIs" in text.stdout


def test_compare_refuses_out_and_a_broken_old_playbook(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", demo_journeys(NOW))
    both = runner.invoke(app, ["replay", str(path), "--compare", str(BUNDLED), "-o", "x"])
    assert both.exit_code == 2 and "--compare" in both.output
    missing = runner.invoke(app, ["replay", str(path), "--compare", str(tmp_path / "no.yaml")])
    assert missing.exit_code == 2 and "cannot load the playbook" in missing.output
