"""A stored deadline compared as bytes is due exactly when its time is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from streams.adapters.deadlines import encode_due, is_due

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])


@given(moments, moments)
def test_a_deadline_written_now_is_due_exactly_when_its_time_has_come(
    due: datetime, now: datetime
) -> None:
    assert is_due(encode_due(due), encode_due(now), now) == (due <= now)


@given(moments, moments, st.booleans(), offsets)
def test_a_deadline_an_older_worker_wrote_reads_the_same(
    due: datetime, now: datetime, whole_seconds: bool, offset: timezone
) -> None:
    if whole_seconds:
        due = due.replace(microsecond=0)
    older = due.astimezone(offset).isoformat().encode()  # what `due.isoformat()` wrote

    assert is_due(older, encode_due(now), now) == (due <= now)


def test_the_encoding_is_fixed_width_utc() -> None:
    plus_two = timezone(timedelta(hours=2))

    assert encode_due(datetime(2026, 12, 1, 14, 0, tzinfo=plus_two)) == (
        b"2026-12-01T12:00:00.000000+00:00"
    )
