"""CSV output of the list commands: one header row, fixed columns, parsed back by `csv`."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from events import parse_touchpoint
from streams import journey as core
from streams import workflow
from streams.cli import _csv
from streams.cli.journeys import columns, rows
from streams.cli.kpis import csv_columns, report_csv
from streams.journey import kpis
from streams.samples import demo_journeys

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_cells_round_trip_through_the_csv_module() -> None:
    awkward = {"a": 'says "hi", then\nleaves', "b": None, "c": Decimal("12.50"),
               "d": ["email:a@x.io", "anon:1"], "e": True, "f": 0.25}  # fmt: skip
    parsed = parse(_csv.render(["a", "b", "c", "d", "e", "f", "g"], [awkward]))
    assert parsed == [
        ["a", "b", "c", "d", "e", "f", "g"],
        ['says "hi", then\nleaves', "", "12.50", "email:a@x.io;anon:1", "true", "0.25", ""],
    ]


def sample() -> workflow.ReplayResult:
    return workflow.replay(
        [parse_touchpoint(d) for d in demo_journeys(NOW)], core.default_playbook()
    )


def test_kpi_csv_has_a_row_for_all_then_each_group_in_fixed_columns() -> None:
    playbook = core.default_playbook()
    facts = [kpis.journey_facts(r, playbook) for r in sample().records.values()]
    report = kpis.compute_kpis(facts, now=NOW, by="persona")
    table = list(csv.DictReader(io.StringIO(report_csv(report), newline="")))
    assert list(table[0]) == csv_columns()
    assert [row["group"] for row in table] == ["all", *(report.groups or {})]
    assert int(table[0]["leads"]) == report.leads and Decimal(table[0]["revenue"]) == report.revenue
    assert table[0]["since"] == table[0]["until"] == ""
    for row, group in zip(table[1:], (report.groups or {}).values(), strict=True):
        assert int(row["journeys"]) == group.journeys
        assert (row["win_rate"] or None) == (
            None if group.win_rate is None else str(group.win_rate)
        )


def test_journey_rows_newest_touch_first_and_by_stage() -> None:
    playbook = core.default_playbook()
    snapshots = {
        cid: core.snapshot(record, playbook).model_dump(mode="json")
        for cid, record in sample().records.items()
    }
    every = rows(snapshots, None)
    assert core.LEDGER_CUSTOMER not in {r["customer_id"] for r in every} and len(every) == 5
    assert [r["last_touch_at"] for r in every] == sorted(
        (r["last_touch_at"] for r in every), reverse=True
    )
    mql = rows(snapshots, {"mql"})
    assert [r["stage"] for r in mql] == ["mql"]
    table = parse(_csv.render(columns(), every))
    assert table[0] == columns() and len(table) == 6
    assert table[1][0] == every[0]["customer_id"]
