"""Single journeys the in-process measures need: one long journey, one hand-off-worthy one.

Deterministic: fixed identities, ids and event times (no clock).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events import Touchpoint, parse_touchpoint
from schemas.journey import JourneyRecord
from schemas.playbook import Playbook
from schemas.signals import HandoffSignal
from streams import journey as core
from streams import workflow
from streams.samples import demo_journeys

START = datetime(2024, 1, 1, tzinfo=UTC)
LONG_JOURNEY_EMAIL = "long.journey@bench.example"
CHUNK = 1_000
ID_NAMESPACE = uuid.UUID("6f1d3c1e-5b0a-4c55-9a43-0d2f1f7f2a10")
CHANNELS = ("organic_search", "paid_search", "email", "social", "referral")
PAGES = ("/", "/pricing", "/product", "/blog/funnels", "/integrations", "/customers", "/demo")


MINUTE_APART = 60
"""Seconds between the long journey's touchpoints, unless a measure asks for another gap."""


def _document(i: int, gap_s: int = MINUTE_APART) -> dict[str, Any]:
    """Touchpoint `i` of the long journey: varied like a real one (kinds, pages, campaigns),
    with a random-looking id as tools send, so compression sees realistic content; about
    `gap_s` seconds after the one before."""
    pick = random.Random(i)
    channel = pick.choice(CHANNELS)
    kind, properties = pick.choice(
        (
            ("marketing.page_viewed", {"url": f"https://tandem.example{pick.choice(PAGES)}"}),
            (
                "marketing.page_viewed",
                {"url": f"https://tandem.example/blog/{pick.randrange(300)}"},
            ),
            ("marketing.email_opened", {"email_id": f"newsletter-{pick.randrange(60)}"}),
            ("marketing.email_clicked", {"email_id": f"nurture-{pick.randrange(12)}"}),
            ("marketing.ad_clicked", {"ad_id": f"ad-{pick.randrange(40)}"}),
        )
    )
    return {
        "event_id": str(uuid.uuid5(ID_NAMESPACE, str(i))),
        "type": kind,
        "occurred_at": (START + timedelta(seconds=gap_s * i + pick.randrange(gap_s))).isoformat(),
        "source": pick.choice(("website", "hubspot", "ads")),
        "identity": {"email": LONG_JOURNEY_EMAIL},
        "properties": properties,
        "context": {"channel": channel, "campaign_id": f"{channel}-{pick.randrange(8)}"},
    }


def page_views(first: int, count: int, gap_s: int = MINUTE_APART) -> list[Touchpoint]:
    """Touchpoints `first` .. `first + count - 1` of one person, in order (about `gap_s`
    apart): page views, email opens and clicks, ad clicks — nothing that changes the stage."""
    return [parse_touchpoint(_document(i, gap_s)) for i in range(first, first + count)]


def long_journey(length: int, playbook: Playbook, gap_s: int = MINUTE_APART) -> JourneyRecord:
    """The journey of `length` in-order touchpoints, as the worker would hold it.

    Built in chunks — `core.fold` of each chunk, `core.merge` into the journey so far, then
    `core.reevaluate` for the signal ledger — not by `length` appends: today an append at
    100,000 touchpoints costs half a second. The laws make it the same journey
    (``fold(A + B) == merge(fold(A), fold(B))``); its size does not depend on the path.
    """
    customer_id = core.customer_id_for(f"email:{LONG_JOURNEY_EMAIL}")
    record = core.new_journey(customer_id)
    for first in range(0, length, CHUNK):
        chunk = page_views(first, min(CHUNK, length - first), gap_s)
        record = core.merge(record, core.fold(customer_id, chunk, playbook))
    return core.reevaluate(record, playbook).record


def handoff_journey(
    prefix: str, now: datetime, playbook: Playbook, *, check: bool = True
) -> list[Touchpoint]:
    """Ada's journey from the demo (anonymous visit, form, webinar, …): a hand-off at the end.

    `prefix` makes its identities and event ids new. With `check`, the replay confirms it
    hands off, so a playbook change that stops it fails loudly instead of timing out.
    """
    documents = [
        d
        for d in demo_journeys(now, prefix=prefix)
        if "ada" in str(d.get("identity", {}).get("anonymous_id", ""))
    ]
    touchpoints = [parse_touchpoint(d) for d in documents]
    if not check:
        return touchpoints
    signals = workflow.replay(touchpoints, playbook).signals
    if not any(isinstance(s, HandoffSignal) for s in signals):
        raise RuntimeError("the hand-off journey no longer hands off under this playbook")
    return touchpoints
