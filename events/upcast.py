"""Upcasters: an event of an earlier `schema_version`, rewritten as the next version says it.

One function per version step and type, on the document (a JSON object as a dict), so that
steps chain (1 → 2 → 3) and each stays as small as the change it undoes. The decoder validates
an event with the models of the version it was *sent* in (so errors name what was sent), then
upcasts it step by step to the current version: the engine only ever sees current versions.

    sales.lead_qualified 1 → 2   four top-level BANT booleans (each optional, null allowed)
                                 become ``properties.bant`` with ``yes`` / ``no`` / ``unknown``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Document = dict[str, Any]
Upcast = Callable[[Document], Document]

BANT_QUESTIONS = ("budget", "authority", "need", "timeline")


def _bant_answer(value: object) -> str:
    # v1 booleans; absent or null is the "don't know" v1 could not say explicitly.
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "unknown"


def lead_qualified_1_to_2(document: Document) -> Document:
    """``sales.lead_qualified`` v1 → v2: BANT moves into ``properties.bant`` (tri-state)."""
    properties = dict(document.get("properties") or {})
    bant = {question: _bant_answer(properties.pop(question, None)) for question in BANT_QUESTIONS}
    return {**document, "schema_version": 2, "properties": {**properties, "bant": bant}}


UPCASTS: dict[tuple[str, int], Upcast] = {
    ("sales.lead_qualified", 1): lead_qualified_1_to_2,
}
"""(type, version) → the step to version + 1."""

CURRENT_VERSIONS: dict[str, int] = {"sales.lead_qualified": 2}
"""Types with more than one version, and their current one (every other type is at 1)."""


def current_version(type_name: str) -> int:
    """The version the engine works with for `type_name`."""
    return CURRENT_VERSIONS.get(type_name, 1)


def supported_versions(type_name: str) -> tuple[int, ...]:
    """Every version Tandem accepts for `type_name`, oldest first."""
    return tuple(range(1, current_version(type_name) + 1))


def upcast(document: Document, version: int) -> Document:
    """A valid document of `version` rewritten, step by step, in its type's current version."""
    type_name = str(document.get("type"))
    while version < current_version(type_name):
        document = UPCASTS[(type_name, version)](document)
        version += 1
    return document
