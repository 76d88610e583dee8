"""Shared GraphQL types: Node and global ids, connections, user errors, API errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Generic, TypeVar

import strawberry
from graphql import GraphQLError

from services.errors import DomainError
from services.errors import ErrorCode as DomainErrorCode
from services.pagination import Page

T = TypeVar("T")

ErrorCode = strawberry.enum(DomainErrorCode, name="ErrorCode")


def _parse_datetime(value: object) -> datetime:
    """Times must carry their offset; every one is turned into UTC at the edge, so that services and
    the database (SQLite compares times as text) only ever see UTC."""
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string such as 2026-11-28T09:30:00+08:00")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset: add one, e.g. +08:00 or Z")
    return parsed.astimezone(UTC)


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


def int_pk(global_id: str, type_name: str) -> int | None:
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != type_name or not parsed[1].isdigit():
        return None
    return int(parsed[1])


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


def forbidden() -> GraphQLError:
    return api_error("FORBIDDEN", "You are not allowed to do this")
