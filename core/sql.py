"""Statements that Tortoise's query API lacks, built with its own query builder so that they run on
PostgreSQL and SQLite (3.35 and later, for RETURNING) alike.

- `update_returning(update, *columns)`: a conditional UPDATE that tells which rows *this* statement changed.
  Of two workers running the same claim at the same moment, each learns exactly the rows it took.
- `insert_returning_ids(objects)`: many rows in one INSERT, each object getting its primary key (Tortoise's
  `bulk_create` leaves integer keys unset). One multi-row INSERT numbers its rows in the order given, and
  RETURNING reports them in that order on both databases (Django's `bulk_create` relies on the same).
- `update_each(model, field, values)`: one field set to its own value in each of many rows, as one prepared
  UPDATE run for every row (executemany), where `bulk_update` would build one CASE over them all.
- `Statement`, `rows_of`, `execute`, `insert_rows`: for code that reads and writes plain rows with SQL of its own
  (building model instances would be most of its cost, e.g. the portrait computation), in SQL that PostgreSQL
  and SQLite both run, through Tortoise's connection (the transaction's). Parameters are numbered the way
  Tortoise's query builder numbers them for the connection's dialect: `$1` on PostgreSQL, `?` on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg
from pypika_tortoise.context import SqlContext
from pypika_tortoise.terms import Parameter
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.queryset import UpdateQuery

M = TypeVar("M", bound=Model)


async def update_returning(update: UpdateQuery, *columns: str) -> list[dict[str, Any]]:
    """Runs `Model.filter(...).update(...)` with ``RETURNING columns``: the changed rows' values."""
    update.sql()  # builds the statement on the connection (or transaction) the query would run on
    table = update.model._meta.basetable
    sql, params = update.query.returning(*(table[column] for column in columns)).get_parameterized_sql()
    return await update._db.execute_query_dict(sql, params)


MAX_PARAMETERS = 30_000  # per statement: under SQLite's 32,766 (PostgreSQL takes 65,535)


async def insert_returning_ids(objects: Sequence[M]) -> Sequence[M]:
    """INSERTs unsaved objects of one model, as few statements as the parameter limit allows, and sets their
    primary keys; returns them."""
    if not objects:
        return objects
    model = type(objects[0])
    meta = model._meta
    db = model._choose_db(for_write=True)
    names = [name for name in meta.fields_db_projection if not meta.fields_map[name].generated]
    converters = [(name, meta.fields_map[name].to_db_value) for name in names]
    columns = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in names)
    pk_column = meta.fields_db_projection[meta.pk_attr]
    per_statement = max(1, MAX_PARAMETERS // len(names))
    for start in range(0, len(objects), per_statement):
        chunk = objects[start : start + per_statement]
        # to_db_value also validates, and fills auto_now(_add) fields as save() does.
        values = [convert(getattr(obj, name), obj) for obj in chunk for name, convert in converters]
        rows = value_lists(db.query_class.SQL_CONTEXT, len(names), len(chunk))
        sql = f'INSERT INTO "{meta.db_table}" ({columns}) VALUES {rows} RETURNING "{pk_column}"'
        returned = await db.execute_query_dict(sql, values)
        for obj, row in zip(chunk, returned, strict=True):
            setattr(obj, meta.pk_attr, row[pk_column])
            obj._saved_in_db = True
    return objects


async def update_each(model: type[Model], field: str, values: Mapping[Any, Any]) -> None:
    """Sets `field` to values[pk] in each row whose primary key is in `values`."""
    if not values:
        return
    meta = model._meta
    db = model._choose_db(for_write=True)
    table = meta.basetable
    column = meta.fields_db_projection[field]
    pk_column = meta.fields_db_projection[meta.pk_attr]
    query = (
        db.query_class.update(table).set(table[column], Parameter(idx=1)).where(table[pk_column] == Parameter(idx=2))
    )
    to_db = meta.fields_map[field].to_db_value
    await db.execute_many(query.get_sql(), [[to_db(value, None), pk] for pk, value in values.items()])


# ---------------------------------------------------------------- plain rows


@lru_cache(maxsize=64)
def placeholders(context: SqlContext, first: int, count: int) -> str:
    """`$3, $4` (PostgreSQL) or `?, ?` (SQLite): `count` parameters numbered from `first`."""
    return ", ".join(Parameter(idx=n).get_sql(context) for n in range(first, first + count))


@lru_cache(maxsize=64)
def value_lists(context: SqlContext, width: int, count: int) -> str:
    """`(?, ?), (?, ?)`: the VALUES of a `count`-row INSERT of `width` columns."""
    marks = placeholders(context, 1, width * count).split(", ")
    return ", ".join(f"({', '.join(marks[n : n + width])})" for n in range(0, len(marks), width))


class Statement:
    """The parameters of one statement; each `param`/`params` call returns the placeholder text to put in it."""

    def __init__(self, connection: BaseDBAsyncClient) -> None:
        self._context: SqlContext = connection.query_class.SQL_CONTEXT
        self.values: list[Any] = []

    def covering(self, column: str, ids: Sequence[int]) -> str:
        """A condition that holds for every id of a sorted, distinct list: their range when they fill at least
        half of it (one index range scan instead of one index probe per id), else the list. A reader of rows by
        `covering` skips rows of ids outside the list; writes name the ids exactly (`params`)."""
        if len(ids) > 1 and ids[-1] - ids[0] < 2 * len(ids):
            return f"{column} BETWEEN {self.param(ids[0])} AND {self.param(ids[-1])}"
        return f"{column} IN ({self.params(ids)})"

    def exactly(self, column: str, ids: Sequence[int]) -> str:
        """A condition that holds for exactly the ids of a sorted, distinct list: their range when they fill it
        (no parameter per id), else the list."""
        if len(ids) > 1 and ids[-1] - ids[0] == len(ids) - 1:
            return f"{column} BETWEEN {self.param(ids[0])} AND {self.param(ids[-1])}"
        return f"{column} IN ({self.params(ids)})"

    def param(self, value: Any) -> str:
        return self.params([value])

    def params(self, values: Sequence[Any]) -> str:
        first = len(self.values) + 1
        self.values.extend(values)
        return placeholders(self._context, first, len(values))


async def rows_of(connection: BaseDBAsyncClient, sql: str, statement: Statement) -> Sequence[Sequence[Any]]:
    """The rows of a SELECT, each indexable by position (asyncpg Records, sqlite3 Rows)."""
    return (await connection.execute_query(sql, statement.values))[1]


async def execute(connection: BaseDBAsyncClient, sql: str, statement: Statement) -> None:
    await connection.execute_query(sql, statement.values)


# The rows go in groups of ROWS_PER_INSERT through one prepared multi-row INSERT (executemany), and the rest
# through the one-row INSERT: two statements whatever the number of rows, far from either database's limit of
# parameters per statement (32,766 on SQLite), and a quarter less work per row than one-row INSERTs. PostgreSQL
# takes them with COPY instead (binary, one round trip): less work again for both sides.
ROWS_PER_INSERT = 100


async def insert_rows(connection: BaseDBAsyncClient, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    """Plain rows (values as the database takes them) into `table`: one COPY on PostgreSQL, two statements on
    SQLite. A unique or foreign key refusing a row raises Tortoise's IntegrityError on both."""
    if connection.capabilities.dialect == "postgres":
        async with connection.acquire_connection() as raw:
            try:
                await raw.copy_records_to_table(table, records=rows, columns=list(columns))
            except asyncpg.IntegrityConstraintViolationError as refused:
                raise IntegrityError(refused) from refused
        return
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    context = connection.query_class.SQL_CONTEXT
    groups = [[v for row in rows[n : n + ROWS_PER_INSERT] for v in row] for n in range(0, whole, ROWS_PER_INSERT)]
    if groups:
        await connection.execute_many(head + value_lists(context, len(columns), ROWS_PER_INSERT), groups)
    if rows[whole:]:
        await connection.execute_many(head + value_lists(context, len(columns), 1), rows[whole:])
