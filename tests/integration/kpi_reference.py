"""An independent, plain-Python computation of every KPI from raw touchpoint documents.

Written from the definitions in docs/kpis.md and the stage rules in docs/journey.md, without
importing Tandem's journey core or KPI module: identities are joined with a union-find, each
person's events are deduplicated and walked in event-time order through a small re-statement
of the stage rules (enough for what `streams.samples.kpi_funnel` generates), and the KPIs are
computed with datetimes, Decimals and Fractions. The integration test compares this with what
the real worker + Redis + ``tandem kpis`` produce.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

NONE = "(none)"
FUNNEL = ["lead", "mql", "sal", "sql", "opportunity", "customer"]
LEDGER = {"marketing.spend_recorded", "sales.cost_recorded"}


def load_rules(playbook_path: Path) -> dict[str, Any]:
    """The parts of a playbook YAML the reference needs, read as plain data."""
    data: dict[str, Any] = yaml.safe_load(playbook_path.read_text())
    return data


# --- people -------------------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _handoff_ids(identifiers: set[str], cycle: int) -> set[str]:
    """The ids a hand-off of this cycle may go out under (one per customer id it may have)."""
    return {f"sig_{_sha(f'cus_{_sha(i)[:16]}|handoff|{cycle}')[:20]}" for i in identifiers}


def _ids(document: dict[str, Any]) -> list[str]:
    identity = document.get("identity") or {}
    kinds = (("contact", "contact_id"), ("email", "email"), ("anon", "anonymous_id"))
    return [f"{kind}:{identity[key]}" for kind, key in kinds if identity.get(key)]


def people(documents: list[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]], list[Any]]:
    """Deduplicated person events grouped by connected identifiers, and the ledger events."""
    unique = {d["event_id"]: d for d in documents}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for d in unique.values():
        ids = _ids(d)
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ledger = []
    for d in unique.values():
        ids = _ids(d)
        if not ids:
            ledger.append(d)
        else:
            groups[find(ids[0])].append(d)
    return list(groups.values()), ledger


def when(document: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(document["occurred_at"])


# --- one person's journey -----------------------------------------------------------------


@dataclass
class Person:
    key: str
    events: list[dict[str, Any]]
    first: datetime
    source: str
    channel: str | None
    campaign: str | None
    persona: str | None = None
    history: list[tuple[str, datetime, str]] = field(default_factory=list)  # stage, at, cause
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    voices: list[tuple[datetime, str, str, str]] = field(default_factory=list)


def _fit(firm: dict[str, Any], rules: dict[str, Any]) -> tuple[float, str | None]:
    best: tuple[float, str | None] = (0.0, None)
    for persona in rules["personas"]:
        points = persona["points"]
        score, matched = 0.0, False
        title = (firm.get("job_title") or "").lower()
        if title and any(
            re.search(r"(?<!\w)" + re.escape(k.lower()) + r"(?!\w)", title)
            for k in persona.get("job_titles", [])
        ):
            score, matched = score + points["job_title"], True
        size, bounds = firm.get("company_size"), persona.get("company_size")
        if size is not None and bounds is not None:
            low, high = bounds.get("min"), bounds.get("max")
            if (low is None or size >= low) and (high is None or size <= high):
                score, matched = score + points["company_size"], True
        industry = (firm.get("industry") or "").strip().lower()
        if industry and industry in {i.lower() for i in persona.get("industries", [])}:
            score, matched = score + points["industry"], True
        wanted = {p.lower() for p in persona.get("pain_points", [])}
        if wanted & firm["pains"]:
            score, matched = score + points["pain_points"], True
        if matched and (best[1] is None or score > best[0]):
            best = (score, persona["name"])
    return best


BEFORE_LEAD = {None, "visitor", "subscriber"}
BEFORE_SAL = BEFORE_LEAD | {"lead", "mql", "recycled"}
BEFORE_SQL = BEFORE_SAL | {"sal", "disqualified"}
BEFORE_OPP = BEFORE_SQL | {"sql"}
BEFORE_SALE = (BEFORE_OPP - {"disqualified"}) | {"opportunity"}


def walk(events: list[dict[str, Any]], rules: dict[str, Any]) -> Person:
    """Stage history, hand-offs and voices of one person (the stage rules, restated)."""
    events = sorted(events, key=lambda d: (when(d), d["event_id"]))
    first = events[0]
    person = Person(
        key=events[0]["event_id"],
        events=events,
        first=when(first),
        source="outbound" if first["type"].startswith("sales.") else "inbound",
        channel=next(
            (d["context"]["channel"] for d in events if d.get("context", {}).get("channel")), None
        ),
        campaign=next(
            (
                d["context"]["campaign_id"]
                for d in events
                if d.get("context", {}).get("campaign_id")
            ),
            None,
        ),
    )
    points_by_type = rules["scoring"]["points"]
    half_life = rules["scoring"]["half_life_days"] * 86_400
    mql = rules["mql_rule"]
    stage: str | None = None
    cycle = 0
    known = outbound = False
    handed_off: set[int] = set()  # cycles with a hand-off
    seen: set[str] = set()  # identifiers so far
    firm: dict[str, Any] = {"pains": set()}
    items: list[tuple[datetime, float, int]] = []

    def answers_this_cycle(d: dict[str, Any]) -> bool:
        named = d["properties"].get("signal_id")
        return cycle in handed_off and named in _handoff_ids(seen | set(_ids(d)), cycle)

    def enter(new: str, d: dict[str, Any]) -> None:
        nonlocal stage, cycle, outbound
        if new == "mql":
            handed_off.add(cycle)
        if new == "recycled":
            cycle += 1
        if d["type"] == "sales.prospect_added" and stage in BEFORE_LEAD:
            outbound = True
        stage = new
        person.history.append((new, when(d), d["event_id"]))

    for d in events:
        t, kind, p = when(d), d["type"], d.get("properties", {})
        identity = d["identity"]
        seen.update(_ids(d))
        if identity.get("email") or identity.get("contact_id"):
            known = True
        points = points_by_type.get(kind, 0)
        if points:
            items.append((t, points, cycle))
        fit_changed = False
        if kind in ("marketing.form_submitted", "sales.prospect_added"):
            for name in ("job_title", "company", "company_size", "industry"):
                if p.get(name) is not None and p[name] != firm.get(name):
                    firm[name], fit_changed = p[name], True
            new_pains = {x.strip().lower() for x in p.get("pain_points", [])} - firm["pains"]
            if new_pains:
                firm["pains"] |= new_pains
                fit_changed = True
        elif kind == "sales.feedback_recorded":
            new_pains = {x.strip().lower() for x in p.get("pain_points", [])} - firm["pains"]
            if new_pains:
                firm["pains"] |= new_pains
                fit_changed = True
        before = stage
        target: str | None = None
        lead_makers = ("marketing.form_submitted", "marketing.content_downloaded")
        if kind in lead_makers and known and stage in BEFORE_LEAD:
            target = "lead"  # the generated forms are lead forms (firmographics, no newsletter)
        elif kind == "sales.prospect_added" and stage in BEFORE_LEAD:
            target = "lead"
        elif kind == "sales.meeting_booked" and stage in {"lead", "mql", "recycled"}:
            if outbound and rules["stages"]["outbound_meeting_enters_sal"]:
                target = "sal"
        elif kind == "sales.handoff_accepted" and stage in BEFORE_SAL:
            if answers_this_cycle(d):  # closed loop: only the hand-off it names
                target = "sal"
        elif kind == "sales.handoff_rejected" and stage in {"mql", "sal"}:
            if answers_this_cycle(d):
                target = "recycled"
        elif kind == "sales.lead_qualified" and stage in BEFORE_SQL:
            if all(p[a] for a in rules["stages"]["sql_requires"]):
                target = "sql"
        elif kind == "sales.lead_disqualified" and stage in BEFORE_SALE:
            target = "disqualified"
        elif kind in ("sales.demo_held", "sales.proposal_sent") and stage in BEFORE_OPP:
            target = "opportunity"
        elif kind in ("sales.deal_won", "sales.renewed") and stage != "customer":
            target = "customer"
        elif kind == "sales.deal_lost" and stage in {"mql", "sal", "sql", "opportunity"}:
            target = "recycled"
        elif kind == "sales.churned" and stage == "customer":
            target = "churned"
        if target is None:  # no rule of the type applies: first touch, or identified
            if stage is None:
                target = "subscriber" if known else "visitor"
            elif stage == "visitor" and known:
                target = "subscriber"
        if target is not None and target != stage:
            enter(target, d)
        if (points > 0 or fit_changed or stage != before) and stage in ("lead", "recycled"):
            score, _ = _fit(firm, rules)
            engagement = sum(
                pts * 0.5 ** ((t - ti).total_seconds() / half_life)
                for ti, pts, c in items
                if c == cycle
            )
            if score >= mql["min_fit"] and engagement >= mql["min_engagement"]:
                enter("mql", d)
        # What the person told, with the stage right after this event.
        said = []
        if kind in ("marketing.form_submitted", "sales.prospect_added"):
            said = [("pain_point", x) for x in p.get("pain_points", [])]
        elif kind == "sales.feedback_recorded":
            said = [("pain_point", x) for x in p.get("pain_points", [])]
            said += [("motivation", x) for x in p.get("motivations", [])]
        elif kind == "sales.objection_raised":
            said = [("objection", p["category"])]
        for voice_kind, value in said:
            person.voices.append((t, voice_kind, value.strip().lower(), stage or NONE))
    person.persona = _fit(firm, rules)[1]

    sla = timedelta(hours=rules["handoff"]["sla_hours"])
    order = [(when(d), d["event_id"]) for d in events]
    for i, (stage_, at, cause) in enumerate(person.history):
        if stage_ != "mql":
            continue
        after = [
            w
            for w, d in zip(order, events, strict=True)
            if w > (at, cause) and d["type"].startswith("sales.")
        ]
        person.handoffs.append(
            {
                "at": at,
                "deadline": at + sla,
                "answered": person.history[i + 1][1] if i + 1 < len(person.history) else None,
                "touch": after[0][0] if after else None,
            }
        )
    return person


# --- KPIs ---------------------------------------------------------------------------------


def reached(person: Person) -> dict[str, datetime]:
    """When a person first reached each funnel stage (reaching a later one counts)."""
    rank = {s: i for i, s in enumerate(FUNNEL)} | {"churned": len(FUNNEL) - 1}
    out: dict[str, datetime] = {}
    for stage, at, _ in person.history:
        if stage in rank:
            for s in FUNNEL[: rank[stage] + 1]:
                out[s] = min(out.get(s, at), at)
    return out


def _median(xs: list[float]) -> float | None:
    return float(statistics.median(xs)) if xs else None


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def kpis(
    persons: list[Person],
    ledger: list[dict[str, Any]] | None,
    since: datetime,
    until: datetime,
    currency: str,
) -> dict[str, Any]:
    """The KPIs of a slice for [since, until) (`ledger` None: spend not attributable)."""

    def inside(t: datetime | None) -> bool:
        return t is not None and since <= t < until

    previous_since = since - (until - since)
    r = [reached(p) for p in persons]
    out: dict[str, Any] = {"journeys": sum(inside(p.first) for p in persons)}
    names = ["leads", "mqls", "sals", "sqls", "opportunities", "customers_won"]
    for name, stage in zip(names, FUNNEL, strict=True):
        out[name] = sum(inside(x.get(stage)) for x in r)
    cohort = [x for x in r if inside(x.get("lead"))]
    funnel = [sum(1 for x in cohort if stage in x and x[stage] < until) for stage in FUNNEL]
    out["funnel"] = funnel
    out["lead_to_customer_rate"] = _div(funnel[-1], funnel[0])
    cycles = [
        (x["customer"] - p.first).total_seconds() / 86_400
        for p, x in zip(persons, r, strict=True)
        if inside(x.get("customer"))
    ]
    out["sales_cycle_days_mean"], out["sales_cycle_days_median"] = _mean(cycles), _median(cycles)
    stays: dict[str, list[float]] = defaultdict(list)
    won = lost = churned = at_start = exposed = paying = 0
    revenue = previous = weighted = base = Decimal(0)
    scores: list[int] = []
    views = submissions = 0
    handoffs = met = breached = pending = 0
    hours: list[float] = []
    for p in persons:
        h = p.history
        for (s0, t0, _), (_s1, t1, _) in itertools.pairwise(h):
            if inside(t1):
                stays[s0].append((t1 - t0).total_seconds() / 86_400)
        churned += any(s == "churned" and inside(t) for s, t, _ in h)
        stage_before = None
        for s, t, _ in h:
            if t < since:
                stage_before = s
        start = stage_before == "customer"
        at_start += start
        exposed += start or any(s == "customer" and inside(t) for s, t, _ in h)
        paid = False
        answers = []
        for d in p.events:
            t, kind, props = when(d), d["type"], d.get("properties", {})
            if kind == "sales.deal_won" and inside(t):
                won += 1
            if kind == "sales.deal_lost" and inside(t):
                lost += 1
            if kind in ("sales.deal_won", "sales.renewed") and props.get("currency") == currency:
                amount = Decimal(props["amount"])
                if inside(t):
                    revenue += amount
                    paid = True
                    if kind == "sales.deal_won" and props.get("gross_margin") is not None:
                        weighted += amount * Decimal(str(props["gross_margin"]))
                        base += amount
                elif previous_since <= t < since:
                    previous += amount
            if kind == "sales.feedback_recorded" and props.get("nps") is not None and inside(t):
                answers.append((t, props["nps"]))
            views += kind == "marketing.form_viewed" and inside(t)
            submissions += kind == "marketing.form_submitted" and inside(t)
        paying += paid
        if answers:
            scores.append(max(answers)[1])
        for ho in p.handoffs:
            if not inside(ho["at"]):
                continue
            handoffs += 1
            answered = ho["answered"] if ho["answered"] and ho["answered"] < until else None
            if answered is not None:
                met += answered <= ho["deadline"]
                breached += answered > ho["deadline"]
            elif ho["deadline"] <= until:  # `until` is in the past: the clock is past it
                breached += 1
            else:
                pending += 1
            if ho["touch"] is not None and ho["touch"] < until:
                hours.append((ho["touch"] - ho["at"]).total_seconds() / 3600)
    out["days_in_stage"] = {s: (len(v), _mean(v), _median(v)) for s, v in stays.items()}
    out |= {
        "deals_won": won,
        "deals_lost": lost,
        "churned": churned,
        "win_rate": _div(won, won + lost),
        "revenue": revenue,
        "revenue_previous": previous,
        "revenue_growth": float((revenue - previous) / previous) if previous else None,
        "paying_accounts": paying,
        "customers_at_start": at_start,
        "customers_exposed": exposed,
    }
    arpa = Fraction(revenue) / paying if paying else None
    out["average_revenue_per_account"] = arpa
    margin = Fraction(weighted) / Fraction(base) if base else None
    out["gross_margin"] = margin
    churn = Fraction(churned, exposed) if exposed else None
    out["churn_rate"] = churn
    out["retention_rate"] = None if churn is None else 1 - churn
    out["customer_lifetime_value"] = (
        arpa * margin / churn if arpa is not None and margin is not None and churn else None
    )
    spend = cost = None
    if ledger is not None:
        spend = sum(
            (
                Decimal(d["properties"]["amount"])
                for d in ledger
                if d["type"] == "marketing.spend_recorded"
                and inside(when(d))
                and d["properties"]["currency"] == currency
            ),
            Decimal(0),
        )
        cost = sum(
            (
                Decimal(d["properties"]["amount"])
                for d in ledger
                if d["type"] == "sales.cost_recorded"
                and inside(when(d))
                and d["properties"]["currency"] == currency
            ),
            Decimal(0),
        )
    out["marketing_spend"], out["sales_cost"] = spend, cost
    out["cost_per_lead"] = None if spend is None or not out["leads"] else spend / out["leads"]
    out["customer_acquisition_cost"] = (
        None
        if spend is None or cost is None or not out["customers_won"]
        else (spend + cost) / out["customers_won"]
    )
    out["marketing_roi"] = float((revenue - spend) / spend) if spend else None
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    out |= {
        "nps_responses": len(scores),
        "promoters": promoters,
        "detractors": detractors,
        "nps": 100 * (promoters - detractors) / len(scores) if scores else None,
        "form_views": views,
        "form_submissions": submissions,
        "form_conversion_rate": _div(submissions, views),
        "handoffs": handoffs,
        "handoffs_in_sla": met,
        "handoffs_breached": breached,
        "handoffs_pending": pending,
        "handoff_sla_attainment": _div(met, met + breached),
        "handoff_to_first_sales_touch_hours_mean": _mean(hours),
        "handoff_to_first_sales_touch_hours_median": _median(hours),
    }
    return out


def _path_credits(values: list[str], model: str) -> dict[str, Fraction]:
    if not values:
        return {NONE: Fraction(1)}
    n = len(values)
    shares: dict[str, Fraction] = defaultdict(Fraction)
    if model == "first_touch" or n == 1:
        shares[values[0]] += 1
    elif model == "last_touch":
        shares[values[-1]] += 1
    elif model == "linear":
        for v in values:
            shares[v] += Fraction(1, n)
    elif n == 2:
        shares[values[0]] += Fraction(1, 2)
        shares[values[1]] += Fraction(1, 2)
    else:
        shares[values[0]] += Fraction(2, 5)
        shares[values[-1]] += Fraction(2, 5)
        for v in values[1:-1]:
            shares[v] += Fraction(1, 5 * (n - 2))
    return shares


def attribution(
    persons: list[Person], since: datetime, until: datetime, currency: str
) -> dict[str, Any]:
    """Won revenue credited per model, along the touchpoints before each win."""
    out: dict[str, Any] = {"won_revenue": Decimal(0), "deals": 0}
    credit: dict[tuple[str, str], dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for p in persons:
        for i, d in enumerate(p.events):
            props = d.get("properties", {})
            if d["type"] != "sales.deal_won" or props["currency"] != currency:
                continue
            if not since <= when(d) < until:
                continue
            amount = Fraction(Decimal(props["amount"]))
            out["won_revenue"] += Decimal(props["amount"])
            out["deals"] += 1
            before = p.events[:i]
            for dim, key in (("channel", "channel"), ("campaign", "campaign_id")):
                values = [e["context"][key] for e in before if e.get("context", {}).get(key)]
                for model in ("first_touch", "last_touch", "linear", "position_based"):
                    for value, share in _path_credits(values, model).items():
                        credit[dim, model][value] += amount * share
    out["credit"] = {k: dict(v) for k, v in credit.items()}
    return out


def feedback(persons: list[Person], since: datetime, until: datetime) -> dict[str, Any]:
    """Distinct journeys per (group, kind, value), by persona and by stage."""
    by_persona: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    by_stage: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for p in persons:
        seen_p, seen_s = set(), set()
        for t, kind, value, stage in p.voices:
            if since <= t < until:
                seen_p.add((p.persona or NONE, kind, value))
                seen_s.add((stage, kind, value))
        for group, kind, value in seen_p:
            by_persona[group][kind][value] += 1
        for group, kind, value in seen_s:
            by_stage[group][kind][value] += 1
    return {"by_persona": by_persona, "by_stage": by_stage}


def daily(
    persons: list[Person],
    ledger: list[dict[str, Any]],
    since: datetime,
    until: datetime,
    currency: str,
) -> dict[date, dict[str, Any]]:
    """Period counts and money per event-time day (UTC)."""
    days: dict[date, dict[str, Any]] = defaultdict(lambda: defaultdict(int))

    def add(name: str, t: datetime, amount: Any = 1) -> None:
        if since <= t < until:
            days[t.astimezone(UTC).date()][name] += amount

    names = ["leads", "mqls", "sals", "sqls", "opportunities", "customers_won"]
    for p in persons:
        for name, stage in zip(names, FUNNEL, strict=True):
            if stage in (x := reached(p)):
                add(name, x[stage])
        churn_days = {t.astimezone(UTC).date(): t for s, t, _ in p.history if s == "churned"}
        for t in churn_days.values():
            add("churned", t)
        for ho in p.handoffs:
            add("handoffs", ho["at"])
        for d in p.events:
            kind, props, t = d["type"], d.get("properties", {}), when(d)
            simple = {
                "sales.deal_won": "deals_won",
                "sales.deal_lost": "deals_lost",
                "marketing.form_viewed": "form_views",
                "marketing.form_submitted": "form_submissions",
            }
            if kind in simple:
                add(simple[kind], t)
            if kind in ("sales.deal_won", "sales.renewed") and props.get("currency") == currency:
                add("revenue", t, Decimal(props["amount"]))
    for d in ledger:
        if d["properties"]["currency"] == currency:
            name = "marketing_spend" if d["type"] == "marketing.spend_recorded" else "sales_cost"
            add(name, when(d), Decimal(d["properties"]["amount"]))
    return days
