"""KPI facts built from what earlier facts of the journey derived equal facts built afresh.

The worker asks for a journey's facts after every change. What a walk step derives of one
touchpoint alone is kept per touchpoint with the journey's walk (`FactsWalk.known`), also when
a late touchpoint voids the walk; stage entries are built once per distinct entry; the facts
model is built without `model_construct`'s field walk. None of it may change a fact.
"""

from __future__ import annotations

import pytest

from schemas.kpis import JourneyFacts
from streams import journey as core
from streams.journey import kpis, memo
from streams.journey.kpis.facts import _trusted
from streams.journey.kpis.walk import FactsWalk

from .builders import at, tp
from .test_kpis import won_journey

PB = core.default_playbook()


def fresh_facts(record: core.JourneyRecord) -> JourneyFacts:
    """The facts of a record with nothing kept (every state folded, the walk made afresh)."""
    memo.forget()
    return kpis.journey_facts(record, PB)


def test_late_touchpoints_reuse_known_steps_and_give_the_facts_of_a_fresh_walk() -> None:
    memo.forget()
    record = core.new_journey("cus_late")
    events = list(reversed(won_journey()))  # every touchpoint after the first one is late
    seen: dict[int, object] = {}
    made: list[tuple[core.JourneyRecord, JourneyFacts]] = []
    for event in events:
        record = core.apply_touchpoint(record, event, PB).record
        made.append((record, kpis.journey_facts(record, PB)))
        walk = memo.lookup(record, PB).walk
        assert isinstance(walk, FactsWalk) and not walk.stale
        for key, step in walk.known.items():
            assert seen.setdefault(key, step) is step  # derived once, then reused
    assert set(seen) == {id(t) for t in record.touchpoints}
    for each, facts in made:
        assert facts == fresh_facts(each)
        assert facts.model_dump_json() == fresh_facts(each).model_dump_json()


def test_the_known_steps_stay_bounded_by_the_retained_touchpoints() -> None:
    memo.forget()
    record = core.new_journey("cus_long")
    facts = kpis.journey_facts(record, PB)
    for n in range(300):
        event = tp("marketing.page_viewed", f"p{n}", at(minutes=n), email="a@b.example",
                   props={"url": "u"}, channel="email")  # fmt: skip
        record = core.apply_touchpoint(record, event, PB, max_retained=8).record
        facts = kpis.journey_facts(record, PB)
        walk = memo.lookup(record, PB).walk
        assert isinstance(walk, FactsWalk)
        assert len(walk.known) <= 2 * len(record.touchpoints) + 64 + 1
    assert facts == fresh_facts(record)
    assert len(facts.marketing_touches) == 300


def test_trusted_facts_are_those_model_construct_makes() -> None:
    memo.forget()
    record = core.fold("cus_won", won_journey(), PB)
    facts = kpis.journey_facts(record, PB)
    values = {name: getattr(facts, name) for name in JourneyFacts.model_fields}
    built = JourneyFacts.model_construct(**values)
    trusted = _trusted(**values)
    assert trusted == built
    assert trusted.model_fields_set == built.model_fields_set
    assert list(trusted.__dict__) == list(built.__dict__)
    assert trusted.model_dump_json(exclude_defaults=True) == built.model_dump_json(
        exclude_defaults=True
    )
    assert JourneyFacts.model_validate_json(trusted.model_dump_json()) == trusted
    partial = _trusted(customer_id="cus_x")  # not every field: model_construct's defaults
    assert partial == JourneyFacts.model_construct(customer_id="cus_x")


def test_an_absorb_hands_the_steps_on_and_gives_the_facts_of_a_fresh_walk() -> None:
    memo.forget()
    ours, theirs = core.new_journey("cus_ours"), core.new_journey("cus_theirs")
    events = won_journey()
    for event in events[:6]:
        ours = core.apply_touchpoint(ours, event, PB).record
        kpis.journey_facts(ours, PB)
    for event in events[6:]:
        theirs = core.apply_touchpoint(theirs, event, PB).record
        kpis.journey_facts(theirs, PB)
    steps: dict[int, object] = {}
    for record in (ours, theirs):
        walk = memo.lookup(record, PB).walk
        assert isinstance(walk, FactsWalk)
        steps.update(walk.known)
    merged = core.absorb(ours, theirs, PB, "link", at(days=20)).record
    facts = kpis.journey_facts(merged, PB)
    walk = memo.lookup(merged, PB).walk
    assert isinstance(walk, FactsWalk)
    assert set(walk.known) == {id(t) for t in merged.touchpoints}
    assert all(steps[key] is step for key, step in walk.known.items())  # none derived again
    assert facts == fresh_facts(merged)
    assert facts.model_dump_json() == fresh_facts(merged).model_dump_json()


def test_the_facts_json_is_the_facts_models_json_however_the_journey_grew() -> None:
    # The lists of times are spliced in from JSON kept with the walk's tapes: the text must be
    # pydantic's, in order and late, on a forked walk, and after the tapes were written longer.
    memo.forget()
    events = won_journey() + [
        tp(
            "marketing.page_viewed",
            f"v{n}",
            at(days=40, minutes=n),
            email="ada@lovelace.example",
            props={"url": "u"},
            channel="email",
        )
        for n in range(150)
    ]
    for order in (events, list(reversed(events))):
        memo.forget()
        record = core.new_journey("cus_json")
        empty = kpis.journey_facts(record, PB).model_dump_json(exclude_defaults=True)
        assert kpis.journey_facts_json(record, PB) == empty
        records = []
        for event in order:
            record = core.apply_touchpoint(record, event, PB, max_retained=16).record
            records.append(record)
            expected = kpis.journey_facts(record, PB).model_dump_json(exclude_defaults=True)
            assert kpis.journey_facts_json(record, PB) == expected
        for earlier in (records[len(records) // 2], records[5]):  # shorter prefixes, then a fork
            expected = kpis.journey_facts(earlier, PB).model_dump_json(exclude_defaults=True)
            assert kpis.journey_facts_json(earlier, PB) == expected
            forked = core.apply_touchpoint(earlier, events[-1], PB).record
            expected = kpis.journey_facts(forked, PB).model_dump_json(exclude_defaults=True)
            assert kpis.journey_facts_json(forked, PB) == expected
        assert '"marketing_touches":[' in kpis.journey_facts_json(record, PB)


def test_the_facts_json_escapes_names_like_pydantic_and_follows_a_version_only_change() -> None:
    # Written directly, not by pydantic: a name that needs escaping (channels can't, customer
    # ids can) goes through pydantic's own string writer; a change that leaves the touchpoints
    # alone reuses the kept text.
    memo.forget()
    record = core.new_journey('cus_"ü\\1')
    for n, channel in enumerate(("email", "paid_search", "email")):
        event = tp("marketing.page_viewed", f"e{n}", at(minutes=n), email="a@b.example",
                   props={"url": "u"}, channel=channel)  # fmt: skip
        record = core.apply_touchpoint(record, event, PB).record
        expected = kpis.journey_facts(record, PB).model_dump_json(exclude_defaults=True)
        assert kpis.journey_facts_json(record, PB) == expected
    for version in (record.version + 3, 0):
        later = record.model_copy(update={"version": version})
        expected = kpis.journey_facts(later, PB).model_dump_json(exclude_defaults=True)
        assert kpis.journey_facts_json(later, PB) == expected
    assert memo.lookup(later, PB).facts is not None


def test_a_late_touchpoint_in_a_long_journey_walks_on_from_the_compacted_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A late touchpoint voids the walk; the walk made afresh goes on from the walk of the
    # compacted prefix (made once per prefix, handed on by in-order compactions) through the
    # retained touchpoints only, and gives the facts of a walk from scratch.
    memo.forget()
    record = core.new_journey("cus_long_late")
    events = won_journey() + [
        tp("marketing.page_viewed", f"v{n}", at(days=40, minutes=2 * n),
           email="ada@lovelace.example", props={"url": "u"}, channel="email")
        for n in range(120)
    ]  # fmt: skip
    for event in events:
        record = core.apply_touchpoint(record, event, PB, max_retained=16).record
        kpis.journey_facts(record, PB)
    assert record.compacted is not None
    first_late = tp("marketing.page_viewed", "late0", at(days=40, minutes=2 * 115 + 1),
                    email="ada@lovelace.example", props={"url": "u"}, channel="social")  # fmt: skip
    record = core.apply_touchpoint(record, first_late, PB, max_retained=16).record
    facts = kpis.journey_facts(record, PB)
    prefix_walk = memo.lookup(record, PB).prefix_walk
    assert isinstance(prefix_walk, FactsWalk)
    assert prefix_walk.count == len(record.compacted.touchpoints)
    assert facts == fresh_facts(record)
    for n in range(1, 20):  # more in order (compactions hand the prefix walk on), then late
        event = tp("marketing.page_viewed", f"w{n}", at(days=41, minutes=2 * n),
                   email="ada@lovelace.example", props={"url": "u"}, channel="email")  # fmt: skip
        record = core.apply_touchpoint(record, event, PB, max_retained=16).record
        kpis.journey_facts(record, PB)
    handed_on = memo.lookup(record, PB).prefix_walk
    assert isinstance(handed_on, FactsWalk) and handed_on is not prefix_walk
    assert handed_on.count == len(record.compacted.touchpoints)
    walked: list[int] = []
    walk_all = FactsWalk.walk_all
    monkeypatch.setattr(
        FactsWalk, "walk_all", lambda w, steps: walked.append(len(steps)) or walk_all(w, steps)
    )
    late = tp("marketing.form_viewed", "late1", at(days=41, minutes=2 * 15 + 1),
              email="ada@lovelace.example", props={"form_id": "f"}, channel="social")  # fmt: skip
    record = core.apply_touchpoint(record, late, PB, max_retained=16).record
    facts = kpis.journey_facts(record, PB)
    monkeypatch.undo()
    # Walked: the chunk compacted on arrival (handed on to the prefix's walk), then the
    # retained touchpoints, never the whole journey.
    assert walked and max(walked) <= len(record.touchpoints) < len(record.compacted.touchpoints)
    assert facts == fresh_facts(record)
    assert facts.model_dump_json() == fresh_facts(record).model_dump_json()
