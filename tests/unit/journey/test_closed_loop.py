"""Closed loop by id: a hand-off accept or reject applies only to the hand-off it names."""

from __future__ import annotations

import random

from schemas.journey import Stage
from streams import journey as core

from .builders import FIT_FORM, apply_all, at, handoff_id, tp
from .test_signals import PB, handoffs

E = "dana@globex.example"


def to_mql(email: str = E, anon: str | None = None, days: float = 0) -> list[core.Touchpoint]:
    """MQL at the download (20 + 15 + 12 = 47 ≥ 40, fit 85)."""
    p = f"{email}-{days}"
    return [
        tp("marketing.form_submitted", f"{p}-1", at(days=days), email=email, anon=anon,
           props=FIT_FORM),
        tp("marketing.webinar_attended", f"{p}-2", at(days=days, hours=1), email=email),
        tp("marketing.content_downloaded", f"{p}-3", at(days=days, hours=2), email=email,
           props={"content_id": "guide"}),
    ]  # fmt: skip


def answer(kind: str, event_id: str, signal_id: str, hours: float = 5) -> core.Touchpoint:
    props = {"signal_id": signal_id}
    if kind == "rejected":
        props["reason"] = "no budget"
    return tp(f"sales.handoff_{kind}", event_id, at(hours=hours), email=E, props=props)


def test_an_accept_naming_the_hand_off_moves_the_lead_to_sal() -> None:
    record, signals = apply_all(
        [*to_mql(), answer("accepted", "a1", handoff_id(E))], PB, core.customer_id_for(f"email:{E}")
    )
    view = core.view(record, PB)
    assert view.stage == Stage.SAL and view.unmatched_responses == []
    # The id sales names is the one Tandem sent.
    assert handoffs(signals)[0].signal_id == handoff_id(E)


def test_an_accept_naming_an_unknown_id_is_recorded_and_moves_nothing() -> None:
    record, _ = apply_all([*to_mql(), answer("accepted", "a1", "sig_made_up")], PB)
    view = core.view(record, PB)
    assert view.stage == Stage.MQL
    [unmatched] = view.unmatched_responses
    assert (unmatched.event_id, unmatched.signal_id, unmatched.reason) == (
        "a1",
        "sig_made_up",
        "unknown",
    )
    assert core.snapshot(record, PB).unmatched_responses == [unmatched]


def test_an_accept_without_any_hand_off_does_not_jump_a_lead_to_sal() -> None:
    form = tp("marketing.form_submitted", "l1", at(), email=E, props={"form_id": "ebook"})
    record, _ = apply_all([form, answer("accepted", "a1", handoff_id(E))], PB)
    view = core.view(record, PB)
    assert view.stage == Stage.LEAD and [u.reason for u in view.unmatched_responses] == ["unknown"]


def test_an_answer_to_an_earlier_cycles_hand_off_is_stale() -> None:
    rejected = answer("rejected", "r1", handoff_id(E, 0))
    requalified = to_mql(days=90)  # cycle 1: a new hand-off
    stale = tp("sales.handoff_accepted", "a2", at(days=90, hours=5), email=E,
               props={"signal_id": handoff_id(E, 0)})  # fmt: skip
    record, _ = apply_all([*to_mql(), rejected, *requalified, stale], PB)
    view = core.view(record, PB)
    assert (view.stage, view.cycle) == (Stage.MQL, 1)
    assert [(u.event_id, u.reason) for u in view.unmatched_responses] == [("a2", "stale")]
    current = tp("sales.handoff_accepted", "a3", at(days=90, hours=6), email=E,
                 props={"signal_id": handoff_id(E, 1)})  # fmt: skip
    record = core.apply_touchpoint(record, current, PB).record
    assert core.view(record, PB).stage == Stage.SAL


def test_a_hand_off_named_under_a_former_customer_id_still_counts() -> None:
    # Sent while the person was known by a cookie only; the email joined later (a merge).
    anon = "cookie-9"
    before = [
        tp("marketing.form_submitted", "f1", at(), anon=anon, props=FIT_FORM),
        *to_mql()[1:],
    ]
    cookie_handoff = core.signal_id(core.customer_id_for(f"anon:{anon}"), "handoff", "0")
    link = tp("marketing.page_viewed", "k1", at(hours=3), email=E, anon=anon, props={"url": "/"})
    accepted = answer("accepted", "a1", cookie_handoff)
    record, _ = apply_all([*before, link, accepted], PB)
    assert core.view(record, PB).stage == Stage.SAL


def test_the_answer_arriving_before_the_hand_off_ends_the_same() -> None:
    events = [*to_mql(), answer("accepted", "a1", handoff_id(E)), answer("rejected", "r1", "x", 6)]
    expected = core.view(apply_all(events, PB)[0], PB)
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    got = core.view(apply_all([shuffled[-1], *shuffled[:-1]], PB)[0], PB)
    assert got == expected and expected.stage == Stage.SAL
    assert [(u.event_id, u.reason) for u in expected.unmatched_responses] == [("r1", "unknown")]


def test_unmatched_answers_survive_compaction() -> None:
    events = [answer("accepted", "a0", "sig_nope", hours=-1), *to_mql()]
    events += [tp("marketing.page_viewed", f"p{k}", at(days=1, hours=k), email=E,
                  props={"url": "/"}) for k in range(6)]  # fmt: skip
    record, _ = apply_all(events, PB, max_retained=3)
    assert record.compacted is not None
    assert [u.event_id for u in core.view(record, PB).unmatched_responses] == ["a0"]
