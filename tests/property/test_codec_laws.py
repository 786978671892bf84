"""The journeys table's entries are the journey, exactly, after every change.

With chunks sealed after a few items (so short journeys have segments) and a small retention
cap (so they compact): for any arrival order, duplication and merge, the table the store
leaves — a head, the segments it lists and nothing else — reads back as the journey, and no
entry is over the cap. Chunks are reused by the identity of their items, so a late
touchpoint, a compaction or a merge must never let a stale chunk through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.journey import JourneyRecord
from streams import journey as core
from streams.adapters.tables import TableJourneyStore
from streams.workflow import codec

from .strategies import law_playbook, parse, touchpoint_documents, with_duplicates

PB = law_playbook()
RETAINED = 6


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(codec.SEGMENT_ITEMS, "touchpoints", 3)
    monkeypatch.setitem(codec.SEGMENT_ITEMS, "summaries", 4)
    monkeypatch.setattr(codec, "SEGMENT_BYTES", 4_000)
    yield


def _stored_exactly(table: dict[bytes, bytes], record: JourneyRecord) -> None:
    key = record.customer_id.encode()
    listed = {codec.segment_key(record.customer_id, d) for d in codec.segment_digests(table[key])}
    assert {k for k in table if codec.is_segment_key(k)} == listed  # none missing, none left
    assert max(len(v) for v in table.values()) <= codec.MAX_JOURNEY_BYTES
    assert TableJourneyStore(table).get(record.customer_id) == record  # read from the table


@settings(max_examples=150, deadline=None)
@given(touchpoint_documents(max_size=25).flatmap(with_duplicates), st.randoms())
def test_the_table_reads_back_as_the_journey_after_every_change(
    docs: list[dict[str, Any]], shuffle: Any
) -> None:
    touchpoints = parse(docs)
    shuffle.shuffle(touchpoints)
    table: dict[bytes, bytes] = {}
    store = TableJourneyStore(table)
    record = core.new_journey("cus_codec_law")
    for touchpoint in touchpoints:
        record = core.apply_touchpoint(record, touchpoint, PB, max_retained=RETAINED).record
        store.put(record.customer_id, record)
        _stored_exactly(table, record)


@settings(max_examples=100, deadline=None)
@given(touchpoint_documents(max_size=25).flatmap(with_duplicates), st.integers(0, 25))
def test_a_merged_journey_reads_back_as_the_merge(docs: list[dict[str, Any]], cut: int) -> None:
    touchpoints = parse(docs)
    a = core.fold("cus_codec_a", touchpoints[:cut], PB, max_retained=RETAINED)
    b = core.fold("cus_codec_b", touchpoints[cut:], PB, max_retained=RETAINED)
    TableJourneyStore({}).put(a.customer_id, a)  # seals a's chunks, kept for reuse
    merged = core.merge(a, b)
    table: dict[bytes, bytes] = {}
    # Its chunks may be a's, sealed under a's key: they must be written under its own.
    TableJourneyStore(table).put(merged.customer_id, merged)
    _stored_exactly(table, merged)
