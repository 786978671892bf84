"""Loading playbooks: the bundled default, and one clear line per problem otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemas.journey import Stage
from streams import journey as core
from streams.journey.playbook import PlaybookError, default_playbook_text

DEFAULT = yaml.safe_load(default_playbook_text())


def dump(document: object) -> str:
    return str(yaml.safe_dump(document))


def problems(document: object) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        core.load_playbook(dump(document) if not isinstance(document, str) else document)
    return caught.value.problems


def test_default_playbook_is_valid_and_complete() -> None:
    pb = core.default_playbook()
    assert pb.version == "2024.1-default"
    assert {p.name for p in pb.personas} == {"marketing-leader", "revenue-leader",
                                             "data-practitioner"}  # fmt: skip
    assert pb.mql_rule.min_engagement == 40 and pb.mql_rule.min_fit == 50
    assert pb.handoff.sla_hours == 24 and pb.handoff.escalate_after_hours == 48
    assert set(pb.nurture.tracks) >= {"engaged", "recycled", "stalled", "onboarding"}
    assert Stage.SAL in pb.content.stages and "price" in pb.content.objections
    assert "email:info@*" in pb.identity.blocklist


def test_load_playbook_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(default_playbook_text().replace("2024.1-default", "mine"))
    assert core.load_playbook_file(path).version == "mine"


def test_unknown_key_is_named_with_its_path() -> None:
    doc = {**DEFAULT, "mql_rule": {**DEFAULT["mql_rule"], "min_engagment": 3}}
    assert problems(doc) == [
        "mql_rule.min_engagment: unknown key (check the spelling; see "
        "streams/defaults/playbook.yaml)"
    ]


def test_every_problem_gets_its_own_line() -> None:
    doc = {k: v for k, v in DEFAULT.items() if k != "version"}
    doc["scoring"] = {"half_life_days": 0, "points": {"marketing.page_view": 1}}
    doc["handoff"] = {"sla_hours": 24, "escalate_after_hours": 12}
    found = problems(doc)
    assert "version: required key is missing" in found
    assert "scoring.half_life_days: Input should be greater than 0" in found
    assert any(p.startswith("scoring.points: unknown touchpoint type(s) marketing.page_view")
               for p in found)  # fmt: skip
    assert any(p.startswith("handoff: escalate_after_hours (12.0) must be later") for p in found)
    assert len(found) == 4


def test_error_message_lists_problems_one_per_line() -> None:
    with pytest.raises(PlaybookError) as caught:
        core.load_playbook(dump({**DEFAULT, "personas": "nobody"}), source="team.yaml")
    text = str(caught.value)
    assert text.splitlines()[0] == "team.yaml is not valid (1 problem(s)):"
    assert text.splitlines()[1].startswith("  - personas: ")


def test_missing_nurture_track_and_dangling_content_are_reported() -> None:
    tracks = {k: v for k, v in DEFAULT["nurture"]["tracks"].items() if k != "renewal"}
    found = problems({**DEFAULT, "nurture": {**DEFAULT["nurture"], "tracks": tracks}})
    assert found == [
        "nurture.tracks: missing track(s) renewal; every playbook defines engaged, recycled, "
        "stalled, onboarding, churn_risk, upsell, renewal"
    ]
    tracks = {**DEFAULT["nurture"]["tracks"], "engaged": {"content": ["nope"]}}
    found = problems({**DEFAULT, "nurture": {**DEFAULT["nurture"], "tracks": tracks}})
    assert found == ["nurture.tracks.engaged: content 'nope' is not in the content catalogue"]


def test_bad_stage_and_objection_names() -> None:
    found = problems({**DEFAULT, "content": {"stages": {"prospect": []},
                                             "objections": {"money": []}}})  # fmt: skip
    assert len(found) == 2
    assert found[0].startswith("content.stages.prospect.[key]: Input should be 'visitor'")
    assert found[1].startswith("content.objections.money.[key]: Input should be 'price'")


def test_identity_guards_are_validated() -> None:
    found = problems({**DEFAULT, "identity": {"blocklist": ["info@*"],
                                              "max_identifiers_per_customer": 0}})  # fmt: skip
    assert found == [
        "identity.blocklist: entries must start with contact:, email: or anon: (got info@*)",
        "identity.max_identifiers_per_customer: Input should be greater than or equal to 1",
    ]


def test_document_level_problems_get_a_line_each() -> None:
    tracks = {**DEFAULT["nurture"]["tracks"], "engaged": {"content": ["nope", "nada"]}}
    personas = [DEFAULT["personas"][0], DEFAULT["personas"][0]]
    doc = {**DEFAULT, "personas": personas, "nurture": {**DEFAULT["nurture"], "tracks": tracks}}
    assert problems(doc) == [
        "nurture.tracks.engaged: content 'nope' is not in the content catalogue",
        "nurture.tracks.engaged: content 'nada' is not in the content catalogue",
        "personas: 'marketing-leader' is defined twice",
    ]


def test_company_size_range_must_be_ordered() -> None:
    persona = {"name": "x", "company_size": {"min": 500, "max": 50}}
    assert problems({**DEFAULT, "personas": [persona]}) == [
        "personas.0.company_size: min (500) is larger than max (50)"
    ]


def test_yaml_syntax_errors_point_at_the_line() -> None:
    found = problems("version: '1'\nnurture: [unclosed\n")
    assert len(found) == 1 and found[0].startswith("line 3, column 1: not valid YAML")


@pytest.mark.parametrize("text", ["", "- a list\n", "just text\n"])
def test_document_must_be_a_mapping(text: str) -> None:
    assert problems(text) == ["the document must be a mapping (key: value) at the top"]


def test_identity_guards_from_the_playbook() -> None:
    guards = core.IdentityGuards.from_playbook(core.default_playbook())
    assert guards.max_identifiers_per_customer == 25
    assert guards.is_blocked("email:info@acme.example")
    assert not guards.is_blocked("email:ada@acme.example")
