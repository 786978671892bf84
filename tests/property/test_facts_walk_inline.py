"""A walk made afresh steps the usual touchpoints inline: the same walk as `_step` by `_step`.

`FactsWalk.walk_all` (what the first need of a journey's facts does over every compacted and
retained touchpoint) must leave exactly the walk that `_step` of each touchpoint in turn
leaves, for any mix of kinds, amounts, channels and campaigns (none, empty, repeated).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.journey import CompactedTouchpoint
from schemas.kpis import NpsResponse
from streams.journey.kpis.walk import FactsWalk, Said, Stepped, _micros

KINDS = (
    "marketing.page_viewed", "marketing.form_viewed", "marketing.form_submitted",
    "marketing.spend_recorded", "sales.cost_recorded", "sales.deal_won", "sales.deal_lost",
    "sales.renewed", "sales.meeting_held", "product.signed_up",
)  # fmt: skip
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def summary(
    kind: str, minute: int, channel: str | None, campaign: str | None, amount: Decimal | None
) -> CompactedTouchpoint:
    return CompactedTouchpoint(
        event_id=f"e{minute}",
        type=kind,
        occurred_at=T0 + timedelta(minutes=minute),
        channel=channel,
        campaign_id=campaign,
        amount=amount,
        currency="EUR" if amount is not None and minute % 2 else None,
    )


summaries = st.builds(
    summary,
    st.sampled_from(KINDS),
    st.integers(0, 10_000),
    st.sampled_from((None, "", "email", "social")),
    st.sampled_from((None, "", "c1", "c2")),
    st.sampled_from((None, Decimal("10.50"), Decimal(3))),
)


def stepped(s: CompactedTouchpoint, says: bool) -> Stepped:
    at = _micros(s.occurred_at)
    key = (s.occurred_at, s.event_id)
    said = Said(key, s.event_id, at, (("pain_point", "x"),), NpsResponse(at=at, score=9))
    return key, s, at, said if says else None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(summaries, st.booleans()), max_size=40))
def test_stepping_inline_is_stepping_one_by_one(
    items: list[tuple[CompactedTouchpoint, bool]],
) -> None:
    steps = sorted((stepped(s, says) for s, says in items), key=lambda x: x[0])
    inline, one_by_one = FactsWalk(), FactsWalk()
    inline.walk_all(steps)
    for each in steps:
        one_by_one._step(*each)
    assert inline == one_by_one  # tapes (wins with their paths), paths, firsts, count, last key
    assert inline.channels.counts == one_by_one.channels.counts
