"""A deterministic backlog of B2B journeys for the engine's tests and benchmarks.

`generate(people, now=...)` returns touchpoint documents (plain dicts in the envelope format
`events.parse_touchpoint` and the publisher take), in delivery order. For a given seed and
`now` the result is identical on every run. What it contains:

* **Journeys.** Each person has an identity chain, one of: a single identifier (anonymous
  visitor, email subscriber, outbound CRM prospect), anonymous id → email, email → CRM
  contact id, or anonymous id → email → CRM contact id. Marketing touches (ad clicks, page
  and form views, form fills with firmographics, email clicks, webinars, downloads, social)
  come under the anonymous id or the email; sales touches (prospecting, outreach, replies,
  meetings, hand-off answers, qualification, demos, objections, proposals, won and lost deals,
  feedback) under the CRM contact id. About half the people who give an email are good-fit
  personas who engage enough to be handed off (MQL) under the bundled playbook and under
  ``tests/integration/playbook.yaml`` (same scoring and MQL rule).
* **Chained links.** One touchpoint carries anonymous id + email, another email + contact id.
  Each link lies in the middle of the person's journey in event time (touches under each of
  its identifiers before and after it), and is delivered before the touches it joins for some
  people and after them for others — with ``shuffle=False`` half the links are delivered late
  on purpose, with ``shuffle=True`` the whole backlog is shuffled.
* **Duplicates.** A share `duplicates` of the events is delivered twice (the same dict, the
  same event id), the copy later than the original unless shuffled.
* **Late events.** With ``shuffle=False`` the backlog is in event-time order except for a
  share `late` of the events (and the delayed links), delivered hours to days after their
  event time; shuffling makes most events late.
* **The ledger.** A few spend and cost records (no identity: the ledger customer).

`build` returns the same backlog with what tests want to know about it (`Workload`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Document = dict[str, Any]

CHAINS: tuple[tuple[str, float], ...] = (
    ("anon", 0.08),
    ("email", 0.10),
    ("contact", 0.07),
    ("anon>email", 0.25),
    ("email>contact", 0.15),
    ("anon>email>contact", 0.35),
)
"""Identity chains and the share of people with each."""

_HOT_PERSONAS: tuple[dict[str, Any], ...] = (
    {"job_title": "VP Marketing", "company_size": 250, "industry": "software",
     "pain_points": ["attribution"]},
    {"job_title": "Head of Sales", "company_size": 1200, "industry": "manufacturing",
     "pain_points": ["pipeline visibility"]},
    {"job_title": "Chief Marketing Officer", "company_size": 800, "industry": "saas"},
)  # fmt: skip
_COLD_PERSONAS: tuple[dict[str, Any], ...] = (
    {"job_title": "Data Analyst", "company_size": 60, "industry": "retail"},
    {"job_title": "Student", "company_size": 2, "industry": "education"},
)
_CHANNELS = ("organic_search", "paid_search", "social", "referral", "email", "event")
_OBJECTIONS = ("price", "timing", "competitor", "authority", "need", "other")

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@dataclass(frozen=True)
class Person:
    """One generated person: their identity chain and identifiers (``kind:value``)."""

    index: int
    chain: str
    identifiers: tuple[str, ...]
    hot: bool


@dataclass
class Workload:
    """A generated backlog and what is known about it."""

    documents: list[Document]
    """Delivery order: duplicates included, late events where they arrive."""
    events: list[Document]
    """Every distinct event once, in event-time order."""
    people: list[Person]
    duplicates: int
    late: int = 0
    """Deliveries whose event time is earlier than an event delivered before them."""
    links: int = 0
    links_before: int = 0
    """Links delivered before at least one touch they join."""
    links_after: int = 0
    """Links delivered after at least one touch they join."""
    ledger: int = 0
    prefix: str = "wl"


class _Journey:
    """The touches of one person, with what each one joins (for the link statistics)."""

    def __init__(self, prefix: str, person: int, start: datetime, short: bool) -> None:
        self.prefix, self.person, self.start, self.short = prefix, person, start, short
        self.documents: list[Document] = []
        self.links: list[tuple[Document, frozenset[str]]] = []

    def end_by(self, now: datetime) -> None:
        """Move the whole journey earlier if it would end after `now`: no event lies in the
        future (the decoder refuses event times more than 24 h after their receipt)."""
        latest = max((d["occurred_at"] for d in self.documents), default=None)
        if latest is None or datetime.fromisoformat(latest) <= now:
            return
        shift = datetime.fromisoformat(latest) - now
        for document in self.documents:
            document["occurred_at"] = (
                datetime.fromisoformat(document["occurred_at"]) - shift
            ).isoformat()

    def add(
        self,
        type_: str,
        at: timedelta,
        identity: dict[str, str],
        properties: dict[str, Any] | None = None,
        source: str = "website",
        **context: str,
    ) -> Document:
        document: Document = {
            "event_id": f"{self.prefix}-{self.person}-{len(self.documents):02d}",
            "type": type_,
            "occurred_at": (self.start + at).isoformat(),
            "source": source,
            "identity": identity,
            "properties": properties or {},
        }
        if context:
            document["context"] = context
        self.documents.append(document)
        if len(identity) > 1:
            self.links.append((document, frozenset(identity)))
        return document


def generate(
    people: int,
    *,
    seed: int = 7,
    now: datetime,
    shuffle: bool = True,
    duplicates: float = 0.1,
    late: float = 0.05,
    prefix: str = "wl",
    short: bool = False,
) -> list[Document]:
    """The backlog of `people` journeys as touchpoint documents, in delivery order.

    About 7.5 touchpoints per person on average (plus duplicates); with `short`, about 4:
    journeys cut to the touches that matter for identity and hand-off (one anonymous touch,
    no email follow-ups, sales stops at the linking outreach or a booked meeting). Every
    event time lies in the 30 days before `now`. See the module docstring for the rest.
    """
    return build(
        people, seed=seed, now=now, shuffle=shuffle, duplicates=duplicates, late=late,
        prefix=prefix, short=short,
    ).documents  # fmt: skip


def build(
    people: int,
    *,
    seed: int = 7,
    now: datetime,
    shuffle: bool = True,
    duplicates: float = 0.1,
    late: float = 0.05,
    prefix: str = "wl",
    short: bool = False,
) -> Workload:
    """Like `generate`, with the people, the distinct events and the backlog's statistics."""
    rng = random.Random(seed)
    prefix = prefix.lower()
    chains = [name for name, _ in CHAINS]
    weights = [share for _, share in CHAINS]
    persons: list[Person] = []
    journeys: list[_Journey] = []
    for n in range(people):
        start = now - timedelta(seconds=rng.uniform(3 * 86_400, 30 * 86_400))
        journey = _Journey(prefix, n, start, short)
        person = _person(rng, prefix, n, rng.choices(chains, weights)[0])
        _touches(rng, journey, person)
        journey.end_by(now)
        persons.append(person)
        journeys.append(journey)
    ledger = _ledger(rng, prefix, now, max(3, people // 300))
    delivery = _deliver(rng, journeys, ledger, shuffle, duplicates, late)
    events = (
        sorted(
            (d for j in journeys for d in j.documents),
            key=lambda d: (d["occurred_at"], d["event_id"]),
        )
        + ledger
    )
    workload = Workload(
        documents=[document for _, document in delivery],
        events=events,
        people=persons,
        duplicates=len(delivery) - len(events),
        ledger=len(ledger),
        prefix=prefix,
    )
    _measure(workload, journeys)
    return workload


def _person(rng: random.Random, prefix: str, n: int, chain: str) -> Person:
    names = {
        "anon": f"anon:{prefix}-anon-{n}",
        "email": f"email:{prefix}.person{n}@co{n % 211}.example",
        "contact": f"contact:{prefix}-crm-{n}",
    }
    kinds = chain.split(">")
    identifiers = tuple(names[k] for k in ("contact", "email", "anon") if k in kinds)
    return Person(n, chain, identifiers, hot=rng.random() < 0.55)


def _ids(person: Person) -> dict[str, dict[str, str]]:
    """Identity blocks by kind: ``{"anon": {"anonymous_id": ...}, ...}``."""
    field_of = {"anon": "anonymous_id", "email": "email", "contact": "contact_id"}
    out = {}
    for identifier in person.identifiers:
        kind, value = identifier.split(":", 1)
        out[kind] = {field_of[kind]: value}
    return out


def _touches(rng: random.Random, j: _Journey, person: Person) -> None:
    """The person's touches in event time: anonymous, then known to marketing, then sales."""
    ids = _ids(person)
    channel = rng.choice(_CHANNELS)
    campaign = f"{channel}-{rng.randrange(4)}"
    persona = dict(rng.choice(_HOT_PERSONAS if person.hot else _COLD_PERSONAS))
    t = timedelta(0)
    if "anon" in ids:
        t = _anonymous(rng, j, ids["anon"], channel, campaign)
    if "email" in ids:
        t = _marketing(rng, j, ids, person.hot, persona, channel, campaign, t)
    if "contact" in ids:
        _sales(rng, j, ids, persona, t)


def _anonymous(
    rng: random.Random, j: _Journey, anon: dict[str, str], channel: str, campaign: str
) -> timedelta:
    if channel == "paid_search":
        j.add("marketing.ad_clicked", timedelta(0), anon, {"ad_id": f"ad-{rng.randrange(9)}"},
              source="ads", channel=channel, campaign_id=campaign)  # fmt: skip
    else:
        j.add("marketing.page_viewed", timedelta(0), anon, {"url": "https://tandem.example/"},
              channel=channel, campaign_id=campaign)  # fmt: skip
    if j.short:
        return 5 * MINUTE
    j.add("marketing.page_viewed", 2 * MINUTE, anon, {"url": "https://tandem.example/pricing"},
          channel=channel)  # fmt: skip
    if rng.random() < 0.5:
        j.add("marketing.form_viewed", 3 * MINUTE, anon, {"form_id": "demo"}, channel=channel)
    return 5 * MINUTE


def _marketing(
    rng: random.Random,
    j: _Journey,
    ids: dict[str, dict[str, str]],
    hot: bool,
    persona: dict[str, Any],
    channel: str,
    campaign: str,
    t: timedelta,
) -> timedelta:
    """Marketing touches under the email; the form fill links the anonymous id to it."""
    email = ids["email"]
    if "anon" not in ids and not j.short and rng.random() < 0.5:
        j.add("marketing.page_viewed", t, email, {"url": "https://tandem.example/blog"},
              channel=channel)  # fmt: skip
    form = {"form_id": "demo" if hot else "newsletter", **persona}
    j.add("marketing.form_submitted", t + MINUTE, {**ids.get("anon", {}), **email}, form,
          channel=channel, campaign_id=campaign)  # fmt: skip
    if "anon" in ids and rng.random() < 0.4:
        # The cookie comes back after the form: a touch under the old identifier only.
        j.add("marketing.page_viewed", t + 20 * MINUTE, ids["anon"],
              {"url": "https://tandem.example/product"}, channel="direct_traffic")  # fmt: skip
    if hot:
        j.add("marketing.webinar_attended", t + 2 * HOUR, email, {"minutes": 45},
              source="zoom", channel="event", campaign_id=f"event-{rng.randrange(3)}")  # fmt: skip
        j.add("marketing.content_downloaded", t + 3 * HOUR, email,
              {"content_id": "buyers-guide"}, channel="email", campaign_id="nurture")  # fmt: skip
    elif not j.short and rng.random() < 0.5:
        j.add("marketing.email_opened", t + 5 * HOUR, email, {"email_id": "newsletter-1"},
              source="hubspot", channel="email")  # fmt: skip
    if not j.short and rng.random() < 0.3:
        j.add("marketing.email_clicked", t + 6 * HOUR, email, {"email_id": "nurture-2"},
              source="hubspot", channel="email", campaign_id="nurture")  # fmt: skip
    return t + 8 * HOUR


def _sales(
    rng: random.Random,
    j: _Journey,
    ids: dict[str, dict[str, str]],
    persona: dict[str, Any],
    t: timedelta,
) -> None:
    """Sales touches under the CRM id; one of them names the email too (the second link)."""
    contact = ids["contact"]
    out = {"channel": "outbound", "campaign_id": f"outbound-{rng.randrange(3)}"}
    # Sales knew the contact before marketing heard of the email (or right after).
    prospect_at = t - DAY if rng.random() < 0.5 else t
    j.add("sales.prospect_added", prospect_at, contact, {**persona, "owner_id": "rep-1"},
          source="salesforce", **out)  # fmt: skip
    link = {**contact, **ids["email"]} if "email" in ids else contact
    j.add("sales.outreach_sent", t + HOUR, link, {"channel": "email"}, source="outreach", **out)
    if j.short or rng.random() < 0.3:
        if j.short and rng.random() < 0.3:
            j.add("sales.meeting_booked", t + 2 * DAY, contact, source="salesforce")
        return
    j.add("sales.reply_received", t + DAY, contact, {"sentiment": "positive"},
          source="outreach", **out)  # fmt: skip
    j.add("sales.meeting_booked", t + 2 * DAY, contact, source="salesforce")
    if "email" in ids and rng.random() < 0.5:
        j.add("marketing.email_clicked", t + 2 * DAY + HOUR, ids["email"],
              {"email_id": "meeting-follow-up"}, source="hubspot", channel="email")  # fmt: skip
    if rng.random() < 0.3:
        return
    bant = rng.random() < 0.8
    j.add("sales.lead_qualified", t + 3 * DAY, contact,
          {"budget": True, "authority": True, "need": True, "timeline": bant},
          source="salesforce")  # fmt: skip
    if not bant:
        return
    j.add("sales.demo_held", t + 4 * DAY, contact, source="salesforce")
    if rng.random() < 0.4:
        j.add("sales.objection_raised", t + 4 * DAY + HOUR, contact,
              {"category": rng.choice(_OBJECTIONS)}, source="salesforce")  # fmt: skip
    amount = str(rng.randrange(5, 80) * 1000)
    j.add("sales.proposal_sent", t + 5 * DAY, contact, {"amount": amount, "currency": "EUR"},
          source="salesforce")  # fmt: skip
    if rng.random() < 0.4:
        j.add("sales.deal_lost", t + 7 * DAY, contact, {"reason": "competitor"},
              source="salesforce")  # fmt: skip
        return
    j.add("sales.deal_won", t + 7 * DAY, contact, {"amount": amount, "currency": "EUR",
          "gross_margin": 0.8}, source="salesforce")  # fmt: skip
    if rng.random() < 0.5:
        j.add("sales.feedback_recorded", t + 10 * DAY, contact, {"nps": rng.randrange(11)},
              source="delighted")  # fmt: skip


def _ledger(rng: random.Random, prefix: str, now: datetime, count: int) -> list[Document]:
    documents: list[Document] = []
    for k in range(count):
        at = now - timedelta(days=rng.uniform(1, 30))
        if k % 3 == 2:
            type_, properties, source = "sales.cost_recorded", {
                "amount": str(rng.randrange(2000, 9000)), "currency": "EUR",
                "period": at.strftime("%Y-%m"),
            }, "finance"  # fmt: skip
        else:
            channel = rng.choice(_CHANNELS)
            type_, properties, source = "marketing.spend_recorded", {
                "campaign_id": f"{channel}-{rng.randrange(4)}", "channel": channel,
                "amount": str(rng.randrange(200, 3000)), "currency": "EUR",
                "period": at.strftime("%Y-%m-%d"),
            }, "ads"  # fmt: skip
        documents.append({
            "event_id": f"{prefix}-ledger-{k}", "type": type_, "occurred_at": at.isoformat(),
            "source": source, "properties": properties,
        })  # fmt: skip
    return documents


def _deliver(
    rng: random.Random,
    journeys: list[_Journey],
    ledger: list[Document],
    shuffle: bool,
    duplicates: float,
    late: float,
) -> list[tuple[datetime, Document]]:
    """(arrival time, document) in delivery order."""
    arrivals: list[tuple[datetime, Document]] = []
    for j in journeys:
        last = max(datetime.fromisoformat(d["occurred_at"]) for d in j.documents)
        linked = {id(d) for d, _ in j.links}
        for d in j.documents:
            at = datetime.fromisoformat(d["occurred_at"])
            if id(d) in linked and rng.random() < 0.5:
                at = last + timedelta(minutes=rng.uniform(1, 600))  # after all it joins
            elif rng.random() < late:
                at += timedelta(hours=rng.uniform(1, 72))
            arrivals.append((at, d))
    arrivals += [(datetime.fromisoformat(d["occurred_at"]), d) for d in ledger]
    twice = rng.sample(range(len(arrivals)), round(duplicates * len(arrivals)))
    arrivals += [
        (arrivals[k][0] + timedelta(minutes=rng.uniform(0, 2880)), arrivals[k][1]) for k in twice
    ]
    if shuffle:
        rng.shuffle(arrivals)
    else:
        arrivals.sort(key=lambda pair: pair[0])
    return arrivals


def _measure(workload: Workload, journeys: list[_Journey]) -> None:
    """Count late deliveries and links delivered before / after the touches they join."""
    position: dict[str, int] = {}
    newest = ""
    for k, document in enumerate(workload.documents):
        position.setdefault(document["event_id"], k)
        # ISO strings with the same offset order like the times they denote.
        if document["occurred_at"] < newest:
            workload.late += 1
        newest = max(newest, document["occurred_at"])
    for j in journeys:
        for link, identity_fields in j.links:
            joined = [
                position[d["event_id"]]
                for d in j.documents
                if d is not link
                and len(d["identity"]) == 1
                and set(d["identity"]) <= identity_fields
            ]
            mine = position[link["event_id"]]
            workload.links += 1
            workload.links_before += any(p > mine for p in joined)
            workload.links_after += any(p < mine for p in joined)
