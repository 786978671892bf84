"""Poison: a touchpoint dated 9999-12-31 once froze its customer (the timer computation
overflowed after the journey was written). It is now refused at the door as `out_of_range`,
and the customer's next touchpoint is applied as if the poison had never been sent; `tandem
replay` counts hostile lines as rejected, with a reason, and never tracebacks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from events import ReasonCode, Rejection, decode_touchpoint
from events.examples import example
from events.topics import domain_of
from events.vocabulary import Touchpoint
from streams import journey as core
from streams import workflow
from streams.cli import _register, app
from tests.hostile import hostile_inputs

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
HOSTILE_LINES = [b"[" * 100_000, b"1" * 5000, b'{"event_id": "\\ud800"}', b'{"a": 1, "a": 2}']

_register()


def _touchpoint(type_name: str, event_id: str, occurred_at: str) -> dict[str, Any]:
    document = example(type_name)
    document.update(event_id=event_id, occurred_at=occurred_at)
    document["identity"] = {"email": "poisoned@acme.example", "anonymous_id": "anon-poison"}
    return document


FIRST = _touchpoint("marketing.page_viewed", "poison-1", "2025-03-08T10:00:00Z")
POISON = _touchpoint("sales.meeting_booked", "poison-2", "9999-12-31T00:00:00Z")
NEXT = _touchpoint("marketing.form_submitted", "poison-3", "2025-03-09T10:00:00Z")


def _decode(document: dict[str, Any]) -> Touchpoint | Rejection:
    return decode_touchpoint(json.dumps(document).encode(), domain_of(document["type"]), now=NOW)


def test_a_far_future_touchpoint_is_refused_and_the_next_one_applies() -> None:
    outcomes = [_decode(d) for d in (FIRST, POISON, NEXT)]
    poison = outcomes[1]
    assert isinstance(poison, Rejection)
    assert poison.code is ReasonCode.OUT_OF_RANGE
    assert poison.errors[0].startswith("occurred_at: 9999-12-31T00:00:00+00:00 is more than 24 h")
    assert poison.event_id == "poison-2"

    accepted = [o for o in outcomes if not isinstance(o, Rejection)]
    playbook = core.default_playbook()
    # Timers run too (the overflow was in the timer computation), a day after the last event.
    result = workflow.replay(accepted, playbook, now=NOW + timedelta(days=1))
    assert result.applied == 2 and result.duplicates == 0
    (record,) = result.records.values()
    assert {t.event_id for t in record.touchpoints} == {"poison-1", "poison-3"}
    assert core.view(record, playbook).stage in {
        core.Stage.LEAD,
        core.Stage.MQL,
    }  # the form counted


def test_the_window_is_one_day_after_receipt() -> None:
    at_the_edge = _touchpoint(
        "marketing.page_viewed", "edge", (NOW + timedelta(hours=24)).isoformat()
    )
    past_it = _touchpoint(
        "marketing.page_viewed", "past", (NOW + timedelta(hours=24, seconds=1)).isoformat()
    )
    assert not isinstance(_decode(at_the_edge), Rejection)
    rejection = _decode(past_it)
    assert isinstance(rejection, Rejection) and rejection.code is ReasonCode.OUT_OF_RANGE


def test_replay_counts_hostile_lines_as_rejected_and_applies_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "poison.jsonl"
    lines = [json.dumps(d).encode() for d in (FIRST, POISON, NEXT)] + HOSTILE_LINES
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(app, ["replay", str(path), "--json", "--as-of", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["applied"] == 2 and summary["rejected"] == 5
    assert {code: r["count"] for code, r in summary["rejections"].items()} == {
        "out_of_range": 2, "too_deep": 1, "bad_unicode": 1, "duplicate_key": 1,
    }  # fmt: skip


def test_replay_of_the_hostile_corpus_never_tracebacks(tmp_path: Path) -> None:
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(hostile_inputs(10_000)) + b"\n")
    result = CliRunner().invoke(app, ["replay", str(path), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output[-2000:]
    summary = json.loads(result.stdout)
    assert summary["lines"] == summary["touchpoints"] + summary["rejected"]
    assert summary["touchpoints"] > 1000 and summary["rejected"] > 5000
    print(f"\nreplay of the corpus: {summary['lines']} lines, {summary['rejected']} rejected")
