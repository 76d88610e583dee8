"""Pages of a relation for many parents at once: the first N rows per parent in one query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from tortoise import Tortoise
from tortoise.models import Model
from tortoise.queryset import QuerySet


async def _instances(queryset: QuerySet) -> list[Model]:
    return await queryset


async def first_per_parent(
    model: type[Model],
    parent_column: str,
    order: list[str],
    parent_ids: list[int],
    limit: int,
    read: Callable[[QuerySet], Awaitable[list]] = _instances,
) -> dict[int, list]:
    """Up to `limit` rows per parent, in `order` (Tortoise style, e.g. ["-occurred_at", "-id"]); `read` turns the
    final query into rows (model instances by default; the GraphQL loaders may read plain rows).

    A window function keeps it to one query however many parents a page shows; the ids are
    integers formatted by us, so the statement carries no user input.
    """
    if not parent_ids or limit <= 0:
        return {pid: [] for pid in parent_ids}
    table = model._meta.db_table
    order_sql = ", ".join(f"{name.lstrip('-')} {'DESC' if name.startswith('-') else 'ASC'}" for name in order)
    ids = ", ".join(str(int(pid)) for pid in set(parent_ids))
    sql = (
        f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY {parent_column} ORDER BY {order_sql}) AS rn "
        f"FROM {table} WHERE {parent_column} IN ({ids})) ranked WHERE rn <= {int(limit)}"
    )
    _, rows = await Tortoise.get_connection("default").execute_query(sql)
    found = await read(model.filter(id__in=[row["id"] for row in rows]).order_by(*order))
    grouped: dict[int, list] = defaultdict(list)
    for row in found:
        grouped[getattr(row, parent_column)].append(row)
    return {pid: grouped.get(pid, []) for pid in parent_ids}
