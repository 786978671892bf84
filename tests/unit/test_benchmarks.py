"""The benchmark harness's pure helpers (no timing: the numbers belong to `make bench`)."""

from __future__ import annotations

import pytest

from benchmarks.measures.cost import DECODES, PER_CHANGE, appends_at, rounds_at
from benchmarks.measures.latency import first_handoff_latencies
from benchmarks.report import derived, merge_results, percentile, table, verdict
from benchmarks.signals import Handoff
from streams import journey as core


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(range(101)), 99) == 99.0


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_verdict_by_target() -> None:
    assert verdict("ratio_faust", 0.8) == "pass"
    assert verdict("ratio_faust", 0.05) == "FAIL"
    assert verdict("handoff_latency_ms_p99", 250) == "pass"
    assert verdict("handoff_latency_ms_p99", 251) == "FAIL"
    assert verdict("kpi_cpu_share", None) == "n/a"
    assert verdict("ceiling_events_per_s", 30_000) == ""  # reported, no target


def test_verdict_starred_below_the_issues_size() -> None:
    assert verdict("kpi_query_s", 0.5, {"kpi_query_journeys": 1_000_000}) == "pass"
    assert verdict("kpi_query_s", 0.5, {"kpi_query_journeys": 100_000}) == "pass*"
    assert verdict("kpi_query_s", 3.0, {}) == "FAIL*"
    assert table({"kpi_query_s": 3.0, "kpi_query_journeys": 5}).endswith(
        "* measured below the size the issue sets the target at"
    )


def test_derived_ratios_and_flatness() -> None:
    found = derived(
        {
            "engine_events_per_s": 200.0,
            "ceiling_events_per_s": 20_000.0,
            "faust_ceiling_events_per_s": 4_000.0,
            "skeleton_events_per_s": 1_000.0,
            "cost_per_touchpoint_us_10": 100.0,
            "cost_per_touchpoint_us_10000": 150.0,
            "cost_per_touchpoint_us_10_hourly": 100.0,
            "cost_per_touchpoint_us_10000_hourly": 400.0,
        }
    )
    assert found == {
        "ratio": 0.01, "ratio_faust": 0.05, "skeleton_ratio_faust": 0.25,
        "engine_share_of_skeleton": 0.2, "cost_flatness": 1.5, "cost_flatness_hourly": 4.0,
    }  # fmt: skip
    assert derived({"engine_events_per_s": 200.0})["ratio"] is None


def test_merge_keeps_other_measures_and_recomputes_ratios() -> None:
    previous = {
        "measures": {
            "faust": {"run_id": "a", "metrics": {"faust_ceiling_events_per_s": 4_000.0}},
            "engine": {"run_id": "a", "metrics": {"engine_events_per_s": 100.0}},
        }
    }
    run = {"run": {"run_id": "b"}, "measures": {
        "engine": {"run_id": "b", "metrics": {"engine_events_per_s": 3_000.0}}}}  # fmt: skip
    merged = merge_results(previous, run)
    assert merged["measures"]["faust"]["run_id"] == "a"
    assert merged["measures"]["engine"]["run_id"] == "b"
    assert merged["metrics"]["ratio_faust"] == 0.75


def test_table_lists_headline_first_with_target_and_verdict() -> None:
    text = table({"zeta": 1, "ratio_faust": 0.5, "core_events_per_s": 25_000}, {"zeta": "hi"})
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["metric", "value", "target"]
    assert lines[2].startswith("ratio_faust") and lines[2].rstrip().endswith("FAIL")
    assert "25,000" in lines[3] and "pass" in lines[3]
    assert lines[4].startswith("zeta") and lines[4].endswith("hi")


def test_first_handoff_per_probe() -> None:
    published = {"probe1-00004": 10.0, "probe1-00006": 11.0, "probe2-00006": 20.0}
    signals = [
        Handoff("cus_a", "probe1-00006", 11.2),
        Handoff("cus_b", "probe1-00006", 11.5),  # the same probe again, after a merge
        Handoff("cus_c", "probe2-00006", 20.1),
        Handoff("cus_d", "wl-7-03", 30.0),  # not a probe
    ]
    assert sorted(round(x) for x in first_handoff_latencies(signals, published)) == [100, 200]


def test_seeded_state_is_what_the_workflow_keeps_for_each_person() -> None:
    from datetime import UTC, datetime

    from benchmarks.seed import changelog_entries
    from schemas.journey import JourneyRecord
    from streams import journey as core
    from streams.workflow.codec import decode_journey

    seen: list[int] = []
    journeys, identity, timers = changelog_entries(
        12, core.default_playbook(), datetime(2025, 3, 1, tzinfo=UTC), seen.append
    )

    assert len(journeys) == 12
    records = [decode_journey(raw) for raw in journeys.values()]
    assert all(isinstance(r, JourneyRecord) and len(r.touchpoints) == 1 for r in records)
    owners = {identity[f"email:seed{n}@seed.example"].decode() for n in range(12)}
    assert owners == set(journeys)
    assert all(f"members:{customer_id}" in identity for customer_id in journeys)
    assert set(timers) <= set(journeys)


def test_collector_pauses_are_matched_to_the_slow_probes_they_delayed() -> None:
    from benchmarks.measures.latency import collector_in_tail

    windows = [(0.0, 0.1), (1.0, 1.4), (2.0, 2.3), (3.0, 3.5)]
    pauses = [[1.2, 2, 0.3], [5.0, 2, 0.4]]

    assert collector_in_tail(windows, pauses, 250.0) == (3, 1)


def test_a_slow_probes_time_is_split_by_hop_and_its_longest_named() -> None:
    from benchmarks.measures.latency import hop_waits, slowest_hops

    slow = [(10.0, 10.3, "p1-06"), (20.0, 20.4, "p2-06"), (30.0, 30.5, "p3-06")]
    accepted = {"p1-06": 10.02, "p2-06": 20.3, "p3-06": 30.01}
    resolved = {"p1-06": 10.05, "p2-06": 20.35}  # p3's trigger not found: left out

    waits = hop_waits(slow, accepted, resolved)

    assert [{hop: round(ms) for hop, ms in wait.items()} for wait in waits] == [
        {"ingest": 20, "identity": 30, "journeys": 250},
        {"ingest": 300, "identity": 50, "journeys": 50},
    ]
    assert slowest_hops(waits) == {"ingest": 1, "identity": 0, "journeys": 1}


def test_the_cost_measure_times_the_first_change_and_decoding_apart() -> None:
    steps = appends_at(10, 3, core.default_playbook())
    for step in (*PER_CHANGE, "encode"):
        assert len(steps[step]) == 3  # the appends after the first change
        assert len(steps[f"first:{step}"]) == 1
    assert len(steps["decode"]) == DECODES  # after the appends, not between them
    assert all(seconds > 0 for timed in steps.values() for seconds in timed)


def test_the_cost_measure_takes_the_lengths_in_turn_round_by_round() -> None:
    said: list[str] = []
    timed = rounds_at((10, 20), 2, 3, core.default_playbook(), said.append)
    assert [line.split(":")[1].split(",")[0] for line in said] == [
        " a journey of 10", " a journey of 20"] * 3  # fmt: skip
    for steps in timed.values():
        assert len(steps["apply"]) == 2 * 3  # every round's appends
        assert len(steps["first:apply"]) == 3  # one first change per round


def test_the_worker_probe_reports_its_own_peak_memory_not_its_parents() -> None:
    """A child that exec's a small program reports its own peak, not the parent's (Linux
    carries `getrusage`'s peak across exec)."""
    import subprocess
    import sys

    from benchmarks import worker_probe

    ballast = bytearray(300 * 1024 * 1024)  # the parent's peak: at least 300 MB
    ballast[::4096] = b"x" * len(ballast[::4096])
    child = subprocess.run(
        [sys.executable, "-c",
         "from benchmarks.worker_probe import peak_rss_mb; print(peak_rss_mb())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    del ballast
    assert 0 < float(child.stdout) < 200
    assert worker_probe.peak_rss_mb() >= 300
