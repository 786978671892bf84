"""Frozen models built from values the core made itself, without pydantic's validation.

The fold builds tens of thousands of small frozen models per replay (stage changes, a signal
trigger's facts, its engagement score and breakdown items, touchpoint summaries), every value
already of its field's type. Validating them again costs more than the step that made them.
`trusted(Model, **values)` is `Model(**values)` for such values: the same `__dict__`, the same
fields set, no copies — the caller passes every field, in declaration order, each of its exact
type (a float field gets a float, not an int: pydantic would have converted it) and never a
list it keeps changing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

Model = TypeVar("Model", bound=BaseModel)

_FIELDS: dict[type[BaseModel], tuple[str, ...] | None] = {}


def _fields(model: type[BaseModel]) -> tuple[str, ...] | None:
    """The model's fields in declaration order (None: a model `trusted` does not build
    itself: one with a post-init or extra fields)."""
    if model.__pydantic_post_init__ or model.model_config.get("extra") == "allow":
        return None
    return tuple(model.model_fields)


_set = object.__setattr__


def trusted(model: type[Model], /, **values: Any) -> Model:
    """`model(**values)` without validation, for values of every field in declaration order;
    any other call goes through `model_construct`, which fills the defaults."""
    try:
        fields = _FIELDS[model]
    except KeyError:
        fields = _FIELDS[model] = _fields(model)
    if fields is None or tuple(values) != fields:
        return model.model_construct(**values)
    built = model.__new__(model)
    _set(built, "__dict__", values)
    _set(built, "__pydantic_fields_set__", set(fields))
    _set(built, "__pydantic_extra__", None)
    _set(built, "__pydantic_private__", None)
    return built
