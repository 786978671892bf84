"""The KPI facts' JSON the worker writes (`kpis.journey_facts_json`, written field by field and
kept with the journey's fold state) is exactly pydantic's JSON of the facts model, for any
journey and after every change, with the fold state kept across the changes as in the worker.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from streams import workflow
from streams.journey import kpis, memo

from .strategies import law_playbook, parse, touchpoint_documents, with_duplicates

PB = law_playbook()


@settings(max_examples=200, deadline=None)
@given(touchpoint_documents(max_size=20).flatmap(with_duplicates))
def test_the_facts_json_is_pydantics_json_of_the_facts_after_every_change(
    docs: list[dict[str, Any]],
) -> None:
    memo.forget()
    touchpoints = parse(docs)
    for end in range(1, len(touchpoints) + 1):
        for record in workflow.replay(touchpoints[:end], PB).records.values():
            expected = kpis.journey_facts(record, PB).model_dump_json(exclude_defaults=True)
            assert kpis.journey_facts_json(record, PB) == expected
