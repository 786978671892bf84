"""Churn risk from falling engagement: one test per edge of the rule (streams.journey.churn).

Window 30 days, at least 5 engagement touchpoints in the earlier window, a fall when the later
one holds at most a quarter of them (the bundled playbook's `engagement_fall`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.signals import NurtureSignal, NurtureWithdrawnSignal
from streams import journey as core
from streams.journey import churn
from streams.journey.record import derive, engagement_times
from tests.unit.journey.builders import at, tp

PB = core.default_playbook()
E = "cara@customer.example"
CID = core.customer_id_for(f"email:{E}")


def customer() -> list[core.Touchpoint]:
    """A lead (day −1) who buys on day 0."""
    return [
        tp("marketing.form_submitted", "f0", at(days=-1), email=E, props={"form_id": "ebook"}),
        tp("sales.deal_won", "w0", at(days=0), email=E,
           props={"amount": "1000", "currency": "EUR"}),
    ]  # fmt: skip


def views(*days: float, prefix: str = "v") -> list[core.Touchpoint]:
    return [tp("marketing.page_viewed", f"{prefix}{d}", at(days=d), email=E,
               props={"url": "/docs"}) for d in days]  # fmt: skip


def apply(
    touchpoints: list[core.Touchpoint],
    record: core.JourneyRecord | None = None,
    playbook: core.Playbook = PB,
) -> tuple[core.JourneyRecord, list[core.Signal]]:
    record = record or core.new_journey(CID)
    emitted: list[core.Signal] = []
    for touchpoint in touchpoints:
        outcome = core.apply_touchpoint(record, touchpoint, playbook)
        record, emitted = outcome.record, emitted + outcome.signals
    return record, emitted


def tick(
    record: core.JourneyRecord, when: datetime
) -> tuple[core.JourneyRecord, list[core.Signal]]:
    outcome = core.evaluate_timers(record, when, PB)
    return outcome.record, outcome.signals


def risks(signals: list[core.Signal]) -> list[core.Signal]:
    return [s for s in signals if getattr(s, "rule", None) == churn.RULE]


def fall(record: core.JourneyRecord, when: datetime) -> churn.Fall | None:
    state = derive(record, PB)
    found = churn.fall_at(state, engagement_times(record, state, PB), PB, when)
    return None if found is None else found[0]


def test_a_fall_is_due_when_the_counts_say_so_and_a_tick_sends_it_once() -> None:
    # Days 1–6 engaged; at day 35 the earlier window (−25, 5] holds 5, the later (5, 35] 1.
    record, signals = apply([*customer(), *views(1, 2, 3, 4, 5, 6)])
    assert risks(signals) == []
    assert core.next_timer_due(record, PB) == at(days=35)
    record, early = tick(record, at(days=34, hours=23))
    assert risks(early) == []
    record, sent = tick(record, at(days=35))
    [risk] = risks(sent)
    assert isinstance(risk, NurtureSignal) and risk.track == "churn_risk"
    assert risk.reason == "churn risk: engagement fell from 5 to 1 touchpoints in 30 days"
    assert risk.occurred_at == at(days=35) and risk.channel == "sales" and risk.version == 1
    assert "value-review-template" in [c.id for c in risk.recommended_content]
    _, again = tick(record, at(days=36))
    assert risks(again) == []
    # At risk, silence changes nothing: the next deadline is another timer's (upsell, day 90).
    assert core.next_timer_due(record, PB) == at(days=90)


def burst() -> list[core.Touchpoint]:
    """Eight views on day 1, two hours apart (the last at day 1, 14:00 after T0)."""
    return [tp("marketing.page_viewed", f"b{i}", at(days=1, hours=2 * i), email=E,
               props={"url": "/docs"}) for i in range(8)]  # fmt: skip


def test_at_most_max_share_is_a_fall_and_more_is_not() -> None:
    # 30 days after the burst's last view: the earlier window holds all 8, the later one the
    # views of day 20. Two is a quarter of 8: a fall; three is more.
    edge = at(days=31, hours=14)
    two, _ = apply([*customer(), *burst(), *views(20, 21)])
    assert fall(two, edge) == churn.Fall(edge, 8, 2)
    assert fall(two, edge - timedelta(minutes=1)) is None
    three, _ = apply([*customer(), *burst(), *views(20, 21, 22)])
    assert fall(three, edge) is None


def test_fewer_than_min_touchpoints_before_is_never_a_fall() -> None:
    record, _ = apply([*customer(), *views(1, 2, 3, 4)])
    assert all(fall(record, at(days=d)) is None for d in range(0, 120))
    assert core.next_timer_due(record, PB) == at(days=90)  # only the upsell timer


def test_recovery_withdraws_the_risk_and_one_touchpoint_is_not_recovery() -> None:
    record, _ = apply([*customer(), *views(1, 2, 3, 4, 5, 6)])
    record, _ = tick(record, at(days=35))
    record, one = apply(views(40, prefix="r"), record)
    assert one == [] and fall(record, at(days=40)) is not None  # 1 is not above 5 × 0.25
    record, two = apply(views(41, prefix="s"), record)
    [withdrawn] = two
    assert isinstance(withdrawn, NurtureWithdrawnSignal) and withdrawn.rule == churn.RULE
    assert withdrawn.version == 2 and withdrawn.occurred_at == at(days=41)
    assert withdrawn.reason.startswith("churn risk withdrawn: engagement recovered")
    entry = next(e for e in record.signal_ledger.values() if churn.KEY_MARK in e.key)
    assert entry.status == "withdrawn"


def test_silence_never_recovers() -> None:
    record, _ = apply([*customer(), *views(1, 2, 3, 4, 5, 6)])
    record, _ = tick(record, at(days=35))
    record, later = tick(record, at(days=400))
    assert risks(later) == []
    entry = next(e for e in record.signal_ledger.values() if churn.KEY_MARK in e.key)
    assert entry.status == "active"


def test_a_late_touchpoint_that_keeps_the_fall_sends_nothing() -> None:
    record, _ = apply([*customer(), *views(1, 2, 3, 4, 5, 6)])
    record, _ = tick(record, at(days=35))
    # Late: day 3.5, in the earlier window. Judged at the latest touchpoint (day 6) there is no
    # fall yet: the withdrawal is held by the settle window, not sent …
    record, late = apply(views(3.5, prefix="late"), record)
    assert late == []
    entry = next(e for e in record.signal_ledger.values() if churn.KEY_MARK in e.key)
    assert (entry.status, entry.owed) == ("withdrawn", True)
    # … and the next timer (the fall's onset, day 35, before the window closes at 35 d 30 min)
    # judges it again at its now: still a fall (6 → 1), as sent, so nothing goes out.
    owed = core.next_timer_due(record, PB)
    assert owed == at(days=35)
    record, closed = tick(record, owed)
    assert risks(closed) == []
    entry = next(e for e in record.signal_ledger.values() if churn.KEY_MARK in e.key)
    assert (entry.status, entry.version, entry.owed) == ("active", 1, False)
    assert core.next_timer_due(record, PB) == at(days=90)


def test_only_customers_fall_and_churning_withdraws_it() -> None:
    lead, _ = apply([views(0, prefix="l")[0], *views(1, 2, 3, 4, 5, 6)])
    assert all(fall(lead, at(days=d)) is None for d in range(0, 90))
    record, _ = apply([*customer(), *views(1, 2, 3, 4, 5, 6)])
    record, _ = tick(record, at(days=35))
    churned = tp("sales.churned", "c1", at(days=50), email=E, props={"reason": "price"})
    record, signals = apply([churned], record)
    assert [s.signal_type for s in risks(signals)] == ["nurture_withdrawn"]


def test_without_the_rule_nothing_falls() -> None:
    customer_nurture = PB.nurture.customer.model_copy(update={"engagement_fall": None})
    off = PB.model_copy(
        update={"nurture": PB.nurture.model_copy(update={"customer": customer_nurture})}
    )
    record, _ = apply([*customer(), *views(1, 2, 3, 4, 5, 6)], playbook=off)
    assert core.next_timer_due(record, off) == at(days=90)
    assert risks(core.evaluate_timers(record, at(days=60), off).signals) == []


def test_replay_as_of_fires_the_fall_like_the_worker() -> None:
    from streams import workflow

    result = workflow.replay([*customer(), *views(1, 2, 3, 4, 5, 6)], PB, now=at(days=40))
    [risk] = risks(result.signals)
    assert risk.occurred_at == at(days=35) and risk.version == 1


def test_compaction_never_changes_a_fall() -> None:
    """Compacted touchpoints keep their type and time: they still count."""
    touchpoints = [*customer(), *views(1, 2, 3, 4, 5, 6)]
    capped = core.new_journey(CID)
    for touchpoint in touchpoints:
        capped = core.apply_touchpoint(capped, touchpoint, PB, max_retained=3).record
    assert capped.compacted is not None and len(capped.touchpoints) < len(touchpoints)
    assert core.next_timer_due(capped, PB) == at(days=35)
    [risk] = risks(core.evaluate_timers(capped, at(days=35), PB).signals)
    assert risk.reason == "churn risk: engagement fell from 5 to 1 touchpoints in 30 days"
