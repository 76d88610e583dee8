"""The customer timeline: every kind of item about a customer, newest first, in one cursor order.

Each source is sliced in the database (LIMIT on its own index) and the slices are merged by one UNION ALL; the
cursor holds (time, kind, id), so items with equal times are neither skipped nor repeated across pages.
A domain adds its kinds with one `register(Source(...))` call each, in its own services module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pypika_tortoise.terms import Parameterizer
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import AwaitableQuery, ValuesListQuery

from core import domains
from services.pagination import Page, decode_cursor, encode_cursor, page_size


@dataclass(frozen=True)
class Source:
    kind: str  # a TimelineKind value
    model: type[Model]
    time_field: str
    describe: Callable[[Any], tuple[str, str | None]]  # (title, detail)
    customer_field: str = "customer_id"
    node: str | None = None  # the GraphQL Node type a row of this kind is shown as (None: it has none)
    # The row's field holding the primary key of that Node: "id" when the row is the Node itself; another
    # field links the item to the row it is about (a complaint event's complaint, "complaint_id"), which is
    # then fetched for a whole page at once (TimelineItem.subject).
    node_key: str = "id"


@dataclass(frozen=True)
class Entry:
    kind: str
    at: datetime
    id: int
    title: str
    detail: str | None
    row: Any
    node: str | None = None
    node_id: int | None = None  # the primary key of the `node` this item is about
    node_key: str = "id"  # "id": `row` is that node's own row

    @property
    def row_is_node(self) -> bool:
        return self.node is not None and self.node_key == "id"

    def key(self, rank: int) -> tuple:
        return (self.at, rank, self.id)


SOURCES: list[Source] = []


def register(source: Source) -> None:
    if any(s.kind == source.kind for s in SOURCES):
        raise ValueError(f"timeline kind {source.kind} is registered already")
    SOURCES.append(source)
    # The rank (the order of kinds at equal times) must not depend on which module was imported first.
    SOURCES.sort(key=lambda s: s.kind)


def sources() -> list[Source]:
    """Every kind's source; the domains register them in their services modules."""
    domains.modules("services")
    return SOURCES


def _rank(kind: str) -> int:
    return next(i for i, s in enumerate(SOURCES) if s.kind == kind)


def _beyond(source: Source, rank: int, cursor: tuple, forward: bool) -> Q:
    """Rows of one source after the cursor (forward = older) or before it (backward = newer)."""
    at, cursor_rank, cursor_id = cursor
    t = source.time_field
    strictly, inclusive = ("lt", "lte") if forward else ("gt", "gte")
    if rank == cursor_rank:
        return Q(**{f"{t}__{strictly}": at}) | Q(**{t: at, f"id__{strictly}": cursor_id})
    earlier_kind = rank < cursor_rank
    return Q(**{f"{t}__{inclusive if earlier_kind == forward else strictly}": at})


def _decode(cursor: str, argument: str) -> tuple:
    at, kind, pk = decode_cursor(cursor, 3, argument)
    return at, _rank(kind) if any(s.kind == kind for s in SOURCES) else -1, pk


class _Statement:
    """One SQL statement put together from the sources' querysets, their parameters numbered in one sequence
    (PostgreSQL's $1, $2... run on across the parts). pypika's own UNION is not used: pypika-tortoise 0.6 renders
    its members without their dialect (PostgreSQL would get `?` placeholders)."""

    def __init__(self) -> None:
        self.db = SOURCES[0].model._meta.db  # the sources share one database: a statement joins them
        self.ctx = self.db.query_class.SQL_CONTEXT.copy(parameterizer=Parameterizer())

    def part(self, qs: AwaitableQuery) -> str:
        qs.sql()  # builds qs.query
        return qs.query.get_sql(self.ctx)

    def param(self, value: Any) -> str:
        return self.ctx.parameterizer.create_param(value).get_sql(self.ctx)

    async def rows(self, sql: str) -> list:
        return (await self.db.execute_query(sql, self.ctx.parameterizer.values))[1]


def _keys(
    source: Source, rank: int, customer_id: int, size: int, forward: bool, after: tuple | None, before: tuple | None
) -> ValuesListQuery:
    """The keys (time, id) of one source's slice: at most `size` rows beyond the cursors, on its own index."""
    qs = source.model.filter(**{source.customer_field: customer_id})
    if after is not None:
        qs = qs.filter(_beyond(source, rank, after, forward=True))
    if before is not None:
        qs = qs.filter(_beyond(source, rank, before, forward=False))
    direction = "-" if forward else ""
    return (
        qs.order_by(f"{direction}{source.time_field}", f"{direction}id")
        .limit(size)
        .values_list(source.time_field, "id")
    )


def _entry(source: Source, row: Any) -> Entry:
    node_id = getattr(row, source.node_key) if source.node else None
    at = getattr(row, source.time_field)
    return Entry(source.kind, at, row.id, *source.describe(row), row, source.node, node_id, source.node_key)


async def page(
    customer_id: int,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[Entry]:
    """One page of a customer's timeline. The caller has fetched the customer through the customers
    service already, which is where its visibility is checked.

    One statement finds the page's keys: each source's slice (LIMIT size + 1 on its own index), merged by UNION
    ALL in the cursor order and cut to size + 1. Then one statement per kind on the page fetches its rows."""
    sources()
    size, from_end = page_size(first, last)
    after_key = _decode(after, "after") if after else None
    before_key = _decode(before, "before") if before else None
    forward = not from_end
    keys = []
    if size:
        statement = _Statement()
        # SQLite takes a LIMITed member of a UNION only inside a subquery. The rank is this module's own integer.
        union = " UNION ALL ".join(
            f'SELECT {rank} "rank","0" "at","1" "id" FROM ('
            + statement.part(_keys(source, rank, customer_id, size + 1, forward, after_key, before_key))
            + f') "s{rank}"'
            for rank, source in enumerate(SOURCES)
        )
        order = "DESC" if forward else "ASC"
        keys = await statement.rows(
            f'{union} ORDER BY "at" {order},"rank" {order},"id" {order} LIMIT {statement.param(size + 1)}'
        )
    more = len(keys) > size
    ids: dict[int, list[int]] = {}
    for key in keys[:size]:
        ids.setdefault(key["rank"], []).append(key["id"])
    found = await asyncio.gather(*[SOURCES[rank].model.filter(id__in=pks) for rank, pks in ids.items()])
    entries = [_entry(SOURCES[rank], row) for rank, rows in zip(ids, found, strict=True) for row in rows]
    ranks = {s.kind: i for i, s in enumerate(SOURCES)}
    items = sorted(entries, key=lambda e: e.key(ranks[e.kind]), reverse=True)  # newest first
    cursors = [encode_cursor([e.at, e.kind, e.id]) for e in items]

    async def count() -> int:
        statement = _Statement()
        counts = " + ".join(
            f"({statement.part(s.model.filter(**{s.customer_field: customer_id}).count())})" for s in SOURCES
        )
        return (await statement.rows(f'SELECT {counts} "count"'))[0]["count"]

    has_next, has_previous = (more, after is not None) if forward else (before is not None, more)
    return Page(items, cursors, has_next, has_previous, count)


def short(text: str | None, limit: int = 200) -> str | None:
    """A detail line: free text cut to `limit` characters."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kinds() -> Sequence[str]:
    return [s.kind for s in sources()]
