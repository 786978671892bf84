"""The playbook backtest: two replays of the same touchpoints, compared (pure, no clock)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from events import parse_touchpoint
from schemas.playbook import Playbook
from streams import journey as core
from streams import workflow
from streams.journey import kpis
from streams.settings import PROJECT_ROOT
from streams.workflow.backtest import MAIN_KPIS, Shift, compare, handed_off

SAMPLE = PROJECT_ROOT / "docs" / "examples" / "sample-journeys.jsonl"
DEFAULT = core.default_playbook()
VARIANT = core.load_playbook_file(PROJECT_ROOT / "docs" / "examples" / "playbook-mql-variant.yaml")


def sample() -> list[core.Touchpoint]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [parse_touchpoint(json.loads(line)) for line in lines if line]


TOUCHPOINTS = sample()
NOW = max(t.occurred_at for t in TOUCHPOINTS)


@cache
def replayed(name: str) -> workflow.ReplayResult:
    """The sample replayed under the default ("old") or the variant ("new") playbook, once."""
    return workflow.replay(TOUCHPOINTS, DEFAULT if name == "old" else VARIANT)


def handed_off_customers(result: workflow.ReplayResult) -> set[str]:
    return {cid for cid, r in result.records.items() if handed_off(r) is not None}


def with_mql(playbook: Playbook, engagement: float, fit: float) -> Playbook:
    rule = playbook.mql_rule.model_copy(update={"min_engagement": engagement, "min_fit": fit})
    return playbook.model_copy(update={"version": "test-variant", "mql_rule": rule})


def test_the_same_playbook_changes_nothing() -> None:
    result = replayed("old")
    backtest = compare(result, DEFAULT, result, DEFAULT, now=NOW)
    assert backtest.gained == backtest.lost == ()
    assert backtest.handoffs_old == backtest.handoffs_new == len(handed_off_customers(result)) > 0
    assert all(s.delta == 0 for s in (*backtest.stages, *backtest.kpis, *backtest.signals))
    assert [s.name for s in backtest.kpis] == list(MAIN_KPIS)


def test_gained_and_lost_are_the_difference_of_the_customers_handed_off() -> None:
    old, new = replayed("old"), replayed("new")
    backtest = compare(old, DEFAULT, new, VARIANT, now=NOW)
    before, after = handed_off_customers(old), handed_off_customers(new)
    assert {c.customer_id for c in backtest.gained} == after - before
    assert {c.customer_id for c in backtest.lost} == before - after
    assert backtest.gained and backtest.lost  # the variant both gains and loses hand-offs
    assert (backtest.handoffs_old, backtest.handoffs_new) == (len(before), len(after))
    # A lost hand-off says why the old playbook handed off; its customer is no MQL any more.
    lost = backtest.lost[0]
    assert "≥ 40" in lost.reason and lost.stage_old == "mql" and lost.stage_new == "lead"
    assert "≥ 35" in backtest.gained[0].reason


def test_stage_counts_are_the_customers_per_stage_under_each_playbook() -> None:
    old, new = replayed("old"), replayed("new")
    backtest = compare(old, DEFAULT, new, VARIANT, now=NOW)

    def stages(result: workflow.ReplayResult, playbook: Playbook) -> Counter[str]:
        people = [r for cid, r in result.records.items() if cid != core.LEDGER_CUSTOMER]
        return Counter(core.view(r, playbook).stage.value for r in people)

    expected_old, expected_new = stages(old, DEFAULT), stages(new, VARIANT)
    assert {s.name: s.old for s in backtest.stages} == {
        s.name: expected_old[s.name] for s in backtest.stages
    }
    assert {s.name: (s.new or 0) for s in backtest.stages if s.new} == dict(expected_new)
    assert sum(s.old or 0 for s in backtest.stages) == backtest.journeys
    assert sum(s.delta or 0 for s in backtest.stages) == 0


def test_kpi_deltas_are_new_minus_old_of_the_kpi_reports() -> None:
    strict = with_mql(DEFAULT, 40, 101)  # no fit reaches 101: nobody is handed off
    old, new = replayed("old"), workflow.replay(TOUCHPOINTS, strict)
    backtest = compare(old, DEFAULT, new, strict, now=NOW)
    report = kpis.compute_kpis(
        [kpis.journey_facts(r, DEFAULT) for r in old.records.values()], now=NOW
    )
    shifts = {s.name: s for s in backtest.kpis}
    assert shifts["handoffs"].old == report.handoffs > 0
    assert shifts["handoffs"].new == 0 and shifts["handoffs"].delta == -report.handoffs
    assert shifts["revenue"].old == report.revenue
    assert isinstance(shifts["revenue"].delta, Decimal)
    assert backtest.handoffs_new == 0 and backtest.gained == ()
    assert len(backtest.lost) == backtest.handoffs_old
    assert {s.name: s.new for s in backtest.stages}.get("mql", 0) == 0


def test_a_delta_needs_both_sides_and_the_json_is_plain() -> None:
    assert Shift("x", None, 3).delta is None
    assert Shift("x", 0.25, 0.5).delta == 0.25
    assert Shift("x", Decimal("1.10"), Decimal("2.00")).delta == Decimal("0.90")
    old, new = replayed("old"), replayed("new")
    document = compare(old, DEFAULT, new, VARIANT, now=datetime(2030, 1, 1, tzinfo=UTC)).as_dict()
    text = json.dumps(document)  # no Decimal, no datetime: plain JSON
    assert json.loads(text)["handoffs"]["gained"][0]["customer_id"].startswith("cus_")
    assert document["new_playbook"] == "2024.1-mql-variant"
