"""Two statements that Tortoise's query API lacks, built with its own query builder so that they run
on PostgreSQL and SQLite (3.35 and later, for RETURNING) alike.

- `update_returning(update, *columns)`: a conditional UPDATE that tells which rows *this* statement changed.
  Of two workers running the same claim at the same moment, each learns exactly the rows it took.
- `insert_returning_ids(objects)`: many rows in one INSERT, each object getting its primary key (Tortoise's
  `bulk_create` leaves integer keys unset). One multi-row INSERT numbers its rows in the order given, and
  RETURNING reports them in that order on both databases (Django's `bulk_create` relies on the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.queryset import UpdateQuery

M = TypeVar("M", bound=Model)


async def update_returning(update: UpdateQuery, *columns: str) -> list[dict[str, Any]]:
    """Runs `Model.filter(...).update(...)` with ``RETURNING columns``: the changed rows' values."""
    update.sql()  # builds the statement on the connection (or transaction) the query would run on
    table = update.model._meta.basetable
    sql, params = update.query.returning(*(table[column] for column in columns)).get_parameterized_sql()
    return await update._db.execute_query_dict(sql, params)


async def insert_returning_ids(objects: Sequence[M]) -> Sequence[M]:
    """INSERTs unsaved objects of one model in one statement and sets their primary keys; returns them."""
    if not objects:
        return objects
    model = type(objects[0])
    meta = model._meta
    db = model._choose_db(for_write=True)
    columns = [name for name in meta.fields_db_projection if not meta.fields_map[name].generated]
    # to_db_value also fills auto_now(_add) fields, as save() does.
    rows = [[meta.fields_map[name].to_db_value(getattr(obj, name), obj) for name in columns] for obj in objects]
    table = meta.basetable
    query = db.query_class.into(table).columns(*(meta.fields_db_projection[name] for name in columns))
    for row in rows:
        query = query.insert(*row)
    pk_column = meta.fields_db_projection[meta.pk_attr]
    sql, params = query.returning(table[pk_column]).get_parameterized_sql()
    returned = await db.execute_query_dict(sql, params)
    for obj, row in zip(objects, returned, strict=True):
        setattr(obj, meta.pk_attr, row[pk_column])
        obj._saved_in_db = True
    return objects
