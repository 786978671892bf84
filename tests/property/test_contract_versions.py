"""The contract's versions are one meaning: an event sent in schema_version 1 and the same
event sent in version 2 make the same journey (≥ 300 generated journeys).

Every generated ``sales.lead_qualified`` is a version-1 document (answers yes, no, null or not
given); its twin is the version-2 document `lead_qualified_1_to_2` writes. Folding the journey
of either, in any order, gives the same record, view and snapshot; parsing either gives equal
touchpoints with the same canonical JSON (so a re-delivery in the other version is a duplicate,
not a conflict).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.upcast import lead_qualified_1_to_2
from events.vocabulary import LeadQualified, touchpoint_to_json
from streams import journey as core
from tests.property.strategies import law_playbook, parse, touchpoint_documents

PB = law_playbook()
CID = "cus_versions"
LAW = settings(max_examples=300, deadline=None)

Docs = list[dict[str, Any]]


def as_version_2(docs: Docs) -> Docs:
    """The same touchpoints with every version-1 lead_qualified written as version 2."""
    return [lead_qualified_1_to_2(d) if d["type"] == "sales.lead_qualified" else d for d in docs]


@st.composite
def journeys_with_qualification(draw: st.DrawFn) -> Docs:
    docs = draw(touchpoint_documents())
    qualified = draw(st.lists(st.integers(0, 7**6), min_size=1, max_size=3))
    base = touchpoint_documents(prefix="q", min_size=len(qualified), max_size=len(qualified))
    extra = [
        d
        | {"type": "sales.lead_qualified", "identity": d.get("identity") or {"contact_id": "crm-1"}}
        for d in draw(base)
    ]
    for doc, v in zip(extra, qualified, strict=True):
        answers = ({}, {"budget": True}, {"timeline": False}, {"need": None, "budget": True})
        doc["properties"] = answers[v % len(answers)]
    return draw(st.permutations([*docs, *extra]))


@LAW
@given(journeys_with_qualification())
def test_upcast_version_1_then_fold_is_the_version_2_fold(docs: Docs) -> None:
    v1, v2 = parse(docs), parse(as_version_2(docs))
    assert v1 == v2
    assert [touchpoint_to_json(a) for a in v1] == [touchpoint_to_json(b) for b in v2]
    assert all(tp.schema_version == 2 for tp in v1 if isinstance(tp, LeadQualified))
    a, b = core.fold(CID, v1, PB), core.fold(CID, v2, PB)
    assert a.model_dump() == b.model_dump()
    assert core.view(a, PB) == core.view(b, PB)
    assert core.snapshot(a, PB) == core.snapshot(b, PB)


@LAW
@given(journeys_with_qualification())
def test_a_redelivery_in_the_other_version_is_a_duplicate_not_a_conflict(docs: Docs) -> None:
    both = [*parse(docs), *parse(as_version_2(docs))]
    record = core.fold(CID, both, PB)
    alone = core.fold(CID, parse(docs), PB)
    assert record.model_dump(exclude={"version"}) == alone.model_dump(exclude={"version"})
