"""Hypothesis strategies: small, realistic journeys with duplicates, conflicts and links.

Journeys are 1–30 touchpoints over ~four months (12-hour grid, so equal event times happen
and the event-id tie-break matters), drawn from every kind of touchpoint that moves stages or
scores, with exact re-deliveries and conflicting duplicates (same event id, other content).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from events.vocabulary import Touchpoint, parse_touchpoint
from schemas.playbook import EngagementFall, Playbook
from streams import journey as core
from streams.journey.identity import customer_id_for, signal_id

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def law_playbook() -> Playbook:
    """The default playbook with thresholds low enough that small journeys qualify often (and
    customers' engagement falls within the generated span: 5-day windows on a 12-hour grid)."""
    pb = core.default_playbook()
    fall = EngagementFall(window_days=5, min_touchpoints=2, max_share=0.5)
    customer = pb.nurture.customer.model_copy(update={"engagement_fall": fall})
    return pb.model_copy(
        update={
            "version": "laws",
            "mql_rule": pb.mql_rule.model_copy(update={"min_engagement": 30, "min_fit": 30}),
            "nurture": pb.nurture.model_copy(update={"engagement_floor": 10, "customer": customer}),
        }
    )


JOB_TITLES = [None, "VP Marketing", "Student", "Head of Sales", "Data Analyst"]
SIZES = [None, 3, 60, 250, 1200]
INDUSTRIES = [None, "software", "education", "manufacturing"]
PAINS = [[], ["attribution"], ["reporting", "forecasting"], ["attribution", "reporting"]]
FORMS = ["demo-request", "newsletter", "ebook"]
REASONS = ["price", "timing", "no budget"]


# What sales answers name: mostly the hand-offs these people get (cycles 0 and 1, under the
# customer id of each identifier), sometimes an unknown id.
_NAMED_BY = ["contact:crm-1", "email:ada@lovelace.example", "anon:cookie-1", "contact:crm-0",
             "email:p0a@x.example", "email:p1a@x.example", "anon:0-c0"]  # fmt: skip
HANDOFF_NAMED = [
    "s",
    *(signal_id(customer_id_for(i), "handoff", k) for i in _NAMED_BY for k in ("0", "1")),
]


def _pick(options: list[Any], v: int, salt: int) -> Any:
    # A variant number decides every detail: one draw per touchpoint keeps generation cheap.
    return options[(v // (7**salt)) % len(options)]


def _firmographics(v: int) -> dict[str, Any]:
    found = {
        "job_title": _pick(JOB_TITLES, v, 1),
        "company_size": _pick(SIZES, v, 2),
        "industry": _pick(INDUSTRIES, v, 3),
    }
    props: dict[str, Any] = {k: value for k, value in found.items() if value is not None}
    pains = _pick(PAINS, v, 4)
    if pains:
        props["pain_points"] = pains
    return props


def _money(v: int) -> dict[str, Any]:
    return {"amount": _pick(["1000", "2500.5"], v, 1), "currency": _pick(["EUR", "USD"], v, 2)}


PROPERTIES: dict[str, Callable[[int], dict[str, Any]]] = {
    "marketing.page_viewed": lambda v: {"url": _pick(["/", "/pricing"], v, 1)},
    "marketing.form_submitted": lambda v: {"form_id": _pick(FORMS, v, 5), **_firmographics(v)},
    "marketing.email_opened": lambda v: {},
    "marketing.email_clicked": lambda v: {},
    "marketing.content_downloaded": lambda v: {"content_id": "guide"},
    "marketing.webinar_attended": lambda v: {},
    "marketing.event_attended": lambda v: {},
    "marketing.unsubscribed": lambda v: {},
    "sales.prospect_added": _firmographics,
    "sales.reply_received": lambda v: {"sentiment": _pick(["positive", "negative"], v, 1)},
    "sales.meeting_booked": lambda v: {},
    "sales.handoff_accepted": lambda v: {"signal_id": _pick(HANDOFF_NAMED, v, 3)},
    "sales.handoff_rejected": lambda v: {
        "signal_id": _pick(HANDOFF_NAMED, v, 3),
        "reason": _pick(REASONS, v, 1),
    },
    # Version 1 (upcast on parsing): each answer yes, no, null or not given (unknown).
    "sales.lead_qualified": lambda v: {
        k: answer
        for i, k in enumerate(("budget", "authority", "need", "timeline"))
        if (answer := _pick([True, True, False, None, "absent"], v, i + 1)) != "absent"
    },
    "sales.lead_disqualified": lambda v: {"reason": _pick(REASONS, v, 1)},
    "sales.demo_held": lambda v: {},
    "sales.objection_raised": lambda v: {
        "category": _pick(["price", "timing", "competitor"], v, 1)
    },
    "sales.proposal_sent": _money,
    "sales.deal_won": _money,
    "sales.deal_lost": lambda v: {"reason": _pick(REASONS, v, 1)},
    "sales.renewed": _money,
    "sales.churned": lambda v: {"reason": _pick(REASONS, v, 1)},
    "sales.feedback_recorded": lambda v: {"nps": 9, "pain_points": ["reporting"]},
    "marketing.spend_recorded": lambda v: {
        "campaign_id": "c1",
        "channel": "paid_search",
        "amount": "300",
        "currency": "EUR",
        "period": "2024-01",
    },
}
# Weighted: engagement-heavy marketing touches are the common case.
TYPES = [
    *["marketing.page_viewed", "marketing.form_submitted", "marketing.email_clicked",
      "marketing.content_downloaded", "marketing.webinar_attended"] * 3,
    *PROPERTIES,
]  # fmt: skip


def context_for(v: int) -> dict[str, str]:
    """A context decided by a variant number."""
    found = {
        "campaign_id": _pick([None, "c1", "c2"], v, 6),
        "message_id": _pick([None, "m1", "m2"], v, 7),
        "channel": _pick([None, "email", "paid_search"], v, 8),
        # UTM tags stand in for a missing campaign / channel (and change nothing otherwise).
        "utm_campaign": _pick([None, None, "c1", "u3"], v, 9),
        "utm_medium": _pick([None, None, "cpc", "Email", "podcast"], v, 10),
        "utm_source": _pick([None, "linkedin"], v, 11),
    }
    return {k: value for k, value in found.items() if value is not None}


IDENTITIES: list[dict[str, str]] = [
    {"anonymous_id": "cookie-1"},
    {"anonymous_id": "cookie-2"},
    {"email": "ada@lovelace.example"},
    {"email": "ada@lovelace.example", "anonymous_id": "cookie-1"},
    {"contact_id": "crm-1"},
    {"contact_id": "crm-1", "email": "ada@lovelace.example"},
    {"email": "info@lovelace.example", "anonymous_id": "cookie-1"},  # blocklisted email
]


def document(
    event_id: str, type_: str, slot: int, identity: dict[str, str] | None, props: dict[str, Any],
    context: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """A touchpoint document (ledger types carry no identity)."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": (T0 + timedelta(hours=12 * slot)).isoformat(),
        "source": "laws",
        "properties": props,
        "context": context,
    }
    if identity is not None and type_ != "marketing.spend_recorded":
        doc["identity"] = identity
    return doc


@st.composite
def touchpoint_documents(
    draw: st.DrawFn, prefix: str = "e", min_size: int = 1, max_size: int = 30,
    identities: list[dict[str, str]] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Distinct touchpoints (unique event ids) of one person (or of the given identities)."""
    people = identities or IDENTITIES
    picks = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(TYPES) - 1),
                st.integers(0, 240),
                st.integers(0, len(people) - 1),
                st.integers(0, 7**12),
            ),
            min_size=min_size,
            max_size=max_size,
        )
    )
    return [
        document(f"{prefix}{i}", TYPES[t], slot, people[who], PROPERTIES[TYPES[t]](v),
                 context_for(v))
        for i, (t, slot, who, v) in enumerate(picks)
    ]  # fmt: skip


@st.composite
def with_duplicates(draw: st.DrawFn, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents plus exact re-deliveries and conflicting duplicates."""
    out = list(docs)
    for doc in draw(st.lists(st.sampled_from(docs), max_size=4)):
        out.append(dict(doc))
    for doc in draw(st.lists(st.sampled_from(docs), max_size=3)):
        variant = dict(doc)
        # Same event id, different content: another time or another context.
        if draw(st.booleans()):
            variant["occurred_at"] = (T0 + timedelta(hours=12 * draw(st.integers(0, 240)))
                                      ).isoformat()  # fmt: skip
        else:
            variant["context"] = {"campaign_id": draw(st.sampled_from(["c1", "c9"]))}
        out.append(variant)
    return out


def parse(docs: list[dict[str, Any]]) -> list[Touchpoint]:
    """Validated touchpoints."""
    return [parse_touchpoint(doc) for doc in docs]


@st.composite
def journeys(draw: st.DrawFn, max_size: int = 30) -> list[Touchpoint]:
    """One person's touchpoints, with duplicates, in a random order."""
    docs = draw(with_duplicates(draw(touchpoint_documents(max_size=max_size))))
    return parse(draw(st.permutations(docs)))
