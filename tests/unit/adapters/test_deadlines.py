"""A stored deadline compared as bytes is due exactly when its time is; a due journey has
one tick in flight at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from streams.adapters.deadlines import TicksInFlight, encode_due, is_due

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


A, B = b"customer-a", b"customer-b"
DUE, LATER = b"2025-03-01T10:00:00.000000+00:00", b"2025-03-02T10:00:00.000000+00:00"


def test_a_due_journey_is_ticked_once_until_its_tick_is_handled() -> None:
    ticks = TicksInFlight(resend_after_s=60)
    assert ticks.to_tick([(A, DUE), (B, DUE)], at=0.0) == [A, B]
    assert ticks.to_tick([(A, DUE), (B, DUE)], at=5.0) == []  # both still in flight
    ticks.settle(A)  # handled, and A's deadline did not move: due again
    assert ticks.to_tick([(A, DUE), (B, DUE)], at=10.0) == [A]


def test_a_moved_deadline_is_ticked_at_once() -> None:
    ticks = TicksInFlight(resend_after_s=60)
    ticks.to_tick([(A, DUE)], at=0.0)
    assert ticks.to_tick([(A, LATER)], at=5.0) == [A]


def test_an_unhandled_tick_is_sent_again_after_the_resend_interval() -> None:
    # e.g. its partition moved to another worker, which handled it there
    ticks = TicksInFlight(resend_after_s=60)
    ticks.to_tick([(A, DUE)], at=0.0)
    assert ticks.to_tick([(A, DUE)], at=59.0) == []
    assert ticks.to_tick([(A, DUE)], at=60.0) == [A]


def test_journeys_no_longer_due_are_forgotten() -> None:
    ticks = TicksInFlight(resend_after_s=60)
    ticks.to_tick([(A, DUE), (B, DUE)], at=0.0)
    assert ticks.to_tick([(B, DUE)], at=5.0) == []
    assert len(ticks) == 1
    assert ticks.to_tick([(A, DUE)], at=6.0) == [A]  # due again later: a new tick
