from __future__ import annotations

from collections.abc import Callable, Sequence

from strawberry.types import Info
from tortoise.models import Model

from schema.base import Connection
from services.access import Caller
from services.pagination import OrderKey, Page, cursor_of, page_size, paginate, tortoise_order


async def caller_of(info: Info) -> Caller:
    return await info.context.caller()


async def customer_children(
    info: Info,
    model: type[Model],
    customer_id: int,
    order: Sequence[OrderKey],
    convert: Callable,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection:
    """A customer's page of some relation. The usual first page goes through per-request loaders, so a list
    of customers each showing it costs a fixed number of queries; deeper pages query for that customer."""
    if after is None and before is None and last is None:
        size, _ = page_size(first, None)
        loaders = info.context.loaders
        rows = await loaders.first_rows(model, tortoise_order(order), size + 1).load(customer_id)
        page = Page(
            rows[:size],
            [cursor_of(r, order) for r in rows[:size]],
            len(rows) > size,
            False,
            lambda: loaders.counts(model).load(customer_id),
        )
    else:
        page = await paginate(
            model.filter(customer_id=customer_id), order, first=first, after=after, last=last, before=before
        )
    return Connection.of(page, convert)
