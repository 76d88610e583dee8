"""Relay-style pagination sliced in the database with keyset cursors.

A cursor holds the sort-key values of its row, so pages stay continuous while rows are added
and deleted, and every page is one indexed LIMIT query however deep it is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from services.errors import DomainError, ErrorCode

DEFAULT_PAGE, MAX_PAGE = 20, 100
T = TypeVar("T")


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool = False


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next: bool
    has_previous: bool
    count: Callable[[], Awaitable[int]]


def page_size(first: int | None, last: int | None) -> tuple[int, bool]:
    """The number of rows asked for and whether they are taken from the end."""
    if first is not None and last is not None:
        raise DomainError(ErrorCode.INVALID, "Give either first or last, not both", "first")
    for name, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise DomainError(ErrorCode.INVALID, f"{name} must not be negative", name)
        if value is not None and value > MAX_PAGE:
            raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"{name} must be at most {MAX_PAGE}", name)
    if last is not None:
        return last, True
    return (DEFAULT_PAGE if first is None else first), False


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "t" in value:
            text = value["t"]
            return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
        if "d" in value:
            return Decimal(value["d"])
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, width: int, argument: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, TypeError):
        values = None
    if not isinstance(values, list) or len(values) != width:
        raise DomainError(ErrorCode.INVALID, f"{argument} is not a cursor from this list", argument)
    return [_decode_value(v) for v in values]


def _beyond(order: Sequence[OrderKey], values: Sequence[Any], forward: bool) -> Q:
    """Rows strictly after (forward) or before the row whose sort key is `values`."""
    clauses = []
    for i, key in enumerate(order):
        # Forward through an ascending key, or backward through a descending one, means larger values.
        op = "gt" if key.descending != forward else "lt"
        equal = {order[j].field: values[j] for j in range(i)}
        clauses.append(Q(**equal, **{f"{key.field}__{op}": values[i]}))
    return Q(*clauses, join_type=Q.OR)


def _order_by(order: Sequence[OrderKey], reverse: bool) -> list[str]:
    return [("-" if key.descending != reverse else "") + key.field for key in order]


async def paginate(
    qs: QuerySet[T],
    order: Sequence[OrderKey],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[T]:
    """`order` must end with a unique key (usually the primary key) so the ordering is total; keys must not be null."""
    size, from_end = page_size(first, last)
    base = qs
    window = qs
    if after is not None:
        window = window.filter(_beyond(order, decode_cursor(after, len(order), "after"), forward=True))
    if before is not None:
        window = window.filter(_beyond(order, decode_cursor(before, len(order), "before"), forward=False))
    rows = list(await window.order_by(*_order_by(order, reverse=from_end)).limit(size + 1)) if size else []
    more = len(rows) > size
    rows = rows[:size]
    if from_end:
        rows.reverse()
    has_next, has_previous = (
        (more, after is not None and await _exists_beyond(qs, order, after, forward=False))
        if not from_end
        else (before is not None and await _exists_beyond(qs, order, before, forward=True), more)
    )
    return Page(rows, [cursor_of(row, order) for row in rows], has_next, has_previous, base.count)


def cursor_of(row: Any, order: Sequence[OrderKey]) -> str:
    return encode_cursor([_value(row, key.field) for key in order])


def tortoise_order(order: Sequence[OrderKey]) -> tuple[str, ...]:
    return tuple(_order_by(order, reverse=False))


async def _exists_beyond(qs: QuerySet, order: Sequence[OrderKey], cursor: str, forward: bool) -> bool:
    """Whether any row lies on the other side of (or at) the cursor: the page is not at that end of the list."""
    values = decode_cursor(cursor, len(order), "after" if not forward else "before")
    return await qs.filter(~_beyond(order, values, forward=not forward)).exists()


def _value(row: Any, path: str) -> Any:
    value = row
    for part in path.split("__"):
        value = getattr(value, part)
    return value
