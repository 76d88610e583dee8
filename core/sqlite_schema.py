"""SQLite's indexes after migrations: put back what a table rebuild dropped.

SQLite cannot alter or drop most columns in place, so Tortoise's migrations rebuild the table (create a new
one, copy the rows, drop the old, rename) and the rebuilt table has none of the old one's indexes or unique
constraints: a customer table rebuilt that way would accept two customers with one identity document.
`restore_indexes` compares the database with the schema the models generate (in memory, by Tortoise itself)
and creates every index missing, under the model's own name; unique constraints come back as unique indexes.
It runs after every `migrate` on SQLite and does nothing when nothing is missing. PostgreSQL alters tables in
place and keeps its indexes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext

log = logging.getLogger(__name__)

# (unique, columns) -> the statement that creates it (None: an inline UNIQUE constraint of the table)
Indexes = dict[str, dict[tuple[bool, tuple[str, ...]], str | None]]


async def _rows(connection: BaseDBAsyncClient, sql: str) -> Sequence[Any]:
    return (await connection.execute_query(sql))[1]


async def indexes_of(connection: BaseDBAsyncClient) -> Indexes:
    """Each table's indexes as (unique, columns), whatever their names, with the SQL that made them."""
    found: Indexes = {}
    tables = await _rows(connection, "SELECT name FROM sqlite_master WHERE type = 'table'")
    for (table,) in tables:
        if table.startswith("sqlite_") or table == "tortoise_migrations":
            continue
        indexes = found.setdefault(table, {})
        for row in await _rows(connection, f'PRAGMA index_list("{table}")'):
            name, unique = row[1], bool(row[2])
            columns = tuple(r[2] for r in await _rows(connection, f'PRAGMA index_info("{name}")'))
            made = await _rows(connection, f"SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '{name}'")
            indexes[(unique, columns)] = made[0][0] if made else None
    return found


async def _generated(config: dict) -> Indexes:
    """The indexes Tortoise creates for the models on an empty database."""
    memory = {**config, "connections": {"default": "sqlite://:memory:"}}
    async with TortoiseContext():
        await Tortoise.init(config=memory)
        try:
            await Tortoise.generate_schemas()
            return await indexes_of(Tortoise.get_connection("default"))
        finally:
            await Tortoise.close_connections()


def _statement(table: str, unique: bool, columns: tuple[str, ...], made: str | None) -> str:
    if made is not None:
        return made.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1).replace(
            "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX IF NOT EXISTS", 1
        )
    name = f"uniq_{table}_{'_'.join(columns)}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    return f'CREATE UNIQUE INDEX IF NOT EXISTS "{name}" ON "{table}" ({quoted})'


async def restore_indexes(config: dict) -> list[str]:
    """Create the indexes of the models that the SQLite database of `config` lacks; returns the statements run.
    Fails (IntegrityError) when rows already break a unique index that is missing: that needs a person."""
    expected = await _generated(config)
    async with TortoiseContext():
        await Tortoise.init(config=config)
        try:
            connection = Tortoise.get_connection("default")
            present = await indexes_of(connection)
            statements = [
                _statement(table, unique, columns, made)
                for table, indexes in expected.items()
                for (unique, columns), made in indexes.items()
                if (unique, columns) not in present.get(table, {})
            ]
            for statement in statements:
                await connection.execute_script(statement)
        finally:
            await Tortoise.close_connections()
    if statements:
        log.warning("restored %d indexes that SQLite table rebuilds had dropped", len(statements))
    return statements
