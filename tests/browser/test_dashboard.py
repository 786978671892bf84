"""The dashboard, rendered by headless Chromium from the real API, worker, Kafka and Redis.

What people see must be what the API says: the funnel counts and conversions equal
``GET /v1/kpis``, the journeys list holds the demo's hand-off lead at its stage, and the journey
view (opened through the URL hash, as a click on a row does) shows its stage history, scores and
signals.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Chromium, Demo, Node

FUNNEL = ("leads", "mqls", "sals", "sqls", "opportunities", "customers_won")
FUNNEL_STAGES = ("lead", "mql", "sal", "sql", "opportunity", "customer")


def kpis(api_url: str, key: str, **params: str) -> dict[str, Any]:
    response = httpx.get(
        f"{api_url}/v1/kpis", params=params, headers={"X-API-Key": key}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def view(api_url: str, key: str, state: str = "") -> str:
    """The dashboard's URL with the read key handed over once in the hash (as a person would
    open a bookmarked view after `tandem keys create`)."""
    return f"{api_url}/#key={key}" + (f"&{state}" if state else "")


def funnel_on_page(page: Node) -> dict[str, str]:
    return {field: page.find(f"kpi-{field}").attrs["data-value"] for field in FUNNEL}


def loaded(page: Node) -> Node:
    body = next(n for n in page.children or [] if n.tag == "html").children or []
    assert any(n.tag == "body" and n.attrs.get("data-loaded") == "true" for n in body), (
        "the page did not finish its first refresh"
    )
    assert page.find("error").attrs.get("hidden") is not None, page.find("error").words()
    return page


def test_funnel_and_kpis_equal_the_api(
    api_url: str, api_key: str, demo: Demo, chromium: Chromium
) -> None:
    before = kpis(api_url, api_key)
    page = loaded(chromium.dom(view(api_url, api_key)))
    after = kpis(api_url, api_key)
    shown = funnel_on_page(page)
    # The report may move between the two reads (timers, other tests' late events): the page
    # must equal one of them, exactly.
    assert shown in ({f: str(r[f]) for f in FUNNEL} for r in (before, after))
    report = before if shown == {f: str(before[f]) for f in FUNNEL} else after
    assert int(shown["leads"]) >= 1 and int(shown["customers_won"]) >= 1  # the demo has both
    conversions = {step["stage"]: step["conversion"] for step in report["funnel"]}
    for field, stage in zip(FUNNEL[1:], FUNNEL_STAGES[1:], strict=True):
        on_page = page.find(f"conv-{field}").attrs["data-value"]
        expected = conversions.get(stage)
        assert on_page == ("" if expected is None else str(expected)) or (
            expected is not None and float(on_page) == pytest.approx(expected)
        ), field
    metrics = page.find("metrics").words()
    for label in ("Revenue", "Win rate", "Customer acquisition cost", "NPS",
                  "Hand-off SLA attainment"):  # fmt: skip
        assert label in metrics
    assert report["currency"] is None or report["currency"] in page.find("kpi-revenue").words()


def test_journeys_list_shows_the_handoff_lead(
    api_url: str, api_key: str, demo: Demo, chromium: Chromium
) -> None:
    page = loaded(chromium.dom(view(api_url, api_key)))
    rows = {row.attrs["data-customer-id"]: row for row in page.find_all("journey-row")}
    ada = demo.snapshots[demo.handoff_customer]
    assert demo.handoff_customer in rows, "the hand-off lead is not in the journeys list"
    assert rows[demo.handoff_customer].attrs["data-stage"] == ada["stage"]
    assert ada["identities"][0].split(":", 1)[1] in rows[demo.handoff_customer].words()
    # The same rows as the API, in its order (most recently touched first).
    api_rows = httpx.get(
        f"{api_url}/v1/journeys", params={"limit": 50}, headers={"X-API-Key": api_key}, timeout=10
    ).json()
    assert list(rows) == [r["customer_id"] for r in api_rows]


def test_stage_filter_lists_only_that_stage(
    api_url: str, api_key: str, demo: Demo, chromium: Chromium
) -> None:
    stage = demo.snapshots[demo.handoff_customer]["stage"]
    page = loaded(chromium.dom(view(api_url, api_key, f"stage={stage}")))
    rows = page.find_all("journey-row")
    assert rows and {row.attrs["data-stage"] for row in rows} == {stage}
    assert demo.handoff_customer in {row.attrs["data-customer-id"] for row in rows}


def test_journey_view_by_identifier(
    api_url: str, api_key: str, demo: Demo, chromium: Chromium
) -> None:
    """A bare email in the hash opens the journey it belongs to, as a click on its row does."""
    ada = demo.snapshots[demo.handoff_customer]
    email = next(i for i in ada["identities"] if i.startswith("email:")).removeprefix("email:")
    page = loaded(chromium.dom(view(api_url, api_key, f"journey={email}")))
    detail = page.find("journey-detail")
    assert detail.attrs["data-customer-id"] == demo.handoff_customer
    assert len(_rows(detail.find("stage-history"))) == len(ada["stage_history"])
    for change in ada["stage_history"]:
        assert change["reason"] in detail.find("stage-history").words()
    assert f"{ada['scores']['engagement']['score']:.2f}" == detail.find("engagement-score").words()
    assert f"{ada['scores']['fit']['score']:.2f}" == detail.find("fit-score").words()
    signals = detail.find("signals").words()
    assert "handoff" in signals, "the hand-off signal is not shown"
    assert ada["recent_touchpoints"][-1]["type"] in detail.find("recent-touchpoints").words()


def test_unknown_journey_says_so(
    api_url: str, api_key: str, demo: Demo, chromium: Chromium
) -> None:
    page = loaded(chromium.dom(view(api_url, api_key, "journey=nobody@nowhere.example")))
    assert "No journey for" in page.find("detail-empty").words()


def test_breakdown_by_channel(api_url: str, api_key: str, demo: Demo, chromium: Chromium) -> None:
    page = loaded(chromium.dom(view(api_url, api_key, "by=channel")))
    report = kpis(api_url, api_key, by="channel")
    shown = {row.attrs["data-group"] for row in page.find_all("group-row")}
    assert shown == set(report["groups"] or {})


def test_without_a_key_the_page_asks_for_one_and_shows_no_journey(
    api_url: str, demo: Demo, chromium: Chromium
) -> None:
    page = chromium.dom(f"{api_url}/#journey={demo.handoff_customer}")
    assert page.find("key-form").attrs.get("hidden") is None, "the key form is not shown"
    assert "read scope" in page.find("error").words()
    assert not page.find_all("journey-row")
    assert page.find("journey-detail").attrs.get("data-customer-id") is None


def test_screenshot(
    api_url: str,
    api_key: str,
    demo: Demo,
    chromium: Chromium,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A PNG of the dashboard with a journey open (kept for people to look at)."""
    path = tmp_path_factory.mktemp("screens") / "dashboard.png"
    chromium.screenshot(
        view(api_url, api_key, f"journey={demo.handoff_customer}"), path, "1280,1400"
    )
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000, "an empty page?"
    keep = Path(".tandem") / "dashboard.png"  # ignored by git, next to the broker's state
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(path, keep)


def _rows(table: Node) -> list[Node]:
    body = [c for c in table.children or [] if c.tag == "tbody"]
    return [r for r in (body[0].children or []) if r.tag == "tr"] if body else []


def test_account_view_shows_its_buying_group(
    api_url: str, api_key: str, demo: Demo, chromium: Chromium
) -> None:
    """The accounts list holds the demo's account (Chen's CRM contact names it); opening it
    through the hash shows its buying group as ``GET /v1/accounts/{id}`` has it."""
    members = {c: s for c, s in demo.snapshots.items() if s.get("account_id") == "acme"}
    assert members, "the demo names an account"
    page = loaded(chromium.dom(view(api_url, api_key, "account=acme")))
    rows = _rows(page.find("accounts-table"))
    assert "acme" in {row.attrs["data-account-id"] for row in rows}
    group = page.find("account-detail").find("buying-group")
    shown = group.words()
    for snapshot in members.values():
        name = snapshot["identities"][0].split(":", 1)[1]
        assert name in shown and snapshot["stage"] in shown
    assert len(_rows(group)) == len(members)
    assert "account hand-off" in page.find("account-handoff").words()
