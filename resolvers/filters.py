"""GraphQL filter inputs -> service filter dataclasses, by field name.

The service dataclass (services.customers.CustomerFilter, ...) is the one definition of what a list can be
filtered by; the strawberry input mirrors it field for field (same Python names) and adds descriptions. A
`FilterMapping` per domain declares only what the names cannot say: which fields hold global ids (the
service filter gets primary keys) and which need a conversion of their own. Everything else is copied by
name, enum values converted to what the service field is annotated with. `to_input_json()` is the way back:
a stored service filter as the JSON a client would send for the input (a saved segment's `filter`).

`FilterMapping.problems()` lists every way an input and its service filter disagree; a unit test keeps that
empty for every domain, so the two cannot drift apart.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, Literal, TypeVar

import strawberry
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.types.field import StrawberryField

from schema.base import int_pk, to_global_id
from services.errors import DomainError, ErrorCode, not_found
from services.filters import field_types

__all__ = ["Convert", "FilterMapping", "GlobalId"]

F = TypeVar("F")
# A field's own conversion: (input value, error path of the field) -> the service filter's fields to set.
Convert = Callable[[Any, list[str]], Mapping[str, Any]]

_names = NameConverter()
# Values of one list field of a filter (statuses, tags, tiers, ...). Each tag and tier is one more condition of
# the SQL statement, and a thousand of them overflow the query builder's recursion (a 500): refused before.
MAX_LIST_VALUES = 100


@dataclass(frozen=True)
class GlobalId:
    """An input field holding the global id of a `type_name` node; the service filter holds its primary key.
    An id of anything else is NOT_FOUND "<what> not found" on the field's path."""

    type_name: str
    what: str | None = None  # the subject of the NOT_FOUND message; the type name when not given

    def pk(self, global_id: str, path: list[str]) -> int:
        pk = int_pk(global_id, self.type_name)
        if pk is None:
            raise not_found(self.what or self.type_name, path)
        return pk


@dataclass(frozen=True)
class FilterMapping(Generic[F]):
    """How one domain's GraphQL filter input becomes its service filter."""

    input: type  # the @strawberry.input class
    service: type[F]  # the service filter dataclass
    ids: Mapping[str, GlobalId] = field(default_factory=dict)
    custom: Mapping[str, Convert] = field(default_factory=dict)

    def to_service(self, given: Any | None, path: tuple[str, ...] = ("filter",)) -> F:
        """The service filter for `given` (an instance of `input`, or None for no filter)."""
        if given is None:
            return self.service()
        types_ = field_types(self.service)
        values: dict[str, Any] = {}
        for f in self._fields():
            name = f.python_name
            value = getattr(given, name)
            if value is None or value is strawberry.UNSET:
                continue
            where = [*path, _names.get_graphql_name(f)]
            if isinstance(value, list) and len(value) > MAX_LIST_VALUES:
                raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"At most {MAX_LIST_VALUES} values", where)
            if name in self.custom:
                values.update(self.custom[name](value, where))
            elif name in self.ids:
                values[name] = self.ids[name].pk(value, where)
            else:
                values[name] = _as_service(value, types_[name])
        return self.service(**values)

    def to_input_json(self, service_filter: F) -> dict[str, Any]:
        """The way back from `to_service`: the fields of `service_filter` that are set, as the JSON a client
        sends for `input` (GraphQL field names and enum values, global ids, decimals and times as strings), so
        that a stored filter (a saved segment's) can be shown and sent back as it is."""
        out: dict[str, Any] = {}
        for f in self._fields():
            name = f.python_name
            value = getattr(service_filter, name)
            if value is None:
                continue
            if name in self.custom:
                raise TypeError(f"{self.input.__name__}.{name} has a conversion of its own, with no way back")
            if name in self.ids:
                json_value = to_global_id(self.ids[name].type_name, value)
            else:
                json_value = _as_input_json(value, _unwrap_optional(f.type))
            out[_names.get_graphql_name(f)] = json_value
        return out

    def problems(self) -> list[str]:
        """Every way `input` and `service` disagree; empty when each input field has a same-named service field
        of a fitting type, and every id field is declared."""
        types_ = field_types(self.service)
        fields = {f.python_name: f for f in self._fields()}
        label = f"{self.input.__name__}.{{}}"
        problems = [
            f"{label.format(name)} is declared in ids/custom but is no input field"
            for name in [*self.ids, *self.custom]
            if name not in fields
        ]
        problems += [
            f"{label.format(name)} is declared both in ids and custom" for name in self.ids if name in self.custom
        ]
        for name, f in fields.items():
            if name not in types_:
                problems.append(f"{label.format(name)} has no same-named field in {self.service.__qualname__}")
                continue
            if name in self.custom:
                continue
            input_type = _unwrap_optional(f.type)
            if name in self.ids:
                if input_type is not strawberry.ID or types_[name] is not int:
                    problems.append(f"{label.format(name)} is in ids, so it must be an ID mapped to an int")
            elif input_type is strawberry.ID:
                problems.append(f"{label.format(name)} is an ID: declare it in ids (or custom)")
            elif mismatch := _mismatch(input_type, types_[name]):
                problems.append(f"{label.format(name)}: {mismatch}")
        return problems

    def _fields(self) -> list[StrawberryField]:
        definition = get_object_definition(self.input, strict=True)
        if not definition.is_input:
            raise TypeError(f"{self.input.__name__} is not a strawberry input")
        return definition.fields


def _as_service(value: Any, annotation: Any) -> Any:
    """An input value as the service field annotated `annotation` holds it (enums converted by value)."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return [_as_service(v, item) for v in value]
    plain = value.value if isinstance(value, Enum) else value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return value if isinstance(value, annotation) else annotation(plain)
    if origin is Literal or annotation is str:
        return plain
    return value


def _as_input_json(value: Any, input_type: Any) -> Any:
    """A service filter value as JSON for an input field of `input_type`."""
    if isinstance(input_type, StrawberryList):
        return [_as_input_json(v, _unwrap_optional(input_type.of_type)) for v in value]
    plain = value.value if isinstance(value, Enum) else value
    if isinstance(input_type, StrawberryEnumDefinition):
        return next(v.name for v in input_type.values if v.value == plain)
    if isinstance(plain, datetime):
        return plain.astimezone(UTC).isoformat()
    if isinstance(plain, date | Decimal):
        return str(plain)
    return plain


def _unwrap_optional(t: Any) -> Any:
    return t.of_type if isinstance(t, StrawberryOptional) else t


def _mismatch(input_type: Any, annotation: Any) -> str | None:
    """Why an input field of `input_type` cannot fill a service field annotated `annotation` (None: it can)."""
    origin = typing.get_origin(annotation)
    if isinstance(input_type, StrawberryList) or origin is list:
        if not (isinstance(input_type, StrawberryList) and origin is list):
            return f"a list on one side only ({input_type} vs {annotation})"
        return _mismatch(_unwrap_optional(input_type.of_type), typing.get_args(annotation)[0])
    if isinstance(input_type, StrawberryEnumDefinition):
        values = {v.value for v in input_type.values}
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            allowed = {m.value for m in annotation}
        elif origin is Literal:
            allowed = set(typing.get_args(annotation))
        elif annotation is str:
            return None
        else:
            return f"enum {input_type.name} cannot fill {annotation}"
        missing = values - allowed
        return f"{input_type.name} values {sorted(missing)} are not valid for {annotation}" if missing else None
    if input_type is not annotation:
        return f"{input_type} cannot fill {annotation}"
    return None
