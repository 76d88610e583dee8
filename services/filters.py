"""List filters as plain data: a JSON-safe form of a service filter dataclass and the way back.

A service filter (CustomerFilter, ComplaintFilter, ...) is a dataclass whose fields are all optional; it is the
one definition of what a list can be filtered by. `FilterParams` gives it `to_params()` (for a job's params or
a saved segment, stored as JSON) and `from_params()` (typed from the field annotations). A stored filter that
no longer parses - a field since removed, an enum value since renamed - is an INVALID DomainError naming the
field, never a crash later on.

Supported field annotations: str, bool, int, float, Decimal, datetime, date, an Enum, a Literal of strings,
list[...] of any of those, each optionally `| None`.

JSON form: only fields that are set (not None); enums by value, Decimal as a string, datetime as ISO-8601 in
UTC, date as ISO-8601, lists of those.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal, Self

from services import clock
from services.errors import DomainError, DomainErrors, invalid

__all__ = ["FilterParams", "field_types", "from_params", "to_params"]


class FilterParams:
    """Mixin for service filter dataclasses: `to_params()` and `from_params()`, typed from the annotations."""

    def to_params(self) -> dict[str, Any]:
        return to_params(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], path: Sequence[str] = ("filter",)) -> Self:
        return from_params(cls, params, path)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> annotation (with `| None` removed) of a filter dataclass, in field order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    hints = typing.get_type_hints(cls)
    return {f.name: _without_none(hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def to_params(filter_: Any) -> dict[str, Any]:
    """The fields of a filter that are set, as JSON-safe values."""
    return {
        name: _encode(value) for name in field_types(type(filter_)) if (value := getattr(filter_, name)) is not None
    }


def from_params(cls: type, params: Mapping[str, Any], path: Sequence[str] = ("filter",)) -> Any:
    """Rebuild a filter of type `cls` from `to_params()` output. Unknown keys and values that do not fit the
    field's type are INVALID errors on `[*path, camelName]`; every bad field is reported at once."""
    path = list(path)
    if not isinstance(params, Mapping):
        raise invalid(path, "A stored filter must be an object")
    types_ = field_types(cls)
    values: dict[str, Any] = {}
    errors: list[DomainError] = []
    for key, raw in params.items():
        field = [*path, _camel(str(key))]
        if key not in types_:
            errors.append(invalid(field, f"Unknown filter field {key!r}"))
            continue
        if raw is None:
            continue  # an unset field (older params list every field, unset ones as null)
        try:
            values[key] = _decode(raw, types_[key])
        except _BadValue as bad:
            errors.append(invalid(field, f"Filter field {key!r}: {bad}"))
    if errors:
        raise errors[0] if len(errors) == 1 else DomainErrors(errors)
    return cls(**values)


# ---------------------------------------------------------------- encoding


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return _encode(value.value)
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form")
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):  # before date: a datetime is a date
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value!r} has no UTC offset; filters hold times in UTC")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_encode(v) for v in value]
    raise TypeError(f"A filter cannot hold {type(value).__name__} values")


# ---------------------------------------------------------------- decoding


class _BadValue(Exception):
    pass


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"Filter fields hold one type (or None), not {annotation}")
        return rest[0]
    return annotation


def _decode(raw: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if not isinstance(raw, list):
            raise _BadValue(f"expected a list, got {raw!r}")
        return [_decode(v, item) for v in raw]
    if origin is Literal:
        choices = typing.get_args(annotation)
        if isinstance(raw, bool) or raw not in choices:
            raise _BadValue(f"{raw!r} is not one of {', '.join(map(str, choices))}")
        return raw
    if annotation is Any:
        return raw
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return annotation(raw)
        except (ValueError, TypeError):
            choices = ", ".join(str(m.value) for m in annotation)
            raise _BadValue(f"{raw!r} is not one of {choices}") from None
    decode = _DECODERS.get(annotation)
    if decode is None:
        raise TypeError(f"Filter fields cannot be of type {annotation!r}")
    return decode(raw)


def _str(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _BadValue(f"expected a string, got {raw!r}")
    return raw


def _bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise _BadValue(f"expected true or false, got {raw!r}")
    return raw


def _int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _BadValue(f"expected an integer, got {raw!r}")
    return raw


def _float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _BadValue(f"expected a number, got {raw!r}")
    try:
        value = float(raw)
    except OverflowError:
        raise _BadValue(f"{raw!r} is out of range") from None
    if not math.isfinite(value):
        raise _BadValue(f"{raw!r} is not a finite number")
    return value


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _BadValue(f"expected a decimal number as a string, got {raw!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _BadValue(f"{raw!r} is not a decimal number") from None
    if not value.is_finite():
        raise _BadValue(f"{raw!r} is not a finite decimal number")
    return value


def _datetime(raw: Any) -> datetime:
    try:
        return clock.parse(raw)
    except ValueError as error:
        raise _BadValue(str(error)) from None


def _date(raw: Any) -> date:
    if not isinstance(raw, str):
        raise _BadValue(f"expected an ISO-8601 date, got {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _BadValue(f"{raw!r} is not an ISO-8601 date") from None


_DECODERS = {str: _str, bool: _bool, int: _int, float: _float, Decimal: _decimal, datetime: _datetime, date: _date}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
