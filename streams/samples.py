"""Sample journeys for the demo, the integration tests and the benchmarks.

Deterministic for a given seed and reference time, so a run can be reproduced exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from streams.journey.identity import customer_id_for, signal_id

Document = dict[str, Any]


class _Writer:
    def __init__(self, prefix: str, now: datetime) -> None:
        self.prefix = prefix
        self.now = now
        self.count = 0
        self.documents: list[Document] = []

    def add(
        self,
        type_: str,
        minutes_ago: float,
        identity: dict[str, str] | None,
        properties: dict[str, Any] | None = None,
        source: str = "website",
        **context: str,
    ) -> Document:
        self.count += 1
        document: Document = {
            "event_id": f"{self.prefix}-{self.count:05d}",
            "type": type_,
            "occurred_at": (self.now - timedelta(minutes=minutes_ago)).isoformat(),
            "source": source,
            "properties": properties or {},
        }
        if identity is not None:
            document["identity"] = identity
        if context:
            document["context"] = context
        self.documents.append(document)
        return document


def handoff_id(person: dict[str, str], cycle: int = 0) -> str:
    """The id of the hand-off Tandem sends for this person in a cycle: what sales names when it
    accepts or rejects it (under the customer id of the person's strongest identifier)."""
    kinds = (("contact_id", "contact"), ("email", "email"), ("anonymous_id", "anon"))
    strongest = next(f"{kind}:{person[key]}" for key, kind in kinds if key in person)
    return signal_id(customer_id_for(strongest), "handoff", str(cycle))


def demo_journeys(now: datetime, prefix: str = "demo") -> list[Document]:
    """A handful of recognisable journeys: inbound and outbound, hot and cold, merged and not."""
    w = _Writer(prefix, now)
    _demo_ada(w, prefix)
    _demo_ben(w, prefix)
    _demo_chen(w, prefix)
    _demo_dana(w, prefix)
    # Eve: an anonymous visitor.
    w.add("marketing.page_viewed", 20, {"anonymous_id": f"{prefix}-anon-eve"},
          {"url": "https://tandem.example/"}, channel="referral")  # fmt: skip
    # What the campaigns cost.
    w.add("marketing.spend_recorded", 10, None, {
        "campaign_id": "q4-analytics-webinar", "channel": "paid_search", "amount": "3000",
        "currency": "EUR", "period": now.strftime("%Y-%m"),
    }, source="ads")  # fmt: skip
    return w.documents


def _demo_ada(w: _Writer, prefix: str) -> None:
    """Ada: an inbound lead who becomes sales-ready (hand-off)."""
    ada_anon = {"anonymous_id": f"{prefix}-anon-ada"}
    ada = {"anonymous_id": f"{prefix}-anon-ada", "email": f"ada@{prefix}-lovelace.example"}
    paid = {"campaign_id": "q4-analytics-webinar", "channel": "paid_search",
            "message_id": "cut-reporting-time-in-half"}  # fmt: skip
    w.add("marketing.ad_clicked", 240, ada_anon, {"ad_id": "ad-17"}, source="ads", **paid)
    w.add("marketing.page_viewed", 239, ada_anon, {"url": "https://tandem.example/pricing"}, **paid)
    w.add("marketing.form_viewed", 238, ada_anon, {"form_id": "webinar-signup"}, **paid)
    w.add("marketing.form_submitted", 237, ada, {
        "form_id": "webinar-signup", "job_title": "VP Marketing", "company": "Lovelace Analytics",
        "company_size": 250, "industry": "software", "pain_points": ["attribution", "reporting"],
    }, **paid)  # fmt: skip
    w.add("marketing.webinar_attended", 180, ada, {"webinar_id": "q4-analytics", "minutes": 55},
          source="zoom", campaign_id="q4-analytics-webinar", channel="event")  # fmt: skip
    w.add("marketing.content_downloaded", 120, ada, {"content_id": "roi-calculator"},
          source="website", channel="email", content_id="roi-calculator")  # fmt: skip
    w.add("marketing.email_clicked", 60, ada, {"email_id": "nurture-3"}, source="hubspot",
          campaign_id="q4-nurture", channel="email", message_id="book-a-demo")  # fmt: skip
    w.add("marketing.page_viewed", 59, ada, {"url": "https://tandem.example/demo"})


def _demo_ben(w: _Writer, prefix: str) -> None:
    """Ben: engaged, but not a fit yet (nurture)."""
    ben = {"email": f"ben@{prefix}-shop.example"}
    w.add("marketing.page_viewed", 300, ben, {"url": "https://tandem.example/blog/funnels"},
          channel="organic_search")  # fmt: skip
    w.add("marketing.form_submitted", 290, ben, {
        "form_id": "newsletter", "job_title": "Student", "company_size": 1, "industry": "education",
    }, channel="organic_search")  # fmt: skip
    w.add("marketing.email_opened", 100, ben, {"email_id": "newsletter-42"}, source="hubspot",
          channel="email")  # fmt: skip


def _demo_chen(w: _Writer, prefix: str) -> None:
    """Chen: outbound prospect; a later webinar sign-up links the CRM contact to the email."""
    chen_crm = {"contact_id": f"{prefix}-crm-chen", "account_id": "acme"}
    chen_web = {"email": f"chen@{prefix}-acme.example"}
    sales = {"channel": "outbound", "campaign_id": "enterprise-outbound-q4"}
    w.add("sales.prospect_added", 400, chen_crm, {
        "job_title": "Head of Revenue Operations", "company": "Acme", "company_size": 1200,
        "industry": "manufacturing", "owner_id": "rep-7",
    }, source="salesforce", **sales)  # fmt: skip
    w.add("sales.outreach_sent", 390, chen_crm, {"channel": "email", "owner_id": "rep-7"},
          source="outreach", **sales)  # fmt: skip
    w.add("marketing.page_viewed", 200, chen_web, {"url": "https://tandem.example/integrations"},
          channel="direct_traffic")  # fmt: skip
    w.add("sales.reply_received", 150, chen_crm, {"sentiment": "positive"}, source="outreach",
          **sales)  # fmt: skip
    w.add("marketing.form_submitted", 90, {**chen_web, "contact_id": f"{prefix}-crm-chen"}, {
        "form_id": "demo-request", "job_title": "Head of Revenue Operations", "company": "Acme",
        "company_size": 1200, "industry": "manufacturing", "pain_points": ["pipeline visibility"],
    }, channel="direct_traffic")  # fmt: skip
    w.add("sales.meeting_booked", 30, chen_crm, {}, source="salesforce", **sales)


def _demo_dana(w: _Writer, prefix: str) -> None:
    """Dana: the whole funnel, from hand-off to a won deal."""
    dana = {"email": f"dana@{prefix}-globex.example", "contact_id": f"{prefix}-crm-dana"}
    social = {"campaign_id": "linkedin-thought-leadership", "channel": "social"}
    w.add("marketing.social_engaged", 2000, dana, {"network": "linkedin", "action": "comment"},
          source="linkedin", **social)  # fmt: skip
    w.add("marketing.form_submitted", 1990, dana, {
        "form_id": "ebook", "job_title": "Chief Marketing Officer", "company": "Globex",
        "company_size": 800, "industry": "software", "pain_points": ["attribution"],
    }, **social)  # fmt: skip
    w.add("marketing.webinar_attended", 1900, dana, {"minutes": 40}, source="zoom", **social)
    w.add("marketing.content_downloaded", 1850, dana, {"content_id": "buyers-guide"}, **social)
    w.add("marketing.email_clicked", 1800, dana, {"email_id": "nurture-1"}, source="hubspot",
          channel="email", campaign_id="q4-nurture")  # fmt: skip
    w.add("sales.handoff_accepted", 1700, dana, {"signal_id": handoff_id(dana)},
          source="salesforce", channel="outbound")  # fmt: skip
    w.add("sales.lead_qualified", 1500, dana, {
        "budget": True, "authority": True, "need": True, "timeline": True,
    }, source="salesforce")  # fmt: skip
    w.add("sales.demo_held", 1200, dana, {}, source="salesforce")
    w.add("sales.objection_raised", 1100, dana, {"category": "price", "note": "over budget"},
          source="salesforce")  # fmt: skip
    w.add("sales.proposal_sent", 1000, dana, {"amount": "48000", "currency": "EUR"},
          source="salesforce")  # fmt: skip
    w.add("sales.deal_won", 500, dana, {"amount": "45000", "currency": "EUR", "recurring": True,
          "gross_margin": 0.8, "owner_id": "rep-2"}, source="salesforce")  # fmt: skip
    w.add("sales.feedback_recorded", 100, dana, {"nps": 9, "motivations": ["attribution"]},
          source="delighted")  # fmt: skip


def funnel(count: int, now: datetime, seed: int = 7, prefix: str = "lead") -> list[Document]:
    """`count` generated journeys through the funnel (for load, KPIs and benchmarks)."""
    rng = random.Random(seed)
    w = _Writer(prefix, now)
    channels = ["organic_search", "paid_search", "email", "social", "referral", "event"]
    titles = ["VP Marketing", "Marketing Manager", "Head of Sales", "CTO", "Student", "Analyst"]
    for n in range(count):
        person = {"email": f"{prefix}{n}@company{n % 997}.example"}
        channel = rng.choice(channels)
        campaign = f"campaign-{rng.randrange(12)}"
        start = rng.uniform(60, 60 * 24 * 60)
        w.add("marketing.page_viewed", start, person, {"url": "https://tandem.example/"},
              channel=channel, campaign_id=campaign)  # fmt: skip
        w.add("marketing.form_viewed", start - 1, person, {"form_id": "signup"}, channel=channel)
        w.add("marketing.form_submitted", start - 2, person, {
            "form_id": "signup", "job_title": rng.choice(titles),
            "company_size": rng.choice([5, 60, 250, 1200]), "industry": "software",
        }, channel=channel, campaign_id=campaign)  # fmt: skip
        for k in range(rng.randrange(5)):
            w.add("marketing.email_clicked", start - 10 - k * 5, person, {}, channel="email")
        if rng.random() < 0.3:
            w.add("sales.handoff_accepted", start - 40, person, {"signal_id": handoff_id(person)},
                  source="salesforce")  # fmt: skip
            if rng.random() < 0.5:
                w.add("sales.lead_qualified", start - 50, person, {
                    "budget": True, "authority": True, "need": True, "timeline": True,
                }, source="salesforce")  # fmt: skip
                w.add("sales.demo_held", start - 55, person, {}, source="salesforce")
                if rng.random() < 0.5:
                    w.add("sales.deal_won", start - 58, person, {
                        "amount": str(rng.randrange(5, 80) * 1000), "currency": "EUR",
                        "gross_margin": 0.75,
                    }, source="salesforce")  # fmt: skip
                else:
                    w.add("sales.deal_lost", start - 58, person, {"reason": "budget"},
                          source="salesforce")  # fmt: skip
    return w.documents


KPI_CHANNELS = ("organic_search", "paid_search", "social", "referral", "event", "email")
KPI_PERSONAS: tuple[dict[str, Any], ...] = (
    # (fit under the bundled playbook) marketing-leader 70+, revenue-leader 70, data-practitioner
    # 35 (never sales-ready), none.
    {"job_title": "VP Marketing", "company_size": 250, "industry": "software"},
    {"job_title": "Head of Sales", "company_size": 1200, "industry": "manufacturing"},
    {"job_title": "Data Analyst", "company_size": 60, "industry": "retail"},
    {"job_title": "Student", "company_size": 2, "industry": "education"},
)
KPI_PAINS = ("attribution", "reporting", "pipeline visibility", "forecasting", "data silos")
KPI_MOTIVATIONS = ("save time", "one funnel", "better forecasts", "roi proof")
KPI_OBJECTIONS = ("price", "timing", "competitor", "authority", "need", "other")


_Add = Callable[..., Document]
"""`_Writer.add` by offset from the reference time (a `timedelta`, later being positive)."""

_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def kpi_funnel(
    count: int, start: datetime, seed: int = 11, prefix: str = "kpi", days: int = 40
) -> list[Document]:
    """`count` people through the whole funnel, for the KPIs (tests and benchmarks).

    Inbound and outbound, four personas (two sales-ready), every stage, hand-offs answered
    within seconds, hours or days (or never), rejections, disqualifications, wins (a few in
    USD) and losses, objections, feedback with NPS, churn and renewals, anonymous visitors
    identified later (a journey rename), people known to marketing and sales under different
    identifiers until one touchpoint carries both (a merge), and the spend and cost ledger.
    Event times lie in [start, start + days + 30 days).
    """
    rng = random.Random(seed)
    w = _Writer(prefix, start)
    add = _after_start(w)
    for n in range(count):
        _kpi_person(rng, add, n, prefix, days)
    _kpi_ledger(rng, add, start, days)
    return w.documents


def _after_start(w: _Writer) -> _Add:
    def add(type_: str, at: timedelta, identity: dict[str, str] | None,
            properties: dict[str, Any] | None = None, source: str = "website",
            **context: str) -> Document:  # fmt: skip
        return w.add(type_, -at.total_seconds() / 60, identity, properties, source, **context)

    return add


def _kpi_person(rng: random.Random, add: _Add, n: int, prefix: str, days: int) -> None:
    """One person, first seen at a random moment of the `days`: a prospect or a visitor."""
    t0 = timedelta(seconds=rng.uniform(0, days * 86_400))
    firm = dict(rng.choice(KPI_PERSONAS))
    pains = rng.sample(KPI_PAINS, rng.randrange(3))
    email = {"email": f"{prefix}{n}@co{n % 211}.example"}
    if rng.random() < 0.2:
        _kpi_outbound(rng, add, {"contact_id": f"{prefix}-crm-{n}"}, firm, pains, t0)
    else:
        _kpi_inbound(rng, add, n, prefix, email, firm, pains, t0)


def _kpi_outbound(
    rng: random.Random,
    add: _Add,
    person: dict[str, str],
    firm: dict[str, Any],
    pains: list[str],
    t0: timedelta,
) -> None:
    """A prospect sales reaches out to: some reply, most of those book a meeting."""
    sales = {"channel": "outbound", "campaign_id": f"outbound-{rng.randrange(3)}"}
    add("sales.prospect_added", t0, person, {**firm, "pain_points": pains,
        "owner_id": "rep-1"}, source="salesforce", **sales)  # fmt: skip
    add("sales.outreach_sent", t0 + _HOUR, person, {"channel": "email"},
        source="outreach", **sales)  # fmt: skip
    if rng.random() < 0.6:
        add("sales.reply_received", t0 + _DAY, person,
            {"sentiment": rng.choice(["positive", "neutral"])}, source="outreach",
            **sales)  # fmt: skip
        if rng.random() < 0.8:
            add("sales.meeting_booked", t0 + 2 * _DAY, person, source="salesforce")
            _kpi_pipeline(rng, add, person, t0 + 2 * _DAY)


def _kpi_inbound(
    rng: random.Random,
    add: _Add,
    n: int,
    prefix: str,
    person: dict[str, str],
    firm: dict[str, Any],
    pains: list[str],
    t0: timedelta,
) -> None:
    """A visitor who may become a lead (the form), engage, and be handed off to sales."""
    channel = rng.choice(KPI_CHANNELS)
    campaign = f"{channel}-{rng.randrange(3)}"
    first = _kpi_visit(rng, add, n, prefix, person, t0, channel, campaign)
    if rng.random() < 0.15:
        return  # viewed the form, never submitted it: a subscriber, not a lead
    add("marketing.form_submitted", t0 + 3 * _MINUTE, first,
        {"form_id": "demo", **firm, "pain_points": pains}, channel=channel,
        campaign_id=campaign)  # fmt: skip
    _kpi_engagement(rng, add, person, t0)
    if rng.random() < 0.06:
        _kpi_known_to_sales(add, {"contact_id": f"{prefix}-crm-{n}"}, person, firm, t0)
    _kpi_handoff_answer(rng, add, person, t0 + 2 * _HOUR)


def _kpi_visit(
    rng: random.Random,
    add: _Add,
    n: int,
    prefix: str,
    person: dict[str, str],
    t0: timedelta,
    channel: str,
    campaign: str,
) -> dict[str, str]:
    """The pricing page and the form, sometimes after an anonymous first touch: the identity
    the form carries (with the anonymous id, which renames that journey)."""
    first = person
    if rng.random() < 0.15:
        # An anonymous visitor first; the form identifies them (the journey is renamed).
        anon = {"anonymous_id": f"{prefix}-anon-{n}"}
        add("marketing.ad_clicked" if channel == "paid_search" else "marketing.page_viewed",
            t0 - 10 * _MINUTE, anon, {} if channel == "paid_search" else {
                "url": "https://tandem.example/"}, channel=channel,
            campaign_id=campaign)  # fmt: skip
        first = {**anon, **person}
    add("marketing.page_viewed", t0, first, {"url": "https://tandem.example/pricing"},
        channel=channel, campaign_id=campaign)  # fmt: skip
    add("marketing.form_viewed", t0 + 2 * _MINUTE, first, {"form_id": "demo"}, channel=channel)
    return first


def _kpi_engagement(rng: random.Random, add: _Add, person: dict[str, str], t0: timedelta) -> None:
    """Marketing touches after the form: a nurture click, a webinar and a download."""
    if rng.random() < 0.3:
        add("marketing.email_clicked", t0 + 30 * _MINUTE, person, {"email_id": "n1"},
            source="hubspot", channel="email", campaign_id="nurture")  # fmt: skip
    if rng.random() < 0.55:
        add("marketing.webinar_attended", t0 + _HOUR, person, {"minutes": 40}, source="zoom",
            channel="event", campaign_id=f"event-{rng.randrange(3)}")  # fmt: skip
        add("marketing.content_downloaded", t0 + 2 * _HOUR, person,
            {"content_id": "buyers-guide"}, channel="email",
            campaign_id="nurture")  # fmt: skip


def _kpi_known_to_sales(
    add: _Add, crm: dict[str, str], person: dict[str, str], firm: dict[str, Any], t0: timedelta
) -> None:
    # Sales knew this person under a CRM id before marketing did: two journeys (two
    # leads) until a touchpoint names both identifiers — then one person, one lead.
    add("sales.prospect_added", t0 - _DAY, crm, {**firm, "owner_id": "rep-2"},
        source="salesforce", channel="outbound", campaign_id="outbound-0")  # fmt: skip
    add("sales.outreach_sent", t0 + 3 * _HOUR, {**crm, **person}, {"channel": "call"},
        source="outreach")  # fmt: skip


def _kpi_handoff_answer(
    rng: random.Random, add: _Add, person: dict[str, str], handoff_at: timedelta
) -> None:
    """Sales answers the hand-off (or never does): rejected, or accepted after seconds, hours
    or a day, and then the pipeline."""
    fate = rng.random()
    if fate < 0.15:
        return  # nobody answers
    if fate < 0.3:
        add("sales.handoff_rejected", handoff_at + _HOUR, person,
            {"signal_id": handoff_id(person), "reason": "no budget"},
            source="salesforce")  # fmt: skip
        return
    if rng.random() < 0.3:
        add("sales.outreach_sent", handoff_at + 20 * _MINUTE, person, {"channel": "email"},
            source="outreach")  # fmt: skip
    delay = rng.choice([timedelta(seconds=5), 2 * _HOUR, 30 * _HOUR])
    add("sales.handoff_accepted", handoff_at + delay, person, {"signal_id": handoff_id(person)},
        source="salesforce")  # fmt: skip
    _kpi_pipeline(rng, add, person, handoff_at + delay)


def _kpi_ledger(rng: random.Random, add: _Add, start: datetime, days: int) -> None:
    """The ledger: weekly spend per channel and campaign, weekly sales cost."""
    for week in range(days // 7 + 5):
        at = timedelta(days=7 * week, hours=12)
        for channel in KPI_CHANNELS:
            add("marketing.spend_recorded", at, None, {
                "campaign_id": f"{channel}-{rng.randrange(3)}", "channel": channel,
                "amount": str(rng.randrange(200, 3000)), "currency": "EUR",
                "period": (start + at).strftime("%Y-%m-%d"),
            }, source="ads")  # fmt: skip
        add("sales.cost_recorded", at, None, {
            "amount": str(rng.randrange(2000, 9000)), "currency": "EUR",
            "period": (start + at).strftime("%Y-%m"),
            **({"campaign_id": "outbound-0"} if week % 2 else {}),
        }, source="finance", **({"channel": "outbound"} if week % 3 == 0 else {}))  # fmt: skip


def _kpi_pipeline(rng: random.Random, add: _Add, person: dict[str, str], t: timedelta) -> None:
    """From an accepted lead on: qualification, opportunity, the deal, the customer's life."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    roll = rng.random()
    if roll < 0.1:
        add("sales.lead_disqualified", t + day, person, {"reason": "too small"},
            source="salesforce")  # fmt: skip
        return
    qualified = roll < 0.75
    add("sales.lead_qualified", t + day, person, {"budget": True, "authority": True,
        "need": True, "timeline": qualified}, source="salesforce")  # fmt: skip
    if not qualified:
        return
    add("sales.demo_held", t + 2 * day, person, source="salesforce")
    if rng.random() < 0.4:
        add("sales.objection_raised", t + 2 * day + hour, person,
            {"category": rng.choice(KPI_OBJECTIONS)}, source="salesforce")  # fmt: skip
    amount = rng.randrange(5, 80) * 1000
    add("sales.proposal_sent", t + 3 * day, person, {"amount": str(amount), "currency": "EUR"},
        source="salesforce")  # fmt: skip
    closed = t + timedelta(days=rng.uniform(4, 9))
    if rng.random() < 0.4:
        add("sales.deal_lost", closed, person, {"reason": "competitor"}, source="salesforce")
        return
    won: dict[str, Any] = {
        "amount": str(amount),
        "currency": "USD" if rng.random() < 0.05 else "EUR",
    }
    if rng.random() < 0.9:
        won["gross_margin"] = rng.choice([0.7, 0.8])
    add("sales.deal_won", closed, person, won, source="salesforce")
    if rng.random() < 0.7:
        add("sales.feedback_recorded", closed + 5 * day, person, {
            "nps": rng.randrange(11), "pain_points": rng.sample(KPI_PAINS, rng.randrange(2)),
            "motivations": rng.sample(KPI_MOTIVATIONS, rng.randrange(1, 3)),
        }, source="delighted")  # fmt: skip
    fate = rng.random()
    if fate < 0.2:
        add("sales.churned", closed + 15 * day, person, {"reason": "budget cut"},
            source="salesforce")  # fmt: skip
    elif fate < 0.35:
        add("sales.renewed", closed + 20 * day, person,
            {"amount": str(amount // 2), "currency": "EUR"}, source="salesforce")  # fmt: skip
