"""The customer timeline: every kind of item about a customer, newest first, in one cursor order.

Each source is sliced in the database (LIMIT on its own index) and the slices are merged; the cursor
holds (time, kind, id), so items with equal times are neither skipped nor repeated across pages.
Adding a kind is one `register(...)` call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.models import Model

from models.complaints import Complaint, ComplaintEvent
from models.customers import ChangeEntry, ProductHolding
from models.follow_ups import FollowUp
from models.interactions import Interaction
from models.notes import Note
from services import customers
from services.access import Caller
from services.identity import mask_account
from services.pagination import Page, decode_cursor, encode_cursor, page_size


@dataclass(frozen=True)
class Source:
    kind: str  # a TimelineKind value
    model: type[Model]
    time_field: str
    describe: Callable[[Any], tuple[str, str | None]]  # (title, detail)
    customer_field: str = "customer_id"


@dataclass(frozen=True)
class Entry:
    kind: str
    at: datetime
    id: int
    title: str
    detail: str | None
    row: Any

    def key(self, rank: int) -> tuple:
        return (self.at, rank, self.id)


SOURCES: list[Source] = []


def register(source: Source) -> None:
    if any(s.kind == source.kind for s in SOURCES):
        raise ValueError(f"timeline kind {source.kind} is registered already")
    SOURCES.append(source)


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


async def _slice(
    source: Source, rank: int, customer_id: int, size: int, forward: bool, after: tuple | None, before: tuple | None
) -> list[Entry]:
    qs = source.model.filter(**{source.customer_field: customer_id})
    if after is not None:
        qs = qs.filter(_beyond(source, rank, after, forward=True))
    if before is not None:
        qs = qs.filter(_beyond(source, rank, before, forward=False))
    direction = "-" if forward else ""
    rows = await qs.order_by(f"{direction}{source.time_field}", f"{direction}id").limit(size)
    return [Entry(source.kind, getattr(r, source.time_field), r.id, *source.describe(r), r) for r in rows]


async def page(
    caller: Caller,
    customer_id: int,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[Entry]:
    await customers.get(caller, customer_id)
    size, from_end = page_size(first, last)
    after_key = _decode(after, "after") if after else None
    before_key = _decode(before, "before") if before else None
    forward = not from_end
    slices = (
        await asyncio.gather(
            *[
                _slice(source, rank, customer_id, size + 1, forward, after_key, before_key)
                for rank, source in enumerate(SOURCES)
            ]
        )
        if size
        else []
    )
    ranks = {s.kind: i for i, s in enumerate(SOURCES)}
    merged = sorted((e for part in slices for e in part), key=lambda e: e.key(ranks[e.kind]), reverse=forward)
    more = len(merged) > size
    items = merged[:size]
    if from_end:
        items.reverse()
    cursors = [encode_cursor([e.at, e.kind, e.id]) for e in items]

    async def count() -> int:
        counts = await asyncio.gather(*[s.model.filter(**{s.customer_field: customer_id}).count() for s in SOURCES])
        return sum(counts)

    has_next, has_previous = (more, after is not None) if forward else (before is not None, more)
    return Page(items, cursors, has_next, has_previous, count)


def _short(text: str | None, limit: int = 200) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


register(Source("INTERACTION", Interaction, "occurred_at", lambda r: (r.subject, _short(r.outcome or r.content))))
register(Source("FOLLOW_UP", FollowUp, "created_at", lambda r: (r.title, _short(r.description))))
register(Source("NOTE", Note, "created_at", lambda r: (f"Note ({r.visibility.value.lower()})", _short(r.body))))
register(
    Source(
        "COMPLAINT",
        Complaint,
        "received_at",
        lambda r: (f"{r.reference_no} {r.summary}", f"{r.category.value} / {r.reason.value}"),
    )
)
register(
    Source(
        "COMPLAINT_EVENT",
        ComplaintEvent,
        "at",
        lambda r: (f"Complaint {r.type.value.lower().replace('_', ' ')}", _short(r.message)),
        customer_field="complaint__customer_id",
    )
)
register(Source("CHANGE", ChangeEntry, "at", lambda r: (f"{r.field} changed", None)))
register(
    Source(
        "HOLDING",
        ProductHolding,
        "created_at",
        lambda r: (f"{r.product.value} account {mask_account(r.account_no)}", r.status.value),
    )
)


def kinds() -> Sequence[str]:
    return [s.kind for s in SOURCES]
