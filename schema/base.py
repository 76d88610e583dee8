"""Shared GraphQL types: Node and global ids, connections, user errors, API errors."""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Generic, TypeVar

import strawberry
from graphql import GraphQLError
from tortoise.queryset import QuerySet

from core import domains
from services import clock
from services.access import Caller
from services.errors import DomainError, ErrorCode as DomainErrorCode
from services.pagination import Page

T = TypeVar("T")

ErrorCode = strawberry.enum(DomainErrorCode, name="ErrorCode")


def _parse_datetime(value: object) -> datetime:
    """Times must carry their offset; every one is turned into UTC at the edge."""
    return clock.parse(value)


def _serialize_datetime(value: datetime) -> str:
    return value.isoformat()


DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="Date with time (ISO-8601) and a UTC offset; answered in UTC.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class DateRange:
    from_: datetime = strawberry.field(name="from")
    to: datetime


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Node]:
        """Each Node type fetches its own ids, keeping only what `caller` may see (the rest is null)."""
        raise NotImplementedError(f"{cls.__name__} does not say how to fetch it by id")

    @classmethod
    async def nodes_in(cls, queryset: QuerySet, pks: list[int]) -> dict[int, Node]:
        """The common case: the rows of a visibility-scoped queryset, converted with `from_model`."""
        return {row.pk: cls.from_model(row) for row in await queryset.filter(id__in=pks)}


def to_global_id(type_name: str, pk: int | str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("="))


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """(type name, primary key), or None when the id is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    return (type_name, pk) if sep and type_name and pk else None


# The largest primary key a table holds (a 32-bit integer column on PostgreSQL).
MAX_PK = 2**31 - 1


def pk_of(text: str) -> int | None:
    """The primary key a global id's key part names: ASCII digits within the column's range, else None (a larger
    number, or digits like "²" that str.isdigit() accepts and int() refuses, failed in the database: a 500)."""
    if not (text.isascii() and text.isdigit()):
        return None
    pk = int(text)
    return pk if pk <= MAX_PK else None


def int_pk(global_id: str, type_name: str) -> int | None:
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != type_name:
        return None
    return pk_of(parsed[1])


def require_pk(global_id: str, type_name: str, field: str | list[str] = "id") -> int:
    """The primary key behind an id given in a mutation input; NOT_FOUND when it names something else."""
    pk = int_pk(global_id, type_name)
    if pk is None:
        raise DomainError(DomainErrorCode.NOT_FOUND, f"{type_name} not found", field)
    return pk


@strawberry.type(description="A business-rule failure of a mutation, tied to the input field that caused it.")
class UserError:
    field: list[str] | None
    message: str
    code: ErrorCode

    @classmethod
    def from_domain(cls, error: DomainError) -> list[UserError]:
        return [cls(field=e.field, message=e.message, code=e.code) for e in error.errors]


@strawberry.input(description="The thing to delete, by its global id.")
class DeleteInput:
    id: strawberry.ID


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None = strawberry.field(default=None, description="The id of what was deleted.")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    page_info: PageInfo
    edges: list[Edge[T]]
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All items matching, regardless of paging.")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def of(cls, page: Page, convert: Callable[[object], T]) -> Connection[T]:
        edges = [Edge(cursor=c, node=convert(item)) for c, item in zip(page.cursors, page.items, strict=True)]
        return cls(
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            edges=edges,
            _count=page.count,
        )


def api_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def unauthenticated() -> GraphQLError:
    return api_error("UNAUTHENTICATED", "Sign in first: send an Authorization: Bearer <token> header")


def forbidden(message: str = "You are not allowed to do this") -> GraphQLError:
    return api_error("FORBIDDEN", message)


@cache
def node_types() -> dict[str, type[Node]]:
    """GraphQL type name -> Node type, for every Node type declared in a domain's schema module."""
    found: dict[str, type[Node]] = {}
    for module in domains.modules("schema"):
        for value in vars(module).values():
            declared_here = inspect.isclass(value) and value.__module__ == module.__name__
            if declared_here and issubclass(value, Node) and value is not Node:
                found[value.__strawberry_definition__.name] = value
    return found


def registered_enum(name: str, registered: Sequence[str], not_built: Sequence[str]) -> type[Enum]:
    """An API enum whose values the domains register (job kinds, timeline kinds), plus the values the
    contract names whose domain has not landed yet; a value in both means the list of those must shrink."""
    built = set(registered) & set(not_built)
    if built:
        raise RuntimeError(f"{name} values {sorted(built)} are registered now: delete them from the not-built list")
    values = sorted([*registered, *not_built])
    return strawberry.enum(Enum(name, {value: value for value in values}), name=name)
