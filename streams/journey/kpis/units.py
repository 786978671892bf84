"""Units of the KPI facts and aggregates: event time in integer microseconds, days, the funnel
order, money quanta, and the event-time `Window` of a question. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.journey import Stage

FUNNEL: tuple[Stage, ...] = (
    Stage.LEAD,
    Stage.MQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)
"""The funnel, in order. Reaching a stage counts as reaching every earlier one (see docs)."""

FUNNEL_VALUES: tuple[str, ...] = tuple(stage.value for stage in FUNNEL)
RANK: dict[str, int] = {stage.value: rank for rank, stage in enumerate(FUNNEL)}
RANK[Stage.CHURNED.value] = RANK[Stage.CUSTOMER.value]  # only a customer can churn
CUSTOMER = Stage.CUSTOMER.value
CHURNED = Stage.CHURNED.value

CENT = Decimal("0.01")
ATTRIBUTION_QUANTUM = Decimal("0.0001")
"""Attributed amounts keep the contract's 4 decimals, so they add up to the won revenue."""
SCALE = int(1 / ATTRIBUTION_QUANTUM)
"""Money as integers: the contract's amounts have at most 4 decimals (1 unit = 0.0001)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = EPOCH.date()
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
FOREVER = 1 << 62
NEVER = FOREVER + 1  # a reach time that is in no window (and after every window's end)


def micros(at: datetime) -> int:
    """An aware datetime as exact microseconds since the Unix epoch (the facts' time unit)."""
    # The same integer as `(at - EPOCH) // timedelta(microseconds=1)`, without the division.
    since = at - EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(us: int) -> datetime:
    """Microseconds since the Unix epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


def day_of(us: int) -> int:
    """The UTC calendar day of an event time, as days since 1970-01-01."""
    return us // US_PER_DAY


def units_of(amount: Decimal) -> int:
    """An amount as an exact integer of 0.0001 (the contract allows at most 4 decimals)."""
    scaled = amount * SCALE
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"amount {amount} has more than 4 decimals")
    return units


def money(units: int) -> Decimal:
    """Money units (0.0001) as the report spells an amount: cents ("1250.00"), or 4 decimals
    when the cents are not exact ("0.1234")."""
    amount = Decimal(units) * ATTRIBUTION_QUANTUM
    return amount.quantize(CENT) if units % 100 == 0 else amount


def as_money(amount: Decimal) -> Decimal:
    """An exact amount in the report's spelling (`money`), whatever the exponent it was summed
    with: Decimal("3162000") and Decimal("3162000.0000") both become "3162000.00"."""
    return money(units_of(amount))


@dataclass(frozen=True)
class Window:
    """An event-time window: `since` inclusive, `until` exclusive; None is unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"empty window: since {self.since} is not before until {self.until}")

    @property
    def bounds(self) -> tuple[int, int]:
        """[lo, hi) in microseconds, with far-away sentinels for open ends."""
        lo = -FOREVER if self.since is None else micros(self.since)
        hi = FOREVER if self.until is None else micros(self.until)
        return lo, hi

    def previous(self) -> Window | None:
        """The same-length window just before this one (None when unbounded)."""
        if self.since is None or self.until is None:
            return None
        return Window(self.since - (self.until - self.since), self.since)
