"""Tandem's touchpoint vocabulary: the envelope, every event type, and decoding at the door.

This package is the contract publishing tools code against. It has no runtime dependency on
Tandem's engine (`streams`).
"""

from events.decode import MAX_MESSAGE_BYTES, ReasonCode, Rejection, decode_touchpoint
from events.envelope import Context, Domain, Envelope, Identity
from events.vocabulary import (
    ALL_TYPES,
    LEDGER_TYPES,
    MARKETING_TYPES,
    SALES_TYPES,
    TYPE_NAMES,
    Touchpoint,
    parse_touchpoint,
    touchpoint_from_json,
    touchpoint_to_json,
)

__all__ = [
    "ALL_TYPES",
    "LEDGER_TYPES",
    "MARKETING_TYPES",
    "MAX_MESSAGE_BYTES",
    "SALES_TYPES",
    "TYPE_NAMES",
    "Context",
    "Domain",
    "Envelope",
    "Identity",
    "ReasonCode",
    "Rejection",
    "Touchpoint",
    "decode_touchpoint",
    "parse_touchpoint",
    "touchpoint_from_json",
    "touchpoint_to_json",
]
