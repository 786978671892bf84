"""KPIs end to end: a generated funnel through the real broker and worker, read back with the
real ``tandem kpis --json`` (and ``GET /v1/kpis``), equal to an independent plain-Python
computation from the raw events (`tests/integration/kpi_reference.py`).

Delivery is shuffled and duplicated; the events that tie marketing's and sales' records of the
same person together are held back and published last, together with other late events, so
the test sees the merges move the counts and late events land in their event-time windows.
The events lie in spring 2023, a window no other test of the session writes to.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from fastapi.testclient import TestClient

from events import parse_touchpoint
from events.publisher import TouchpointPublisher
from streams import kpi_service
from streams.api import create_app
from streams.api.auth import ApiClient, new_key
from streams.projection import JourneyProjection
from streams.samples import kpi_funnel
from streams.settings import Settings
from tests.integration import kpi_reference as ref
from tests.integration.conftest import TEST_PLAYBOOK, WorkerProcess, settings_env
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration

START = datetime(2023, 3, 6, tzinfo=UTC)
PEOPLE = 300
ALL = (date(2023, 3, 1), date(2023, 6, 30))
MID = (date(2023, 3, 20), date(2023, 4, 9))
CURRENCY = "EUR"

RATES = (
    "lead_to_customer_rate",
    "sales_cycle_days_mean",
    "sales_cycle_days_median",
    "win_rate",
    "revenue_growth",
    "gross_margin",
    "churn_rate",
    "retention_rate",
    "nps",
    "form_conversion_rate",
    "marketing_roi",
    "handoff_sla_attainment",
    "handoff_to_first_sales_touch_hours_mean",
    "handoff_to_first_sales_touch_hours_median",
)
COUNTS = (
    "journeys",
    "leads",
    "mqls",
    "sals",
    "sqls",
    "opportunities",
    "customers_won",
    "deals_won",
    "deals_lost",
    "churned",
    "paying_accounts",
    "customers_at_start",
    "customers_exposed",
    "nps_responses",
    "promoters",
    "detractors",
    "form_views",
    "form_submissions",
    "handoffs",
    "handoffs_in_sla",
    "handoffs_breached",
    "handoffs_pending",
)
SUMS = ("revenue", "revenue_previous", "marketing_spend", "sales_cost")
RATIOS = (
    "average_revenue_per_account",
    "cost_per_lead",
    "customer_acquisition_cost",
    "customer_lifetime_value",
)


def bounds(window: tuple[date, date]) -> tuple[datetime, datetime]:
    since, until = window
    return (
        datetime.combine(since, time(), tzinfo=UTC),
        datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC),
    )


# --- comparing ----------------------------------------------------------------------------


def _number(value: Any) -> Fraction | None:
    if value is None or isinstance(value, Fraction):
        return value
    return Fraction(Decimal(str(value)))


def compare_kpis(actual: dict[str, Any], expected: dict[str, Any], where: str) -> list[str]:
    """Every difference between the system's KPIs and the reference's, as readable lines."""
    problems: list[str] = []

    def differ(name: str, a: Any, e: Any, tolerance: Fraction) -> None:
        fa, fe = _number(a), _number(e)
        if (fa is None) != (fe is None) or (
            fa is not None and fe is not None and abs(fa - fe) > tolerance
        ):
            problems.append(f"{where}: {name} is {a}, expected {e}")

    for name in COUNTS:
        if actual[name] != expected[name]:
            problems.append(f"{where}: {name} is {actual[name]}, expected {expected[name]}")
    for name in RATES:  # the system rounds rates to 6 decimals
        differ(name, actual[name], expected[name], Fraction(1, 10**5))
    for name in SUMS:
        differ(name, actual[name], expected[name], Fraction(0))
    for name in RATIOS:  # money ratios are rounded to cents
        differ(name, actual[name], expected[name], Fraction(1, 200))
    funnel = [step["journeys"] for step in actual["funnel"]]
    if funnel != expected["funnel"]:
        problems.append(f"{where}: funnel is {funnel}, expected {expected['funnel']}")
    stays = {
        s: (t["stays"], t["days_mean"], t["days_median"])
        for s, t in actual["days_in_stage"].items()
    }
    if set(stays) != set(expected["days_in_stage"]):
        problems.append(f"{where}: stages with stays {sorted(stays)}")
    for stage, (n, mean, median) in expected["days_in_stage"].items():
        if stage in stays:
            differ(f"{stage} stays", stays[stage][0], n, Fraction(0))
            differ(f"{stage} days mean", stays[stage][1], mean, Fraction(1, 10**5))
            differ(f"{stage} days median", stays[stage][2], median, Fraction(1, 10**5))
    return problems


def compare_insight(
    actual: dict[str, Any], persons: list[ref.Person], since: datetime, until: datetime
) -> list[str]:
    """Attribution, feedback by persona and stage, persona conversion."""
    problems: list[str] = []
    attribution = ref.attribution(persons, since, until, CURRENCY)
    got = actual["attribution"]
    if Decimal(got["won_revenue"]) != attribution["won_revenue"]:
        problems.append(f"won revenue {got['won_revenue']} != {attribution['won_revenue']}")
    if got["deals"] != attribution["deals"]:
        problems.append(f"attributed deals {got['deals']} != {attribution['deals']}")
    for (dim, model), credit in attribution["credit"].items():
        system = {k: Fraction(Decimal(v)) for k, v in got[dim][model].items()}
        if set(system) != set(credit):
            problems.append(f"{dim}/{model}: values {sorted(system)} != {sorted(credit)}")
            continue
        for value, exact in credit.items():
            if abs(system[value] - exact) >= Fraction(1, 10**4):
                problems.append(f"{dim}/{model}/{value}: {float(system[value])} != {exact}")
        if sum(system.values()) != Fraction(attribution["won_revenue"]):
            problems.append(f"{dim}/{model} does not add up to the won revenue")
    voices = ref.feedback(persons, since, until)
    for section in ("by_persona", "by_stage"):
        expected = {
            group: {kind: dict(counter) for kind, counter in kinds.items() if counter}
            for group, kinds in voices[section].items()
        }
        told = {
            group: {
                kind: counts
                for kind, counts in (
                    ("pain_point", v["pain_points"]),
                    ("motivation", v["motivations"]),
                    ("objection", v["objections"]),
                )
                if counts
            }
            for group, v in actual["feedback"][section].items()
        }
        if told != expected:
            problems.append(f"feedback {section}: {told} != {expected}")
    groups: dict[str, list[ref.Person]] = defaultdict(list)
    for p in persons:
        groups[p.persona or ref.NONE].append(p)
    for name, members in groups.items():
        k = ref.kpis(members, None, since, until, CURRENCY)
        engaged = sum(
            any(
                d["type"].startswith("marketing.") and since <= ref.when(d) < until
                for d in p.events
            )
            for p in members
        )
        verdict = "converts" if k["customers_won"] else "engages_only" if engaged else "inactive"
        got_p = actual["feedback"]["personas"].get(name, {})
        want = {
            "engaged": engaged,
            "leads": k["leads"],
            "customers_won": k["customers_won"],
            "verdict": verdict,
            "revenue": k["revenue"],
        }
        have = {key: got_p.get(key) for key in want}
        have["revenue"] = Decimal(have["revenue"] or 0)
        if have != want:
            problems.append(f"persona {name}: {have} != {want}")
    return problems


def ledger_of(ledger: list[dict[str, Any]], by: str, name: str) -> list[dict[str, Any]] | None:
    """The ledger records a group sees (by what they name); None: not attributable."""
    if by not in ("channel", "campaign") or name == ref.NONE:
        return None
    return [d for d in ledger if _ledger_key(d, by) == name]


def _ledger_key(d: dict[str, Any], by: str) -> str | None:
    props, context = d["properties"], d.get("context", {})
    name = "channel" if by == "channel" else "campaign_id"
    value: str | None = props.get(name) or context.get(name)
    return value


def group_key(p: ref.Person, by: str) -> str:
    value = {
        "channel": p.channel,
        "campaign": p.campaign,
        "persona": p.persona,
        "source": p.source,
    }[by]
    return value or ref.NONE


class Reference:
    """The independent computation over the documents published so far."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        rules = ref.load_rules(TEST_PLAYBOOK)
        groups, self.ledger = ref.people(documents)
        self.persons = [ref.walk(events, rules) for events in groups]

    def total(self, window: tuple[date, date]) -> dict[str, Any]:
        since, until = bounds(window)
        return ref.kpis(self.persons, self.ledger, since, until, CURRENCY)

    def check(self, actual: dict[str, Any], window: tuple[date, date]) -> list[str]:
        since, until = bounds(window)
        problems = compare_kpis(actual, self.total(window), f"{window}")
        if actual["currency"] != CURRENCY:
            problems.append(f"currency {actual['currency']}")
        by = actual.get("by")
        if by:
            members: dict[str, list[ref.Person]] = defaultdict(list)
            for p in self.persons:
                members[group_key(p, by)].append(p)
            names = set(members)
            if by in ("channel", "campaign"):
                names |= {_ledger_key(d, by) or ref.NONE for d in self.ledger}
            groups = actual["groups"]
            # Other tests' journeys (event times in the present) may add groups: only ours
            # must be there and equal.
            for name in names:
                if name not in groups:
                    problems.append(f"group {by}={name} missing")
                    continue
                expected = ref.kpis(
                    members.get(name, []), ledger_of(self.ledger, by, name), since, until, CURRENCY
                )
                problems += compare_kpis(groups[name], expected, f"{by}={name}")
        return problems


async def read_report(settings: Settings, window: tuple[date, date]) -> dict[str, Any]:
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        since, until = kpi_service.day_window(*window)
        report = await kpi_service.report(projection, since=since, until=until)
        data: dict[str, Any] = json.loads(report.model_dump_json())
        return data
    finally:
        await projection.close()


def cli(settings: Settings, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "kpis", "--json", *args],
        env=settings_env(settings),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def window_args(window: tuple[date, date]) -> list[str]:
    return ["--since", window[0].isoformat(), "--until", window[1].isoformat()]


async def publish(settings: Settings, documents: list[dict[str, Any]]) -> None:
    async with TouchpointPublisher(settings.kafka_bootstrap, settings.topic_prefix) as publisher:
        for document in documents:
            await publisher.publish(parse_touchpoint(document))


# --- the test -----------------------------------------------------------------------------


async def test_kpis_from_the_real_pipeline_equal_an_independent_computation(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> None:
    rng = random.Random(20230306)
    documents = kpi_funnel(PEOPLE, START, prefix=f"kpi{uuid.uuid4().hex[:6]}")
    # Held back, published last: the events naming both a CRM id and an email (merges) and a
    # few others, among them wins, whose event times lie weeks before they arrive.
    links = [d for d in documents if {"contact_id", "email"} <= set(d.get("identity") or {})]
    wins = [d for d in documents if d["type"] == "sales.deal_won"]
    late_ids = {d["event_id"] for d in links + rng.sample(wins, 5) + rng.sample(documents, 15)}
    first = [d for d in documents if d["event_id"] not in late_ids]
    late = [d for d in documents if d["event_id"] in late_ids]
    assert len(links) >= 3, "the funnel should contain merges"

    delivery = first + rng.sample(first, len(first) // 10)  # 10 % duplicates
    rng.shuffle(delivery)
    await publish(settings, delivery)
    before = Reference(first)
    found = await eventually(
        lambda: read_report(settings, ALL),
        lambda report: not before.check(report, ALL),
        timeout=150,
        interval=1.0,
    )
    assert not before.check(found, ALL), "\n".join(before.check(found, ALL)[:20])

    await publish(settings, late + late[:10])  # late, and duplicated once more
    after = Reference(documents)
    found = await eventually(
        lambda: read_report(settings, ALL),
        lambda report: not after.check(report, ALL),
        timeout=90,
        interval=1.0,
    )
    assert not after.check(found, ALL), "\n".join(after.check(found, ALL)[:20])
    # Two leads merged into one person are one lead; the late wins count in their own weeks.
    assert before.total(ALL)["leads"] > after.total(ALL)["leads"]
    assert before.total(ALL)["revenue"] < after.total(ALL)["revenue"]

    # The real command line, over every slicing, equals the reference.
    since, until = bounds(ALL)
    whole = cli(settings, *window_args(ALL))
    assert not after.check(whole, ALL), "\n".join(after.check(whole, ALL)[:20])
    insight = compare_insight(whole, after.persons, since, until)
    assert not insight, "\n".join(insight[:20])
    for by in ("channel", "campaign", "persona", "source"):
        sliced = cli(settings, *window_args(ALL), "--by", by)
        problems = after.check(sliced, ALL)
        assert not problems, "\n".join(problems[:20])

    mid = cli(settings, *window_args(MID), "--daily")
    problems = after.check(mid, MID)
    assert not problems, "\n".join(problems[:20])
    assert mid["customers_at_start"] > 0 and mid["revenue_previous"] is not None
    mid_since, mid_until = bounds(MID)
    days = ref.daily(after.persons, after.ledger, mid_since, mid_until, CURRENCY)
    series = {date.fromisoformat(d["day"]): d for d in mid["series"]}
    assert set(series) == set(days)
    for day, expected in days.items():
        for name, value in expected.items():
            assert Decimal(str(series[day][name])) == value, (day, name)

    # The worker keeps the dashboard's all-time snapshot in step with the journeys.
    async def snapshot_and_now() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        live = await kpi_service.report(projection)
        return await projection.kpi_snapshot(), json.loads(live.model_dump_json())

    snap, live = await eventually(
        snapshot_and_now,
        lambda pair: pair[0] is not None and pair[0]["leads"] == pair[1]["leads"],
        timeout=40,
        interval=1.0,
    )
    assert snap is not None and snap["series"]
    assert (snap["leads"], snap["revenue"]) == (live["leads"], live["revenue"])

    # The HTTP API answers the same report.
    key = new_key()
    client = TestClient(
        create_app(settings, api_keys={key: ApiClient(scopes=frozenset({"read"}))}),
        headers={"X-API-Key": key},
    )
    response = client.get(
        "/v1/kpis",
        params={"since": MID[0].isoformat(), "until": MID[1].isoformat(), "daily": "true"},
    )
    assert response.status_code == 200
    assert {**response.json(), "as_of": None} == {**mid, "as_of": None}
