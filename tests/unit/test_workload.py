"""The generated workload: deterministic, shaped as asked, and every document a touchpoint."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from events import parse_touchpoint
from streams import journey as core
from streams import workflow
from streams.workload import CHAINS, build, generate
from tests.stack import TEST_PLAYBOOK

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def test_the_same_seed_gives_the_same_backlog_and_another_seed_another() -> None:
    assert generate(200, now=NOW, seed=3) == generate(200, now=NOW, seed=3)
    assert generate(200, now=NOW, seed=3) != generate(200, now=NOW, seed=4)


def test_every_document_is_a_valid_touchpoint() -> None:
    workload = build(300, now=NOW)
    for document in workload.documents:
        parse_touchpoint(document)


def test_duplicates_late_events_and_the_ledger_are_there_in_the_asked_share() -> None:
    workload = build(1000, now=NOW, duplicates=0.1, shuffle=False)
    ids = Counter(d["event_id"] for d in workload.documents)
    assert len(ids) == len(workload.events)
    twice = sum(1 for n in ids.values() if n == 2)
    assert twice == workload.duplicates
    assert 0.09 <= twice / len(workload.events) <= 0.11
    assert 0.02 <= workload.late / len(workload.documents) <= 0.4
    assert 3 <= workload.ledger == sum(1 for d in workload.events if "identity" not in d)
    assert generate(100, now=NOW, duplicates=0.0) == build(100, now=NOW, duplicates=0).documents
    assert build(100, now=NOW, duplicates=0).duplicates == 0


def test_every_chain_is_represented_and_links_land_before_and_after_what_they_join() -> None:
    for shuffle in (True, False):
        workload = build(1000, now=NOW, shuffle=shuffle)
        chains = Counter(p.chain for p in workload.people)
        for chain, share in CHAINS:
            assert abs(chains[chain] / 1000 - share) < 0.05, chain
        assert workload.links_before > 0.3 * workload.links
        assert workload.links_after > 0.3 * workload.links


def test_a_fair_share_of_people_are_handed_off_under_both_playbooks() -> None:
    workload = build(400, now=NOW)
    touchpoints = [parse_touchpoint(d) for d in workload.documents]
    for playbook in (core.default_playbook(), core.load_playbook_file(TEST_PLAYBOOK)):
        result = workflow.replay(touchpoints, playbook)
        handed_off = {s.customer_id for s in result.signals if isinstance(s, core.HandoffSignal)}
        people = len(result.records) - 1  # the ledger
        assert people == 400  # one journey per person, whatever the chain
        assert 0.25 < len(handed_off) / people < 0.9
        assert result.duplicates == workload.duplicates


def test_twenty_thousand_touchpoints_are_generated() -> None:
    workload = build(2600, now=NOW)
    assert len(workload.events) >= 19_000
    assert len(generate(2600, now=NOW, shuffle=False)) > len(workload.events)


def test_short_journeys_keep_the_chains_and_the_hand_offs_in_about_four_touchpoints() -> None:
    workload = build(1000, now=NOW, short=True)
    assert 3.5 <= len(workload.events) / 1000 <= 4.5
    assert workload.links_before > 0.3 * workload.links
    assert workload.links_after > 0.3 * workload.links
    result = workflow.replay(
        [parse_touchpoint(d) for d in workload.documents], core.default_playbook()
    )
    assert len(result.records) == 1001
    handed_off = {s.customer_id for s in result.signals if isinstance(s, core.HandoffSignal)}
    assert len(handed_off) > 250
