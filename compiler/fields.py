"""Field errors of the files users write (llmcc.yaml, policies, key files): name the unknown key.

pydantic lists a misspelt key (``enviroments:``) as two errors, the missing
real field first ("environments: Field required") and the extra key after it.
The extra key is the cause, so it is the one we report, with the closest
known field name as a suggestion (issue 10, small ones).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from compiler.suggestions import suggestion, unknown_field

Loc = tuple[str | int, ...]


def first_error(e: PydanticValidationError, model: type[BaseModel]) -> tuple[Loc, str]:
    """The error to show, as (location, message): an unknown field first, since it usually explains a missing one.

    The message does not repeat the location; the caller prints both.
    """
    errors = e.errors()
    extra = [err for err in errors if err["type"] == "extra_forbidden"]
    err = extra[0] if extra else errors[0]
    loc: Loc = tuple(err["loc"])
    if err["type"] != "extra_forbidden":
        return loc, str(err["msg"])
    return loc, "unknown field" + suggestion(loc[-1], fields_at(model, loc[:-1]))


def pattern_mismatch(e: PydanticValidationError, loc: Loc) -> bool:
    """Whether the error at ``loc`` is a string failing its ``pattern`` (by pydantic's error type, not its words)."""
    return any(tuple(err["loc"]) == loc and err["type"] == "string_pattern_mismatch" for err in e.errors())


def fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` ([] when none is)."""
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return []
    tp = _model_of(tp)
    return list(tp.model_fields) if tp is not None else []


def _step(tp: Any, part: str | int) -> Any:  # noqa: ANN401 - a typing form
    model = _model_of(tp)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field is not None else None
    for arm in _arms(tp):
        origin = get_origin(arm)
        if origin in (list, tuple) and isinstance(part, int):
            return get_args(arm)[0]
        if origin is dict:
            return get_args(arm)[1]
    return None


def _arms(tp: Any) -> list[Any]:  # noqa: ANN401 - a typing form
    if get_origin(tp) is Annotated:
        return _arms(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        return [a for arg in get_args(tp) for a in _arms(arg)]
    return [tp]


def _model_of(tp: Any) -> type[BaseModel] | None:  # noqa: ANN401 - a typing form
    for arm in _arms(tp):
        if isinstance(arm, type) and issubclass(arm, BaseModel):
            return arm
    return None


__all__ = ["first_error", "pattern_mismatch", "suggestion", "unknown_field"]
