"""`tandem subscribe` without a broker: version tracking, decoding, the panels people read."""

from __future__ import annotations

from rich.console import Console

from schemas.journey import Objection
from schemas.signals import (
    HandoffRevokedSignal,
    HandoffSlaBreachedSignal,
    NurtureSignal,
    Signal,
)
from streams.cli.subscribe import render_signal
from streams.delivery.subscriber import (
    Received,
    Status,
    SubscribeStats,
    VersionTracker,
    decode_signal,
    default_group,
)
from tests.unit.delivery.helpers import first, sample_signals


def text_of(signal: Signal, status: Status = Status.NEW, previous: int | None = None) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(render_signal(Received(signal, status, "signals.handoff", 2, 41, previous)))
    return console.export_text()


def revoked(signal: Signal) -> HandoffRevokedSignal:
    return HandoffRevokedSignal(
        signal_id=signal.signal_id,
        version=signal.version + 1,
        customer_id=signal.customer_id,
        identities=signal.identities,
        occurred_at=signal.occurred_at,
        playbook_version=signal.playbook_version,
        cycle=0,
        reason="the lead no longer qualifies as an MQL in cycle 0",
    )


def test_versions_classify_new_duplicate_correction_revocation_stale() -> None:
    handoff = first("handoff")
    v2 = handoff.model_copy(update={"version": 2})
    tracker = VersionTracker()
    assert tracker.classify(handoff) == (Status.NEW, None)
    assert tracker.classify(handoff) == (Status.DUPLICATE, 1)
    assert tracker.classify(v2) == (Status.CORRECTION, 1)
    assert tracker.classify(v2) == (Status.DUPLICATE, 2)
    assert tracker.classify(revoked(v2)) == (Status.REVOCATION, 2)
    assert tracker.latest[handoff.signal_id] == 3
    # An older version after a newer one: consumers keep the highest, so it is skipped.
    tracker = VersionTracker()
    tracker.classify(v2)
    assert tracker.classify(handoff) == (Status.STALE, 2)
    assert tracker.latest[handoff.signal_id] == 2


def test_stats_count_shown_signals_only() -> None:
    stats = SubscribeStats()
    for status in (Status.NEW, Status.NEW, Status.CORRECTION, Status.DUPLICATE, Status.STALE):
        stats.count(status)
    stats.count(Status.REVOCATION)
    assert stats.shown == 4
    assert stats.as_dict() == {
        "shown": 4, "new": 2, "correction": 1, "revocation": 1, "duplicate": 1, "stale": 1,
        "undecodable": 0,
    }  # fmt: skip


def test_decode_signal_reads_every_signal_type_and_explains_the_rest() -> None:
    for signal in sample_signals():
        assert decode_signal(signal.model_dump_json().encode()) == signal
    assert decode_signal(None) == "empty message"
    assert decode_signal(b"{oops").startswith("not a signal")  # type: ignore[union-attr]
    assert "signal_type" in str(decode_signal(b'{"signal_id": "x"}'))


def test_default_group_names_the_kinds() -> None:
    assert default_group(["handoff"]) == "tandem-subscribe-handoff"
    assert default_group(["handoff", "alerts"]) == "tandem-subscribe-handoff+alerts"


def test_a_handoff_panel_has_what_sales_needs() -> None:
    handoff = first("handoff")
    assert handoff.signal_type == "handoff"
    text = text_of(handoff)
    assert "NEW" in text and "hand-off" in text and "v1" in text
    assert handoff.customer_id in text and handoff.signal_id in text
    assert "mql" in text
    assert f"fit {handoff.fit.score:g}" in text and "engagement" in text
    for message in handoff.messages:
        assert message in text, "sales repeats the promise marketing made"
    for item in handoff.recommended_content:
        assert item.title in text
    assert "open objections" in text and "none" in text
    assert "signals.handoff[2]@41" in text


def test_corrections_and_revocations_stand_out() -> None:
    handoff = first("handoff")
    text = text_of(handoff.model_copy(update={"version": 2}), Status.CORRECTION, 1)
    assert "CORRECTION" in text and "v2 (was v1)" in text
    text = text_of(revoked(handoff), Status.REVOCATION, 1)
    assert "REVOKED" in text and "v2 (was v1)" in text
    assert "no longer qualifies" in text and "stop working this lead" in text


def test_nurture_and_alert_panels() -> None:
    nurture = first("nurture")
    assert isinstance(nurture, NurtureSignal)
    text = text_of(nurture)
    assert "nurture" in text and nurture.track in text and nurture.reason[:30] in text
    breach = first("handoff_sla_breached")
    assert isinstance(breach, HandoffSlaBreachedSignal)
    text = text_of(breach)
    assert "SLA breached" in text and breach.handoff_signal_id in text and "deadline" in text


def test_objections_show_in_the_panel() -> None:
    objection = Objection(
        category="price", event_id="e-9", raised_at=first("handoff").occurred_at, note="over budget"
    )
    handoff = first("handoff").model_copy(update={"open_objections": [objection]})
    text = text_of(handoff)
    assert "price: over budget" in text
