"""A playbook backtest: the same touchpoints replayed under two playbooks, and what changes.

`compare` takes the two replays (`streams.workflow.replay`) with their playbooks and returns a
`Backtest`: the customers handed off under one playbook and not the other, the customers per
stage under each, the main KPIs under each with their difference, and the signals by rule.
Plain data in, a typed result out; no clock (`now` is an argument), no I/O. `tandem replay
FILE --playbook NEW --compare OLD` renders it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.journey import JourneyRecord, Stage
from schemas.kpis import Kpis
from schemas.playbook import Playbook
from schemas.signals import NurtureSignal, Signal
from streams import journey as core
from streams.journey import kpis
from streams.journey.record import derive
from streams.workflow.replay import ReplayResult

MAIN_KPIS: tuple[str, ...] = (
    "leads",
    "mqls",
    "sals",
    "sqls",
    "opportunities",
    "customers_won",
    "handoffs",
    "handoffs_in_sla",
    "handoffs_breached",
    "handoffs_pending",
    "handoff_sla_attainment",
    "lead_to_customer_rate",
    "win_rate",
    "sales_cycle_days_median",
    "revenue",
)
"""The KPIs a backtest compares, in the order it shows them (names of `schemas.kpis.Kpis`)."""

Number = int | float | Decimal


@dataclass(frozen=True)
class HandoffChange:
    """A customer handed off under one playbook and not under the other."""

    customer_id: str
    stage_old: str | None
    stage_new: str | None
    reason: str
    """Why the playbook that hands off does (its hand-off's reason)."""


@dataclass(frozen=True)
class Shift:
    """One number under the old and under the new playbook (`delta`: new − old)."""

    name: str
    old: Number | None
    new: Number | None

    @property
    def delta(self) -> Number | None:
        """new − old, when both are known."""
        if self.old is None or self.new is None:
            return None
        if isinstance(self.old, Decimal) or isinstance(self.new, Decimal):
            return Decimal(str(self.new)) - Decimal(str(self.old))
        return self.new - self.old


@dataclass(frozen=True)
class Backtest:
    """What changes when the same touchpoints run under the new playbook instead of the old."""

    old_version: str
    new_version: str
    journeys: int
    handoffs_old: int
    handoffs_new: int
    gained: tuple[HandoffChange, ...]
    lost: tuple[HandoffChange, ...]
    stages: tuple[Shift, ...]
    kpis: tuple[Shift, ...]
    signals: tuple[Shift, ...]

    def as_dict(self) -> dict[str, object]:
        """The backtest as JSON-ready data (money as strings, like the KPI report)."""

        def shifts(items: tuple[Shift, ...]) -> dict[str, dict[str, object]]:
            return {
                s.name: {"old": _plain(s.old), "new": _plain(s.new), "delta": _plain(s.delta)}
                for s in items
            }

        def changes(items: tuple[HandoffChange, ...]) -> list[dict[str, object]]:
            return [
                {"customer_id": c.customer_id, "stage_old": c.stage_old,
                 "stage_new": c.stage_new, "reason": c.reason}
                for c in items
            ]  # fmt: skip

        return {
            "old_playbook": self.old_version,
            "new_playbook": self.new_version,
            "journeys": self.journeys,
            "handoffs": {"old": self.handoffs_old, "new": self.handoffs_new,
                         "gained": changes(self.gained), "lost": changes(self.lost)},
            "stages": shifts(self.stages),
            "kpis": shifts(self.kpis),
            "signals": shifts(self.signals),
        }  # fmt: skip


def _plain(value: Number | None) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def handed_off(record: JourneyRecord) -> str | None:
    """The id of the journey's latest hand-off in force, or None: none in force."""
    active = [
        e
        for e in record.signal_ledger.values()
        if e.signal_type == "handoff" and e.status == "active"
    ]
    if not active:
        return None
    return max(active, key=lambda e: (e.occurred_at, e.signal_id)).signal_id


def _people(result: ReplayResult) -> dict[str, JourneyRecord]:
    return {cid: r for cid, r in result.records.items() if cid != core.LEDGER_CUSTOMER}


def _stages(records: dict[str, JourneyRecord], playbook: Playbook) -> dict[str, str]:
    stages: dict[str, str] = {}
    for cid, record in records.items():
        stage = derive(record, playbook).stage
        stages[cid] = (stage or Stage.VISITOR).value
    return stages


def _reasons(signals: list[Signal]) -> dict[str, str]:
    """Each hand-off signal id's latest reason."""
    reasons: dict[str, str] = {}
    for signal in signals:
        if signal.signal_type == "handoff":
            reasons[signal.signal_id] = getattr(signal, "reason", "")
    return reasons


def _handoffs(result: ReplayResult) -> dict[str, str]:
    """Customer id → the reason of its hand-off in force, for the customers handed off."""
    reasons = _reasons(result.signals)
    found: dict[str, str] = {}
    for cid, record in _people(result).items():
        signal_id = handed_off(record)
        if signal_id is not None:
            found[cid] = reasons.get(signal_id, "")
    return found


def _kpis(result: ReplayResult, playbook: Playbook, now: datetime) -> Kpis:
    facts = [kpis.journey_facts(record, playbook) for record in result.records.values()]
    return kpis.compute_kpis(facts, now=now)


def _kpi_value(report: Kpis, name: str) -> Number | None:
    value = getattr(report, name)
    return value if isinstance(value, int | float | Decimal) else None


def _signals(signals: list[Signal]) -> Counter[str]:
    return Counter(s.rule if isinstance(s, NurtureSignal) else s.signal_type for s in signals)


def compare(
    old: ReplayResult,
    old_playbook: Playbook,
    new: ReplayResult,
    new_playbook: Playbook,
    *,
    now: datetime,
) -> Backtest:
    """What the new playbook changes against the old one, over the same replayed touchpoints.

    `now` is the moment the KPIs are asked for (it only decides whether an unanswered
    hand-off is pending or breached): the replay's `--as-of`, or its latest touchpoint."""
    stages_old = _stages(_people(old), old_playbook)
    stages_new = _stages(_people(new), new_playbook)
    handoffs_old, handoffs_new = _handoffs(old), _handoffs(new)

    def change(cid: str, reason: str) -> HandoffChange:
        return HandoffChange(cid, stages_old.get(cid), stages_new.get(cid), reason)

    gained = tuple(change(c, handoffs_new[c]) for c in sorted(handoffs_new.keys() - handoffs_old))
    lost = tuple(change(c, handoffs_old[c]) for c in sorted(handoffs_old.keys() - handoffs_new))
    count_old, count_new = Counter(stages_old.values()), Counter(stages_new.values())
    stages = tuple(
        Shift(s.value, count_old[s.value], count_new[s.value])
        for s in Stage
        if count_old[s.value] or count_new[s.value]
    )
    kpis_old, kpis_new = _kpis(old, old_playbook, now), _kpis(new, new_playbook, now)
    kpi_shifts = tuple(
        Shift(n, _kpi_value(kpis_old, n), _kpi_value(kpis_new, n)) for n in MAIN_KPIS
    )
    signals_old, signals_new = _signals(old.signals), _signals(new.signals)
    signals = tuple(
        Shift(rule, signals_old[rule], signals_new[rule])
        for rule in sorted(signals_old.keys() | signals_new.keys())
    )
    return Backtest(
        old_version=old_playbook.version,
        new_version=new_playbook.version,
        journeys=len(stages_new.keys() | stages_old.keys()),
        handoffs_old=len(handoffs_old),
        handoffs_new=len(handoffs_new),
        gained=gained,
        lost=lost,
        stages=stages,
        kpis=kpi_shifts,
        signals=signals,
    )
