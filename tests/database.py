"""The test run's database and Redis, one of each per pytest-xdist worker, and emptying the database between
tests.

`make test` runs the suite in several processes (pytest-xdist, TEST_WORKERS): worker gw0 uses the database and
Redis database it is given (CRM_TEST_DATABASE_URL, CRM_TEST_REDIS_URL), worker gwN the PostgreSQL database
`<name>_gwN` (created when missing) and Redis database 2·N below the one given; a SQLite database is a file in
each worker's own temporary folder. Redis database numbers in between (one below each worker's) are left to tests
that need a second one (`spare_redis_url`).


Tortoise's truncate_all_models sends one TRUNCATE ... CASCADE of every table on PostgreSQL: about 120 ms, paid by
every test, although most tests write to a handful of tables. Here one statement finds the tables holding rows and
only those are emptied, children before parents: DELETE for tables other tables refer to (cheaper than TRUNCATE
on small tables, and TRUNCATE of a referenced table needs CASCADE), TRUNCATE for the rest, which also passes the
audit trail's append-only trigger (it refuses DELETE). Identities are restarted by neither, as before."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.contrib.test import _topological_sort_models, truncate_all_models
from tortoise.fields.relational import ForeignKeyFieldInstance


async def empty_all_tables() -> None:
    models = list(Tortoise.apps.get_models_iterable())
    connection = models[0]._meta.db
    if connection.capabilities.dialect != "postgres":
        await truncate_all_models()
        return
    ordered = _topological_sort_models(models)  # children first
    referenced = {
        field.related_model
        for model in models
        for field in model._meta.fields_map.values()
        if isinstance(field, ForeignKeyFieldInstance) and field.related_model is not model
    }
    probe = " UNION ALL ".join(
        f'SELECT {index} AS position WHERE EXISTS (SELECT 1 FROM "{model._meta.db_table}")'
        for index, model in enumerate(ordered)
    )
    _, rows = await connection.execute_query(probe)
    holding = [ordered[index] for index in sorted(row["position"] for row in rows)]
    if holding:
        await connection.execute_script(
            "; ".join(
                f'{"DELETE FROM" if model in referenced else "TRUNCATE"} "{model._meta.db_table}"' for model in holding
            )
        )


def worker_index() -> int:
    """This pytest-xdist worker's number (0 without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def _redis_db(url: str, shift: int) -> str:
    parsed = urlparse(url)
    base = int(parsed.path.strip("/") or 0)
    return parsed._replace(path=f"/{(base - shift) % 16}").geturl()


def worker_database_url(url: str | None) -> str | None:
    if not url or worker_index() == 0 or not urlparse(url).scheme.startswith("postgres"):
        return url
    parsed = urlparse(url)
    return parsed._replace(path=f"{parsed.path}_gw{worker_index()}").geturl()


def worker_redis_url(url: str | None) -> str | None:
    return _redis_db(url, 2 * worker_index()) if url else None


def spare_redis_url(url: str) -> str:
    """A second Redis database of this worker's, for a test that needs one besides its worker's."""
    return _redis_db(url, 2 * worker_index() + 1)


async def ensure_postgres_database(url: str) -> None:
    """Create the database of `url` when the server lacks it (a worker's own database, on the first run)."""
    parsed = urlparse(url.replace("postgres://", "postgresql://", 1))
    name = parsed.path.strip("/")
    server = await asyncpg.connect(parsed._replace(path="/postgres").geturl())
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()


def forget_cached_statements() -> None:
    """Tortoise caches each model's INSERT statement per connection name ("default"), whatever the database behind
    it: after a test that used SQLite in this process, a PostgreSQL insert would get SQLite's text. A process of
    the app uses one database; the test process uses two, so each app and migration starts with an empty cache."""
    EXECUTOR_CACHE.clear()
