"""Facts, loaded for aggregation: a journey's facts as plain tuples and integers.

Accepts `JourneyFacts` or their stored JSON decoded to mappings: the read path skips model
validation (the worker validated the facts when it built them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from schemas.kpis import JourneyFacts
from streams.journey.kpis.units import FUNNEL_VALUES, RANK

WonTuple = tuple[int, Decimal, str, float | None, Mapping[str, Any], Mapping[str, Any]]
LedgerTuple = tuple[str, int, Decimal, str, str | None, str | None]


@dataclass(slots=True)
class LoadedJourney:
    """A journey's facts as plain tuples and integers: the hot loop touches nothing else."""

    customer_id: str
    persona: str | None
    source: str | None
    account: str | None
    channel: str | None
    campaign: str | None
    first: int | None
    stages: list[tuple[str, int]]
    reached: dict[str, int]
    won: list[WonTuple]
    lost: list[int]
    renewals: list[tuple[int, Decimal, str]]
    form_views: list[int]
    form_submissions: list[int]
    marketing: list[int]
    handoffs: list[tuple[int, int, int | None, int | None]]
    nps: list[tuple[int, int]]
    voices: list[tuple[int, str, str, str | None]]
    ledger: list[LedgerTuple]


def load(facts: JourneyFacts | Mapping[str, Any]) -> LoadedJourney:
    # Mappings are the stored JSON decoded as is: the read path skips model validation (the
    # worker validated the facts when it built them), which is most of a query's time.
    d: Mapping[str, Any] = facts.model_dump() if isinstance(facts, JourneyFacts) else facts
    stages = [(str(e["stage"]), e["at"]) for e in d.get("stages", ())]
    reached: dict[str, int] = {}
    for stage, at in stages:
        rank = RANK.get(stage)
        if rank is None:
            continue
        for earlier in FUNNEL_VALUES[: rank + 1]:
            known = reached.get(earlier)
            if known is None or at < known:
                reached[earlier] = at
    return LoadedJourney(
        customer_id=d["customer_id"],
        persona=d.get("persona"),
        source=d.get("source"),
        account=d.get("account"),
        channel=d.get("first_channel"),
        campaign=d.get("first_campaign"),
        first=d.get("first_touch_at"),
        stages=stages,
        reached=reached,
        won=[
            (
                w["at"],
                Decimal(w["amount"]),
                w["currency"],
                w.get("gross_margin"),
                w.get("channels") or {},
                w.get("campaigns") or {},
            )
            for w in d.get("won", ())
        ],
        lost=list(d.get("lost", ())),
        renewals=[(r["at"], Decimal(r["amount"]), r["currency"]) for r in d.get("renewals", ())],
        form_views=list(d.get("form_views", ())),
        form_submissions=list(d.get("form_submissions", ())),
        marketing=list(d.get("marketing_touches", ())),
        handoffs=[
            (h["at"], h["deadline"], h.get("answered_at"), h.get("first_sales_touch_at"))
            for h in d.get("handoffs", ())
        ],
        nps=[(r["at"], r["score"]) for r in d.get("nps", ())],
        voices=[(v["at"], v["kind"], v["value"], v.get("stage")) for v in d.get("voices", ())],
        ledger=[
            (
                i["kind"],
                i["at"],
                Decimal(i["amount"]),
                i["currency"],
                i.get("campaign"),
                i.get("channel"),
            )
            for i in d.get("ledger", ())
        ],
    )
