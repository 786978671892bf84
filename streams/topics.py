"""The catalogue of Tandem's Kafka topics: names, partitions, retention and compaction.

One place, so that `tandem topics create`, the Faust app, the tests and the docs agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.topics import MARKETING as MARKETING  # the contract owns the touchpoint topics
from events.topics import SALES as SALES

DAY_MS = 24 * 60 * 60 * 1000
DEADLETTER_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    """A Tandem topic as it should exist on the broker."""

    name: str
    purpose: str
    partitions: int | None  # None: the configured customer partition count
    config: dict[str, str] = field(default_factory=dict)
    key: str = "customer id"

    def partition_count(self, default: int) -> int:
        return self.partitions if self.partitions is not None else default


def _retained(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


DEADLETTER = "touchpoints.deadletter"
ACCEPTED = "touchpoints.accepted"
RESOLVED = "touchpoints.resolved"
JOURNEYS = "journeys.state"
HANDOFF = "signals.handoff"
NURTURE = "signals.nurture"
ALERTS = "signals.alerts"
WEBHOOK_DEADLETTER = "signals.webhook-deadletter"
SUPPRESSIONS = "privacy.suppressions"

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        MARKETING,
        "inbound marketing touchpoints, published by marketing tools",
        None,
        _retained(30),
        key="any identifier of the person",
    ),
    TopicSpec(
        SALES,
        "outbound sales touchpoints, published by sales tools",
        None,
        _retained(30),
        key="any identifier of the person",
    ),
    # Dead letters carry the original bytes base64-encoded (4/3 larger): room for 1 MiB input.
    TopicSpec(
        DEADLETTER,
        "rejected input: original bytes, origin, reason code and message",
        1,
        {**_retained(30), "max.message.bytes": str(DEADLETTER_MAX_BYTES)},
        key="origin topic/partition/offset",
    ),
    TopicSpec(
        ACCEPTED,
        "valid touchpoints on their way to identity resolution (one partition: "
        "the identity sequencer)",
        1,
        _retained(7),
        key="event id",
    ),
    TopicSpec(
        RESOLVED,
        "touchpoints and journey moves keyed by the resolved customer id",
        None,
        _retained(7),
    ),
    TopicSpec(
        JOURNEYS,
        "latest journey snapshot per customer (compacted)",
        None,
        {
            "cleanup.policy": "compact",
            "min.cleanable.dirty.ratio": "0.1",
            "segment.ms": str(DAY_MS),
        },
    ),
    # Not prefixed by the app id, unlike the tables' changelogs: a worker rebuilding under a
    # fresh app id must still know who was forgotten (docs/privacy.md).
    TopicSpec(
        SUPPRESSIONS,
        "suppression digests of forgotten people (the changelog of the worker's suppressions "
        "table, compacted, kept for good)",
        1,
        {"cleanup.policy": "compact"},
        key="sha256 digest of an identifier",
    ),
    TopicSpec(HANDOFF, "hand-off signals for sales tooling", None, _retained(90)),
    TopicSpec(NURTURE, "nurture signals for marketing automation", None, _retained(90)),
    TopicSpec(ALERTS, "alerts: hand-off SLA breaches and escalations", None, _retained(90)),
    TopicSpec(
        WEBHOOK_DEADLETTER,
        "signals a webhook receiver did not accept after the last attempt: signal, URL, "
        "attempts, last error (`tandem webhooks`)",
        1,
        _retained(30),
        key="signal id",
    ),
)

TOUCHPOINT_TOPICS = (MARKETING, SALES)
SIGNAL_TOPICS = (HANDOFF, NURTURE, ALERTS)


def spec(name: str) -> TopicSpec:
    """The spec of a catalogue topic by its unprefixed name."""
    for topic in CATALOGUE:
        if topic.name == name:
            return topic
    known = ", ".join(t.name for t in CATALOGUE)
    raise KeyError(f"unknown topic {name!r}; Tandem's topics are: {known}")


def full_name(name: str, prefix: str) -> str:
    """The topic's name on the broker, with the deployment's prefix."""
    return f"{prefix}{name}"
