"""Accounts: membership from touchpoints, and the account view from its people's journeys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.vocabulary import Touchpoint, parse_touchpoint
from schemas.journey import JourneySnapshot, Stage
from schemas.kpis import NONE_GROUP
from schemas.playbook import Playbook
from schemas.signals import SIGNAL
from streams import journey as core
from streams.journey import kpis
from streams.journey.account import account_of, account_stage, account_view
from tests.unit.journey.builders import FIT_FORM, apply_all, at


def touch(
    type_: str,
    event_id: str,
    when: datetime,
    email: str,
    account: str | None = None,
    props: dict[str, Any] | None = None,
) -> Touchpoint:
    identity: dict[str, str] = {"email": email}
    if account is not None:
        identity["account_id"] = account
    return parse_touchpoint(
        {"event_id": event_id, "type": type_, "occurred_at": when.isoformat(), "source": "test",
         "identity": identity, "properties": props or {}}
    )  # fmt: skip


def fallback(on: bool) -> Playbook:
    pb = core.default_playbook()
    return pb.model_copy(
        update={"accounts": pb.accounts.model_copy(update={"domain_fallback": on})}
    )


def person(email: str, account: str | None, engaged: bool, day: float = 0) -> JourneySnapshot:
    """A person's snapshot: engaged = a fit form and a webinar (score ≥ 40), else a page view."""
    tps = [touch("marketing.page_viewed", f"{email}-p", at(day), email, account, {"url": "/"})]
    if engaged:
        tps += [
            touch("marketing.form_submitted", f"{email}-f", at(day, 1), email, account, FIT_FORM),
            touch("marketing.webinar_attended", f"{email}-w", at(day, 2), email, account,
                  {"webinar_id": "w1"}),
            touch("marketing.content_downloaded", f"{email}-c", at(day, 3), email, account,
                  {"content_id": "guide"}),
        ]  # fmt: skip
    record, _ = apply_all(tps, core.default_playbook(), core.customer_id_for(f"email:{email}"))
    return core.snapshot(record, core.default_playbook())


def test_account_is_the_latest_named_by_event_time() -> None:
    tps = [
        touch("marketing.page_viewed", "b", at(2), "ada@x.example", "acct-new", {"url": "/"}),
        touch("marketing.page_viewed", "a", at(1), "ada@x.example", "acct-old", {"url": "/"}),
        touch("marketing.page_viewed", "c", at(3), "ada@x.example", None, {"url": "/"}),
    ]
    record, _ = apply_all(tps, core.default_playbook())
    assert account_of(record, core.default_playbook()) == "acct-new"
    assert core.snapshot(record, core.default_playbook()).account_id == "acct-new"


def test_equal_times_tie_break_on_event_id() -> None:
    tps = [
        touch("marketing.page_viewed", "z", at(1), "ada@x.example", "acct-z", {"url": "/"}),
        touch("marketing.page_viewed", "a", at(1), "ada@x.example", "acct-a", {"url": "/"}),
    ]
    for order in (tps, tps[::-1]):
        record, _ = apply_all(order, core.default_playbook())
        assert account_of(record, core.default_playbook()) == "acct-z"


def test_account_survives_compaction() -> None:
    tps = [touch("marketing.page_viewed", f"e{i:02}", at(i), "ada@acme.example",
                 "acct-acme" if i == 0 else None, {"url": "/"}) for i in range(12)]  # fmt: skip
    record, _ = apply_all(tps, core.default_playbook(), max_retained=4)
    assert record.compacted is not None
    assert all(t.identity and t.identity.account_id is None for t in record.touchpoints)
    assert account_of(record, core.default_playbook()) == "acct-acme"


def test_domain_fallback_is_a_playbook_setting_and_skips_free_mail() -> None:
    company = [touch("marketing.page_viewed", "a", at(0), "ada@acme.example", None, {"url": "/"})]
    free = [touch("marketing.page_viewed", "b", at(0), "bob@gmail.com", None, {"url": "/"})]
    shared = [touch("marketing.page_viewed", "c", at(0), "info@acme.example", None, {"url": "/"})]
    off, on = fallback(False), fallback(True)
    assert account_of(apply_all(company, off)[0], off) is None
    assert account_of(apply_all(company, on)[0], on) == "domain:acme.example"
    assert account_of(apply_all(free, on)[0], on) is None
    assert account_of(apply_all(shared, on)[0], on) is None  # blocklisted shared mailbox
    named = [*company, touch("marketing.page_viewed", "d", at(1), "ada@acme.example", "acct-1",
                             {"url": "/"})]  # fmt: skip
    assert account_of(apply_all(named, on)[0], on) == "acct-1"  # the account id wins


def test_account_stage_is_the_furthest_member_stage() -> None:
    assert account_stage([Stage.LEAD, Stage.SQL, Stage.VISITOR]) == Stage.SQL
    assert account_stage([Stage.DISQUALIFIED, Stage.LEAD]) == Stage.LEAD
    assert account_stage([Stage.DISQUALIFIED, Stage.CHURNED]) == Stage.CHURNED
    assert account_stage([]) == Stage.VISITOR


def test_account_handoff_fires_with_enough_engaged_people() -> None:
    pb = core.default_playbook()
    two = [person(f"p{i}@acme.example", "acct-acme", True) for i in range(2)]
    cold = person("cold@acme.example", "acct-acme", False)
    view = account_view("acct-acme", [*two, cold], pb)
    assert view.people == 3 and view.engagement.engaged_people == 2
    assert view.handoff is not None and not view.handoff.ready
    third = person("p2@acme.example", "acct-acme", True)
    view = account_view("acct-acme", [*two, cold, third], pb)
    assert view.handoff is not None and view.handoff.ready
    assert view.handoff.signal_id == core.account_signal_id("acct-acme")
    assert sorted(view.handoff.engaged) == sorted(m.customer_id for m in [*two, third])
    assert view.stage == max((m.stage for m in view.buying_group), key=list(Stage).index)
    assert view.engagement.max == max(m.engagement for m in view.buying_group)
    assert all(m.persona == "marketing-leader" for m in view.buying_group if m.engaged)


def test_people_long_inactive_do_not_count() -> None:
    pb = core.default_playbook()
    old = [person(f"old{i}@acme.example", "acct-acme", True, day=0) for i in range(2)]
    new = person("new@acme.example", "acct-acme", True, day=60)
    view = account_view("acct-acme", [*old, new], pb)
    assert view.handoff is not None and view.handoff.engaged == [new.customer_id]
    assert all(m.engagement < 40 for m in view.buying_group if m.customer_id != new.customer_id)


_PEOPLE = [person(f"q{i}@acme.example", "acct-acme", i % 3 != 0, day=i * 5) for i in range(6)]


@settings(max_examples=50, deadline=None)
@given(st.permutations(_PEOPLE), st.integers(0, 5))
def test_account_view_does_not_depend_on_member_order(
    members: list[JourneySnapshot], repeat: int
) -> None:
    pb = core.default_playbook()
    expected = account_view("acct-acme", _PEOPLE, pb)
    # Order and repeated reads of the same member change nothing.
    assert account_view("acct-acme", [*members, *members[:repeat]], pb) == expected


def test_kpis_by_account_from_the_aggregates_and_recomputed() -> None:
    pb = core.default_playbook()
    people = [("a1@acme.example", "acct-acme"), ("a2@acme.example", "acct-acme"),
              ("g1@globex.example", "acct-globex"), ("x@nowhere.example", None)]  # fmt: skip
    store = kpis.MemoryKpiStore()
    facts = []
    for email, account in people:
        tps = [touch("marketing.form_submitted", f"{email}-f", at(0, 1), email, account, FIT_FORM)]
        one = kpis.journey_facts(apply_all(tps, pb, f"cus_{email}")[0], pb)
        assert one.account == account
        facts.append(one)
        store.write(one.customer_id, 1, one)
    now = at(90)
    recomputed = kpis.compute_kpis(facts, now=now, by="account")
    aggregated = store.report(now=now, by="account")
    assert recomputed.groups is not None and aggregated.groups is not None
    assert set(recomputed.groups) == {"acct-acme", "acct-globex", NONE_GROUP}
    assert recomputed.groups["acct-acme"].leads == 2
    assert recomputed.groups["acct-globex"].leads == 1
    assert {k: g.leads for k, g in aggregated.groups.items()} == {
        k: g.leads for k, g in recomputed.groups.items()
    }


def test_the_account_handoff_signal_is_built_only_when_the_rule_holds() -> None:
    pb = core.default_playbook()
    three = [person(f"s{i}@acme.example", "acct-acme", True) for i in range(3)]
    assert core.account_handoff_signal(account_view("acct-acme", three[:2], pb)) is None
    signal = core.account_handoff_signal(account_view("acct-acme", three, pb))
    assert signal is not None and signal.topic == "signals.handoff"
    assert signal.signal_id == core.account_signal_id("acct-acme") and signal.version == 1
    assert signal.customer_id == "account:acct-acme" and signal.engaged_people == 3
    assert signal.occurred_at == max(m.last_touch_at for m in three if m.last_touch_at)
    assert SIGNAL.validate_json(signal.model_dump_json()) == signal


def test_tandem_subscribe_shows_the_account_handoff() -> None:
    from rich.console import Console

    from streams.cli.subscribe import render_signal
    from streams.delivery.subscriber import Received, Status, decode_signal

    pb = core.default_playbook()
    three = [person(f"r{i}@acme.example", "acct-acme", True) for i in range(3)]
    signal = core.account_handoff_signal(account_view("acct-acme", three, pb))
    assert signal is not None
    assert decode_signal(signal.model_dump_json().encode()) == signal
    console = Console(record=True, width=200, color_system=None)
    console.print(render_signal(Received(signal, Status.NEW, "signals.handoff", 0, 1)))
    text = console.export_text()
    assert "account hand-off · acct-acme" in text and "r0@acme.example" in text


def latest_named_walk(record: core.JourneyRecord) -> str | None:
    """The account by definition: the latest touchpoint naming one, compacted or retained."""
    named = [(tp.order_key, tp.identity.account_id) for tp in record.touchpoints
             if tp.identity is not None and tp.identity.account_id is not None]  # fmt: skip
    if record.compacted is not None:
        named += [((s.occurred_at, s.event_id), s.account_id)
                  for s in record.compacted.touchpoints if s.account_id is not None]  # fmt: skip
    return max(named)[1] if named else None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([None, None, "acct-a", "acct-b"])),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([2, 3, 8, core.MAX_RETAINED_TOUCHPOINTS]),
)
def test_the_account_kept_with_the_journey_is_the_walk_over_every_touchpoint(
    picks: list[tuple[int, str | None]], cap: int
) -> None:
    """In any arrival order, through compactions (late touchpoints behind the horizon too),
    the account the snapshot and the KPI facts name is the latest naming one by event time."""
    pb = core.default_playbook()
    record = core.new_journey("cus_test")
    for n, (minute, account) in enumerate(picks):
        tp = touch("marketing.page_viewed", f"e{n:02}", at(0, minute), "ada@x.example", account,
                   {"url": "/"})  # fmt: skip
        record = core.apply_touchpoint(record, tp, pb, max_retained=cap).record
        assert account_of(record, pb) == latest_named_walk(record)
        bare, written = core.snapshot_json(record, pb)
        snapshot = core.snapshot(record, pb)
        assert written == snapshot.model_dump_json()
        assert bare == snapshot.model_copy(update={"scores": bare.scores})


def test_the_account_kept_across_compactions_is_that_of_a_fresh_scan() -> None:
    # A compaction hands the prefix's latest named account on from the prefix before it and
    # the summaries it appended (no scan of the whole prefix): after every change, in order
    # and with late touchpoints, it is what a journey seen for the first time finds.
    pb = core.default_playbook()
    names = {3: "acct-a", 9: "acct-b", 10: None, 17: "acct-c", 30: "acct-d"}
    tps = [touch("marketing.page_viewed", f"e{i:02}", at(i), "ada@acme.example",
                 names.get(i), {"url": "/"}) for i in range(40)]  # fmt: skip
    for order in (tps, [*tps[:20], *tps[25:], *tps[20:25]]):
        record = core.new_journey("cus_acct")
        for event in order:
            record = core.apply_touchpoint(record, event, pb, max_retained=4).record
            fresh = record.model_copy(deep=True)  # other objects: not kept, found afresh
            assert account_of(record, pb) == account_of(fresh, pb)
        assert record.compacted is not None and len(record.compacted.touchpoints) >= 32
