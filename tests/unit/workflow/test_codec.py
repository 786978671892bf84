"""The journeys table's entries: bounded whatever the journey's length, read back exactly."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events import Touchpoint, parse_touchpoint
from events.examples import VALID_EXAMPLES
from schemas.journey import JourneyRecord
from streams import journey as core
from streams.adapters.tables import TableJourneyStore
from streams.workflow import codec
from streams.workflow.codec import (
    MAX_JOURNEY_BYTES,
    SEGMENT_ITEMS,
    JourneyTooLarge,
    decode_journey,
    is_segment_key,
    journey_entries,
    segment_key,
)
from streams.workflow.ports import ForgottenJourney, MovedJourney

PB = core.default_playbook()
START = datetime(2025, 3, 1, tzinfo=UTC)
EMAIL = "long@codec.example"


def _noise(pick: random.Random, length: int) -> str:
    return "".join(pick.choices(string.ascii_letters, k=length))


def _views(first: int, count: int, *, noisy: bool = False) -> list[Touchpoint]:
    """Page views; `noisy` ones carry the longest URL, title and referrer a touchpoint may,
    of random letters (hardly compressible)."""
    pick = random.Random(first)
    url = (
        (lambda i: f"https://tandem.example/{_noise(pick, 2_000)}")
        if noisy
        else (lambda i: f"https://tandem.example/p/{i % 97}")
    )
    return [
        parse_touchpoint(
            {
                "event_id": f"codec-{i:07d}-{pick.randrange(10**9)}",
                "type": "marketing.page_viewed",
                "occurred_at": (START + timedelta(minutes=i)).isoformat(),
                "source": "website",
                "identity": {"email": EMAIL},
                "properties": {
                    "url": url(i),
                    "title": _noise(pick, 500) if noisy else None,
                    "referrer": f"https://{_noise(pick, 2_000)}.example" if noisy else None,
                },
                "context": {"channel": "social", "campaign_id": f"social-{i % 7}"},
            }
        )
        for i in range(first, first + count)
    ]


def _journey(touchpoints: list[Touchpoint]) -> JourneyRecord:
    return core.fold(core.customer_id_for(f"email:{EMAIL}"), touchpoints, PB)


@pytest.fixture(scope="module")
def long_journey() -> JourneyRecord:
    return _journey(_views(0, 3_900))  # 400 kept in full: one more does not compact


def _segments(entries: Any) -> dict[bytes, bytes]:
    return {s.digest: s.entry() for s in entries.segments}


def test_a_long_journey_is_a_head_and_segments_each_under_the_cap(
    long_journey: JourneyRecord,
) -> None:
    entries = journey_entries(long_journey)
    sizes = [len(entries.head), *(len(s.entry()) for s in entries.segments)]
    assert len(entries.segments) >= 3  # 3,500 compacted summaries, sealed by the thousand
    assert max(sizes) <= MAX_JOURNEY_BYTES
    assert decode_journey(entries.head, _segments(entries).get) == long_journey


def test_a_short_journey_is_one_entry() -> None:
    journey = _journey(_views(0, SEGMENT_ITEMS["touchpoints"] - 1))
    entries = journey_entries(journey)
    assert entries.segments == ()
    assert decode_journey(entries.head) == journey


def test_a_journeys_touchpoints_are_written_as_one_json_array_of_every_type_would_be() -> None:
    # Their JSON is kept per touchpoint (a change encodes the unsealed ones again): the head
    # must hold the bytes pydantic writes for the whole list, of every touchpoint type.
    touchpoints = [parse_touchpoint(document) for document in VALID_EXAMPLES.values()]
    journey = _journey(touchpoints)
    expected = codec._TOUCHPOINTS.dump_json(journey.touchpoints)
    for _ in range(2):  # made, then looked up
        assert codec._TOUCHPOINT_JSON.many(journey.touchpoints) == expected
        assert decode_journey(journey_entries(journey).head) == journey


def test_the_touchpoint_json_kept_is_bounded_and_never_another_objects() -> None:
    kept = codec._ItemJson(kept=3)
    views = _views(0, 5)
    texts = [kept.of(view) for view in views]
    assert len(kept._json) == 3 and kept.of(views[-1]) is texts[-1]
    kept.of(views[2])  # used again: the least recently used, views[3], goes next
    kept.of(_views(9, 1)[0])
    assert kept.of(views[2]) is texts[2] and kept.of(views[3]) is not texts[3]
    twin = views[-1].model_copy()  # equal to one kept, but another object: made afresh
    assert kept.of(twin) == texts[-1] and kept.of(twin) is not texts[-1]


def test_an_append_rewrites_the_head_and_no_sealed_segment(long_journey: JourneyRecord) -> None:
    before = journey_entries(long_journey)
    after = core.apply_touchpoint(long_journey, _views(3_900, 1)[0], PB).record
    entries = journey_entries(after)
    known = {s.digest for s in before.segments}
    assert [s for s in entries.segments if s.digest not in known] == []
    assert decode_journey(entries.head, (_segments(before) | _segments(entries)).get) == after


def test_touchpoints_too_big_to_keep_together_are_sealed_apart() -> None:
    journey = _journey(_views(0, 450, noisy=True))  # about 2 MB, hardly compressible
    entries = journey_entries(journey)
    assert len(entries.segments) >= 5
    assert max(len(entries.head), *(len(s.entry()) for s in entries.segments)) <= (
        MAX_JOURNEY_BYTES
    )
    assert decode_journey(entries.head, _segments(entries).get) == journey


def test_a_head_over_the_cap_is_refused() -> None:
    pick = random.Random(7)
    noise = ["".join(pick.choices(string.ascii_letters, k=250)) for _ in range(8_000)]
    journey = _journey(_views(0, 3)).model_copy(update={"identifiers": noise})
    with pytest.raises(JourneyTooLarge, match="over the 1,000,000-byte cap"):
        journey_entries(journey)


def test_a_missing_segment_is_an_error(long_journey: JourneyRecord) -> None:
    with pytest.raises(ValueError, match=r"segment \w+ of the journey is missing"):
        decode_journey(journey_entries(long_journey).head, {}.get)


def test_the_store_writes_segments_and_deletes_those_no_longer_listed(
    long_journey: JourneyRecord,
) -> None:
    table: dict[bytes, bytes] = {}
    customer_id = long_journey.customer_id
    TableJourneyStore(table).put(customer_id, long_journey)
    first = {k for k in table if is_segment_key(k)}
    assert first and all(k.startswith(customer_id.encode()) for k in first)
    assert TableJourneyStore(table).get(customer_id) == long_journey  # read from the table

    longer = long_journey
    for touchpoint in _views(3_900, 600):  # compacts and seals more summaries
        longer = core.apply_touchpoint(longer, touchpoint, PB).record
    TableJourneyStore(table).put(customer_id, longer)
    listed = {segment_key(customer_id, s.digest) for s in journey_entries(longer).segments}
    assert {k for k in table if is_segment_key(k)} == listed
    assert TableJourneyStore(table).get(customer_id) == longer

    TableJourneyStore(table).put(customer_id, MovedJourney(moved_to="elsewhere", version=9))
    assert list(table) == [customer_id.encode()]  # a moved journey leaves only its pointer


def test_a_forgotten_long_journey_leaves_only_its_marker(long_journey: JourneyRecord) -> None:
    table: dict[bytes, bytes] = {}
    customer_id = long_journey.customer_id
    TableJourneyStore(table).put(customer_id, long_journey)
    marker = ForgottenJourney(version=long_journey.version + 1, request_id="forget-1")
    TableJourneyStore(table).put(customer_id, marker)
    assert table == {customer_id.encode(): journey_entries(marker).head}
