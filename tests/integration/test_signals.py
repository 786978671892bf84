"""Signals on the real broker: what the worker emits equals what the pure core emits.

Every expectation is computed with `streams.journey.replay` from the same touchpoints, in the
order the worker processed them, and compared with what is read back from the signal topics
(timer-driven signals — SLA alerts, stalled, upsell, renewal — depend on the wall clock and
are left out of the comparisons, except where a test is about them).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from events import parse_touchpoint
from schemas.signals import SIGNAL, Signal
from streams import journey as core
from streams import workflow
from streams.journey.signals import material_hash
from streams.journey.signals import signal_id as rule_signal_id
from streams.kafka_admin import create_topics, delete_topics
from streams.playbooks import load_configured_playbook
from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings
from streams.topics import ACCEPTED, ALERTS, HANDOFF, NURTURE
from tests.integration.conftest import TEST_PLAYBOOK, WorkerProcess
from tests.integration.helpers import TIMER_RULES, eventually, publish_documents, read_topic

pytestmark = pytest.mark.integration

Document = dict[str, Any]
FIT = {
    "job_title": "VP Marketing", "company": "Lovelace Analytics", "company_size": 250,
    "industry": "software", "pain_points": ["attribution", "reporting"],
}  # fmt: skip
"""A marketing-leader persona: fit 85 under the test playbook (the MQL needs 50)."""


class Script:
    """Touchpoint documents for one test, with unique event ids and e-mail addresses."""

    def __init__(self, name: str) -> None:
        self.run = f"{name}-{uuid.uuid4().hex[:8]}"
        self.count = 0

    def email(self, who: str) -> str:
        return f"{who}@{self.run}.example"

    def customer(self, who: str) -> str:
        return core.customer_id_for(f"email:{self.email(who)}")

    def event(
        self, who: str, type_: str, at: datetime, properties: dict[str, Any] | None = None,
        **context: str,
    ) -> Document:  # fmt: skip
        self.count += 1
        document: Document = {
            "event_id": f"{self.run}-{self.count:04d}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "source": "salesforce" if type_.startswith("sales.") else "website",
            "identity": {"email": self.email(who)},
            "properties": properties or {},
        }
        if context:
            document["context"] = context
        return document

    def to_mql(
        self, who: str, t0: datetime, step: timedelta = timedelta(minutes=1)
    ) -> list[Document]:
        """Lead at the form (nurture.engaged), MQL at the download (the hand-off's trigger)."""
        paid = {"campaign_id": "q4-webinar", "channel": "paid_search",
                "message_id": "cut-reporting-time-in-half"}  # fmt: skip
        return [
            self.event(who, "marketing.page_viewed", t0, {"url": "https://x.example/"}, **paid),
            self.event(who, "marketing.form_submitted", t0 + step,
                       {"form_id": "webinar-signup", **FIT}, **paid),
            self.event(who, "marketing.webinar_attended", t0 + 2 * step, {"minutes": 50}),
            self.event(who, "marketing.content_downloaded", t0 + 3 * step,
                       {"content_id": "roi-calculator"}),
        ]  # fmt: skip


def is_timer(signal: dict[str, Any]) -> bool:
    return signal["signal_type"] in TIMER_RULES or signal.get("rule") in TIMER_RULES


def dumped(signals: list[Signal]) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in signals]


def by_customer(signals: list[dict[str, Any]], customers: set[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {c: [] for c in customers}
    for signal in signals:
        if signal["customer_id"] in customers and not is_timer(signal):
            grouped[signal["customer_id"]].append(signal)
    return grouped


async def live_signals(settings: Settings, customers: set[str]) -> dict[str, list[Any]]:
    """Event-driven signals on the hand-off and nurture topics, per customer, in topic order
    (one customer's signals share one partition, so that is the order they were emitted)."""
    found = []
    for topic in (HANDOFF, NURTURE):
        found += [value for key, value in await read_topic(settings, topic) if key in customers]
    return by_customer(found, customers)


def expected_signals(
    touchpoints: list[Document], settings: Settings, customers: set[str]
) -> dict[str, list[Any]]:
    playbook = load_configured_playbook(settings)
    # Timers as of now, as the worker runs them: corrections held in a settle window go out.
    result = workflow.replay(
        [parse_touchpoint(d) for d in touchpoints], playbook, now=datetime.now(UTC)
    )
    return by_customer(dumped(result.signals), customers)


def per_topic(grouped: dict[str, list[Any]]) -> dict[str, dict[str, list[Any]]]:
    """Split per customer by topic: order is only defined within one topic's partition."""
    return {
        customer: {
            "handoff": [s for s in signals if s["signal_type"].startswith("handoff")],
            "nurture": [s for s in signals if s["signal_type"] == "nurture"],
        }
        for customer, signals in grouped.items()
    }


async def processing_order(settings: Settings, event_ids: set[str]) -> list[Document]:
    """My touchpoints as the identity agent processed them: touchpoints.accepted has one
    partition, and each customer's journey sees its touchpoints in that order. (The topic
    also carries unmerge and forget requests, which have no event id.)"""
    messages = await read_topic(settings, ACCEPTED)
    return [v for _, v in messages if v.get("event_id") in event_ids]


# --- (a) scripted journeys -------------------------------------------------------------------


async def test_scripted_journeys_emit_exactly_the_signals_of_the_pure_core(
    settings: Settings, worker: WorkerProcess
) -> None:
    s = Script("exact")
    t0 = datetime.now(UTC) - timedelta(hours=1)
    m = timedelta(minutes=1)
    hot = [*s.to_mql("hot", t0), s.event("hot", "marketing.email_clicked", t0 + 5 * m)]
    cold = [
        s.event("cold", "marketing.page_viewed", t0, {"url": "https://tandem.example/blog"}),
        s.event(
            "cold",
            "marketing.form_submitted",
            t0 + m,
            {
                "form_id": "ebook",
                "job_title": "Student",
                "company_size": 1,
                "industry": "education",
            },
        ),
        s.event("cold", "marketing.email_opened", t0 + 2 * m, {"email_id": "n-1"}),
    ]
    won = [
        *s.to_mql("won", t0),
        s.event("won", "sales.handoff_accepted", t0 + 5 * m,
                {"signal_id": rule_signal_id(s.customer("won"), "handoff", "0")}),
        s.event("won", "sales.lead_qualified", t0 + 6 * m,
                {"budget": True, "authority": True, "need": True, "timeline": True}),
        s.event("won", "sales.objection_raised", t0 + 7 * m, {"category": "price"}),
        s.event("won", "sales.demo_held", t0 + 8 * m),
        s.event("won", "sales.deal_won", t0 + 9 * m, {"amount": "45000", "currency": "EUR"}),
    ]  # fmt: skip
    rejected = [
        *s.to_mql("rejected", t0),
        s.event("rejected", "sales.handoff_rejected", t0 + 5 * m,
                {"signal_id": rule_signal_id(s.customer("rejected"), "handoff", "0"),
                 "reason": "no budget"}),
    ]  # fmt: skip
    documents = hot + cold + won + rejected
    customers = {s.customer(who) for who in ("hot", "cold", "won", "rejected")}

    # Shuffled, with duplicates: marketing and sales arrive on different topics and
    # partitions, so the worker may see a journey out of event-time order and correct itself.
    delivery = documents + random.Random(5).sample(documents, 6)
    random.Random(6).shuffle(delivery)
    await publish_documents(settings, delivery)

    ids = {d["event_id"] for d in documents}
    order = await eventually(
        lambda: processing_order(settings, ids), lambda got: len(got) == len(delivery)
    )
    assert len(order) == len(delivery), "every published touchpoint reached identity"
    expected = expected_signals(order, settings, customers)
    live = await eventually(
        lambda: live_signals(settings, customers),
        lambda got: per_topic(got) == per_topic(expected),
        timeout=60,
    )
    assert per_topic(live) == per_topic(expected), "ids, types, versions, content and order"

    # And what they are, whatever the delivery order: the final active signals of each
    # journey are those of its touchpoints in event-time order.
    final = expected_signals(
        sorted(documents, key=lambda d: (d["occurred_at"], d["event_id"])), settings, customers
    )
    kinds = {
        who: Counter(x.get("rule", x["signal_type"]) for x in final[s.customer(who)])
        for who in ("hot", "cold", "won", "rejected")
    }
    assert kinds == {
        "hot": {"handoff": 1, "nurture.engaged": 1},
        "cold": {"nurture.engaged": 1},
        "won": {"handoff": 1, "nurture.engaged": 1, "nurture.onboarding": 1},
        "rejected": {"handoff": 1, "nurture.engaged": 1, "nurture.recycled": 1},
    }

    playbook = load_configured_playbook(settings)

    def material(signal: dict[str, Any]) -> str:
        # Signal hygiene: what was last sent matches the final truth in everything material
        # (a nurture's track, channel and content; a hand-off's stage, objections, persona and
        # score bands). A reason or a breakdown may be that of an earlier version.
        return material_hash(SIGNAL.validate_python(signal), playbook)

    latest = {}
    for signals in live.values():
        for signal in signals:
            latest[signal["signal_id"]] = signal  # topic order: the last is the newest
    for customer, signals in final.items():
        for signal in signals:
            assert material(latest[signal["signal_id"]]) == material(signal), customer


# --- (b) late events correct and revoke ------------------------------------------------------


async def test_a_late_event_revokes_or_corrects_the_handoff(
    settings: Settings, worker: WorkerProcess
) -> None:
    s = Script("late")
    t0 = datetime.now(UTC) - timedelta(hours=1)
    m = timedelta(minutes=1)
    first_phase = s.to_mql("revoked", t0) + s.to_mql("corrected", t0)
    # Dated before the download that made them MQLs, published after the hand-off went out:
    # a disqualified lead is no MQL at all; an objection changes what sales must know.
    late = [
        s.event("revoked", "sales.lead_disqualified", t0 + 1.5 * m, {"reason": "student"}),
        s.event("corrected", "sales.objection_raised", t0 + 2.5 * m,
                {"category": "price", "note": "over budget"}),
    ]  # fmt: skip
    customers = {s.customer("revoked"), s.customer("corrected")}

    await publish_documents(settings, first_phase)
    handoffs_out = await eventually(
        lambda: live_signals(settings, customers),
        lambda got: all(any(x["signal_type"] == "handoff" for x in v) for v in got.values()),
    )
    assert all(any(x["signal_type"] == "handoff" for x in v) for v in handoffs_out.values())
    await publish_documents(settings, late)

    expected = expected_signals(first_phase + late, settings, customers)
    live = await eventually(
        lambda: live_signals(settings, customers),
        lambda got: per_topic(got) == per_topic(expected),
    )
    assert per_topic(live) == per_topic(expected)

    revoked = [x for x in live[s.customer("revoked")] if x["signal_type"].startswith("handoff")]
    assert [(x["signal_type"], x["version"]) for x in revoked] == [
        ("handoff", 1), ("handoff_revoked", 2),
    ]  # fmt: skip
    assert revoked[0]["signal_id"] == revoked[1]["signal_id"]
    assert "no longer qualifies" in revoked[1]["reason"]
    recycled = [x for x in live[s.customer("revoked")] if x.get("rule") == "nurture.recycled"]
    assert len(recycled) == 1 and recycled[0]["stage"] == "disqualified"

    corrected = [x for x in live[s.customer("corrected")] if x["signal_type"] == "handoff"]
    assert [x["version"] for x in corrected] == [1, 2]
    assert corrected[0]["signal_id"] == corrected[1]["signal_id"]
    assert corrected[0]["open_objections"] == []
    assert [o["category"] for o in corrected[1]["open_objections"]] == ["price"]


# --- (c) accepted and rejected hand-offs -----------------------------------------------------


async def test_an_accepted_handoff_stops_the_sla_and_a_rejected_one_recycles(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    s = Script("answer")
    playbook = load_configured_playbook(settings)
    sla = timedelta(hours=playbook.handoff.sla_hours)
    escalate = timedelta(hours=playbook.handoff.escalate_after_hours or 0)
    # The trigger is dated a few seconds ahead, so the SLA deadline (trigger + ~7 s) is still
    # ahead when the hand-off goes out, and the answer (published with it) arrives in time.
    trigger = datetime.now(UTC) + timedelta(seconds=3)
    m = timedelta(minutes=1)

    def journey(who: str) -> list[Document]:
        return s.to_mql(who, trigger - 3 * m)

    def handoff_id(who: str) -> str:
        return rule_signal_id(s.customer(who), "handoff", "0")

    accepted = [
        *journey("accepted"),
        s.event("accepted", "sales.handoff_accepted", trigger + timedelta(seconds=1),
                {"signal_id": handoff_id("accepted")}),
    ]  # fmt: skip
    rejected = [
        *journey("rejected"),
        s.event("rejected", "sales.handoff_rejected", trigger + timedelta(seconds=1),
                {"signal_id": handoff_id("rejected"), "reason": "no budget this year"}),
    ]  # fmt: skip
    ignored = journey("ignored")  # nobody answers: the control that proves timers run
    await publish_documents(settings, accepted + rejected + ignored)
    customers = {s.customer(w): w for w in ("accepted", "rejected", "ignored")}

    live = await eventually(
        lambda: live_signals(settings, set(customers)),
        lambda got: sum(1 for v in got.values() for x in v if x["signal_type"] == "handoff") >= 3,
    )
    for customer, who in customers.items():
        handoffs = [x for x in live[customer] if x["signal_type"] == "handoff"]
        assert [x["signal_id"] for x in handoffs] == [handoff_id(who)], who

    def alerts_of(messages: list[tuple[str | None, Any]], who: str) -> list[Any]:
        return [v for k, v in messages if k == s.customer(who)]

    # The ignored hand-off breaches; wait until the accepted one's escalation is past as well.
    alerts = await eventually(
        lambda: read_topic(settings, ALERTS),
        lambda got: (
            bool(alerts_of(got, "ignored"))
            and datetime.now(UTC) > trigger + escalate + timedelta(seconds=3)
        ),
        timeout=45,
    )
    breached = alerts_of(alerts, "ignored")
    assert breached and breached[0]["signal_type"] == "handoff_sla_breached"
    assert breached[0]["handoff_signal_id"] == handoff_id("ignored")
    assert datetime.now(UTC) > trigger + max(sla, escalate)
    assert alerts_of(alerts, "accepted") == [], "accepted in time: no breach, no escalation"
    assert alerts_of(alerts, "rejected") == []

    snapshot = await projection.snapshot(s.customer("accepted"))
    assert snapshot is not None and snapshot["stage"] == "sal"
    assert snapshot["stage_history"][-1]["reason"] == "hand-off accepted by sales"

    snapshot = await projection.snapshot(s.customer("rejected"))
    assert snapshot is not None and snapshot["stage"] == "recycled" and snapshot["cycle"] == 1
    assert "no budget this year" in snapshot["stage_history"][-1]["reason"]
    live = await eventually(
        lambda: live_signals(settings, {s.customer("rejected")}),
        lambda got: any(x.get("rule") == "nurture.recycled" for x in got[s.customer("rejected")]),
    )
    (recycled,) = [x for x in live[s.customer("rejected")] if x.get("rule") == "nurture.recycled"]
    assert "no budget this year" in recycled["reason"]
    assert recycled["stage"] == "recycled" and recycled["cycle"] == 1
    assert recycled["track"] == "recycled"
    assert [c["id"] for c in recycled["recommended_content"]][:2] == [
        "case-study-globex", "roi-calculator",
    ]  # fmt: skip


# --- (d) a worker restart --------------------------------------------------------------------


@pytest.fixture
def own_settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings like the session's, with this test's own topic, group and Redis prefixes."""
    run_id = uuid.uuid4().hex[:8]
    yield Settings(
        topic_prefix=f"r{run_id}.",
        app_id="tandem-restart",
        redis_prefix=f"tandem-restart-{run_id}:",
        partitions=4,
        store="memory://",
        data_dir=tmp_path,
        playbook=TEST_PLAYBOOK,
        timer_interval_s=1.0,
        kafka_bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
    )


async def test_a_worker_restart_emits_no_duplicate_signal_versions(
    own_settings: Settings,
) -> None:
    await create_topics(own_settings)
    projection = JourneyProjection.from_url(own_settings.redis_url, own_settings.redis_prefix)
    process = WorkerProcess(own_settings, own_settings.data_dir / "worker.log")
    playbook = load_configured_playbook(own_settings)
    try:
        documents = demo_journeys(datetime.now(UTC) - timedelta(hours=1), prefix="restart")
        # Each person's touchpoints split in two halves, so both halves change journeys.
        first_half, second_half = documents[0::2], documents[1::2]

        async def processed(expected: list[Document]) -> bool:
            result = workflow.replay([parse_touchpoint(d) for d in expected], playbook)
            for customer, record in result.records.items():
                snap = await projection.snapshot(customer)
                want = core.snapshot(record, playbook).counts.touchpoints
                if snap is None or snap["counts"]["touchpoints"] != want:
                    return False
            return True

        process.start()
        await publish_documents(own_settings, first_half)
        assert await eventually(lambda: processed(first_half), bool, timeout=40)
        before = await all_signals(own_settings)
        assert before, "the first half already produced signals"
        process.stop()  # SIGTERM: a graceful stop
        assert process.process is not None and process.process.returncode is not None

        process.start()
        await publish_documents(own_settings, second_half)
        assert await eventually(lambda: processed(documents), bool, timeout=40)
        # Let the restarted worker's timers run a few times over the restored journeys.
        signals = await eventually(
            lambda: all_signals(own_settings),
            lambda got: (
                any(x["signal_type"] == "handoff_sla_breached" for x in got)
                and len(got) > len(before)
            ),
            timeout=20,
        )
        pairs = Counter((x["signal_id"], x["version"]) for x in signals)
        duplicates = {pair: n for pair, n in pairs.items() if n > 1}
        assert duplicates == {}, f"re-emitted after the restart: {duplicates}"
        assert len(signals) > len(before), "the second half emitted signals too"
        # Nothing was lost either: every signal the pure core ends with was emitted.
        expected = workflow.replay([parse_touchpoint(d) for d in documents], playbook)
        active_core = {
            e.signal_id
            for r in expected.records.values()
            for e in r.signal_ledger.values()
            if e.status == "active" and e.origin == "event"
        }
        assert active_core and active_core <= {x["signal_id"] for x in signals}
    finally:
        process.stop()
        keys = [k async for k in projection.redis.scan_iter(f"{own_settings.redis_prefix}*")]
        if keys:
            await projection.redis.delete(*keys)
        await projection.close()
        await delete_topics(own_settings)


async def all_signals(settings: Settings) -> list[Any]:
    found: list[Any] = []
    for topic in (HANDOFF, NURTURE, ALERTS):
        found += [value for _, value in await read_topic(settings, topic)]
    return found
