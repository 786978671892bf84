"""Where touchpoints are published: one Kafka topic per domain.

The contract owns these two names so that publishing tools (and `events.publisher`) need
nothing from Tandem's engine; `streams.topics` imports them from here.
"""

from __future__ import annotations

from typing import Final

from events.envelope import Domain

MARKETING: Final = "touchpoints.marketing"
"""Inbound marketing touchpoints (``marketing.*`` types)."""

SALES: Final = "touchpoints.sales"
"""Outbound sales touchpoints (``sales.*`` types)."""

TOPIC_BY_DOMAIN: Final[dict[Domain, str]] = {"marketing": MARKETING, "sales": SALES}


def domain_of(type_name: str) -> Domain | None:
    """The domain of a type name (``marketing.page_viewed`` -> ``marketing``), if it has one."""
    head = type_name.split(".", 1)[0]
    if head == "marketing":
        return "marketing"
    if head == "sales":
        return "sales"
    return None


def topic_for(type_name: str, prefix: str = "") -> str:
    """The topic (with the deployment's prefix) a touchpoint of this type is published to."""
    domain = domain_of(type_name)
    if domain is None:
        raise ValueError(f"{type_name!r} is neither a marketing.* nor a sales.* type")
    return f"{prefix}{TOPIC_BY_DOMAIN[domain]}"


def domain_of_topic(topic: str, prefix: str = "") -> Domain | None:
    """The domain whose touchpoints a (prefixed) topic carries, or None for other topics."""
    name = topic.removeprefix(prefix) if prefix else topic
    for domain, unprefixed in TOPIC_BY_DOMAIN.items():
        if name == unprefixed:
            return domain
    return None
