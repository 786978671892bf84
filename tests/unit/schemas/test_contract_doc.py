"""docs/contract.md covers the whole contract: every type, reason code, topic and limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from events import MAX_MESSAGE_BYTES, TYPE_NAMES, ReasonCode
from events.topics import MARKETING, SALES, topic_for
from schemas.registry import DOCUMENTS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "contract.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("type_name", sorted(TYPE_NAMES))
def test_every_type_is_in_the_vocabulary_table_under_its_topic(type_name: str) -> None:
    row = f"| `{type_name}` |"
    assert row in DOC
    section = DOC.split(f"→ `{topic_for(type_name)}`", 1)[1].split("\n### ", 1)[0]
    assert row in section.split("\n## ", 1)[0]


@pytest.mark.parametrize("code", [c.value for c in ReasonCode])
def test_every_reason_code_is_explained(code: str) -> None:
    assert f"| `{code}` |" in DOC


def test_topics_limits_and_versions_are_documented() -> None:
    assert f"{MAX_MESSAGE_BYTES:,}" in DOC and "256 KiB" in DOC
    assert f"`{MARKETING}`" in DOC and f"`{SALES}`" in DOC
    assert "schema_version" in DOC and "`sales.lead_qualified` version 2" in DOC
    for tag in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        assert f"`{tag}`" in DOC
    assert "all-or-nothing" in DOC
    assert "python -m schemas.generate" in DOC


def test_the_documents_named_exist() -> None:
    names = {d.name for d in DOCUMENTS}
    assert {"touchpoint", "dead_letter", "touchpoint.marketing.page_viewed"} <= names
