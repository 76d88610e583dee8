"""Per-request DataLoaders. Each domain declares the loaders of its own models where it lives
(`register(name, load_fn)` in its schema module); `Loaders` builds them lazily, once per request, so
that every relation a list can reach costs one query per kind, not one per item."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.dataloader import DataLoader
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from services.listing import first_per_parent

LoadFn = Callable[[list[Any]], Awaitable[list[Any]]]
_LOAD_FNS: dict[str, LoadFn] = {}
_AS_ROWS: set[type[Model]] = set()


class Row:
    """One row of a model read as plain values: its columns under the model's attribute names (a foreign key as
    `customer_id`), converted exactly as a model instance's are (Tortoise's `.values()`), without the cost of
    building the instance. No relations, no methods: only for GraphQL types that read columns (`self._m.<column>`)."""

    __slots__ = ("__dict__",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values

    def __repr__(self) -> str:
        return f"Row({self.__dict__!r})"


def read_as_rows(model: type[Model]) -> None:
    """Declare that the GraphQL type of `model` reads only its columns, so that the list loaders that hand it many
    rows at once (`grouped`, `first_rows`) give it `Row`s instead of model instances. Declared next to the type."""
    _AS_ROWS.add(model)


def columns(model: type[Model]) -> tuple[str, ...]:
    """Every column of `model`, by the name a model instance and `.values()` give it."""
    meta = model._meta
    return tuple(meta.fields_db_projection_reverse[column] for column in meta.db_fields)


async def fetch(queryset: QuerySet) -> list:
    """The rows of `queryset`: `Row`s for a model declared with `read_as_rows`, else model instances."""
    model = queryset.model
    if model not in _AS_ROWS:
        return await queryset
    return [Row(values) for values in await queryset.values(*columns(model))]


def register(name: str, load_fn: LoadFn) -> None:
    """Declare the loader `info.context.loaders.<name>`."""
    if _LOAD_FNS.get(name, load_fn) is not load_fn:
        raise ValueError(f"a loader named {name} is registered already")
    _LOAD_FNS[name] = load_fn


def by_id(model: type[Model]) -> LoadFn:
    """Rows of `model` by primary key (None where a key has no row)."""

    async def load(ids: list[int]) -> list[Model | None]:
        found = {row.pk: row for row in await model.filter(id__in=set(ids))}
        return [found.get(i) for i in ids]

    return load


def grouped(
    model: type[Model], order: str, project: Callable[[Any], Any] = lambda row: row, parent: str = "customer_id"
) -> LoadFn:
    """Rows of `model` per parent id, in `order` and then by id in the same direction."""
    tie = "-id" if order.startswith("-") else "id"
    ordering = (order,) if order.lstrip("-") == "id" else (order, tie)

    async def load(parent_ids: list[int]) -> list[list]:
        groups: dict[int, list] = defaultdict(list)
        for row in await fetch(model.filter(**{f"{parent}__in": set(parent_ids)}).order_by(*ordering)):
            groups[getattr(row, parent)].append(project(row))
        return [groups.get(i, []) for i in parent_ids]

    return load


class Loaders:
    """One per request (and renewed per subscription message)."""

    def __init__(self) -> None:
        self._made: dict[Any, DataLoader] = {}

    def __getattr__(self, name: str) -> DataLoader:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in _LOAD_FNS:
            raise AttributeError(f"no loader named {name}: register it in its domain's schema module")
        return self._loader(name, lambda: _LOAD_FNS[name])

    def _loader(
        self, key: Any, make_load_fn: Callable[[], LoadFn], cache_key: Callable[[Any], Any] | None = None
    ) -> DataLoader:
        if key not in self._made:
            self._made[key] = DataLoader(load_fn=make_load_fn(), cache_key_fn=cache_key)
        return self._made[key]

    def made(self, key: Any, make_load_fn: Callable[[], LoadFn], cache_key: Callable[[Any], Any] | None = None):
        """A loader whose load function needs more than its keys (the caller, for what they may see), made on first
        use and kept for the request under `key`; `cache_key` turns a key (e.g. a model row) into a hashable one."""
        return self._loader(key, make_load_fn, cache_key)

    def first_rows(self, model: type[Model], order: tuple[str, ...], size: int) -> DataLoader[int, list]:
        """The first `size` rows of `model` per customer, for every customer on the page at once."""

        def make() -> LoadFn:
            async def load(ids: list[int]) -> list[list]:
                found = await first_per_parent(model, "customer_id", list(order), ids, size, read=fetch)
                return [found[i] for i in ids]

            return load

        return self._loader(("first_rows", model, order, size), make)

    def counts(self, model: type[Model]) -> DataLoader[int, int]:
        """How many rows of `model` each customer has, counted for every customer on the page at once."""

        def make() -> LoadFn:
            async def load(ids: list[int]) -> list[int]:
                rows = (
                    await model.filter(customer_id__in=set(ids))
                    .group_by("customer_id")
                    .annotate(n=Count("id"))
                    .values("customer_id", "n")
                )
                found = {row["customer_id"]: row["n"] for row in rows}
                return [found.get(i, 0) for i in ids]

            return load

        return self._loader(("counts", model), make)
