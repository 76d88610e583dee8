"""Tortoise configuration, migrations and the transaction helper used by mutations."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as migrate_api
from tortoise.migrations.executor import MigrationExecutor
from tortoise.transactions import in_transaction

from core import domains, sqlite_schema

MODEL_MODULES = domains.module_names("models")
APP_CONFIG = {"models": MODEL_MODULES, "default_connection": "default", "migrations": "migrations"}

log = logging.getLogger(__name__)


class UnmigratedDatabase(Exception):
    """The database lacks migrations that this code needs."""


def tortoise_config(database_url: str) -> dict:
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {"models": dict(APP_CONFIG)},
        "use_tz": True,
        "timezone": "UTC",
    }


async def _keep_session(connection: object) -> None:
    """asyncpg's pool, by default, sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` each
    time a connection goes back: a round trip after every query outside a transaction, a tenth of a customer
    list's time. Nothing here changes a session (settings are SET LOCAL, locks are transaction locks, nobody
    LISTENs, cursors live in transactions), and asyncpg still rolls back a transaction left open."""


def _connection(database_url: str) -> str | dict:
    if urlparse(database_url).scheme in ("postgres", "postgresql", "asyncpg"):
        config = expand_db_url(database_url)
        config["credentials"]["reset"] = _keep_session
        return config
    if urlparse(database_url).scheme != "sqlite":
        return database_url
    # Tortoise already turns on WAL and foreign keys; a busy timeout lets a second process wait its turn.
    path = database_url.removeprefix("sqlite://")
    return {"engine": "tortoise.backends.sqlite", "credentials": {"file_path": path, "busy_timeout": 5000}}


def _ensure_sqlite_folder(database_url: str) -> None:
    if urlparse(database_url).scheme == "sqlite":
        path = database_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


async def init_orm(database_url: str, *, global_fallback: bool = True) -> None:
    _ensure_sqlite_folder(database_url)
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=global_fallback)


async def close_orm() -> None:
    await Tortoise.close_connections()


async def migrate(database_url: str) -> list[str]:
    """Apply every migration the database lacks (Tortoise's own migrations; on SQLite, then the indexes its table
    rebuilds dropped: core/sqlite_schema.py), then let every domain add the data it ships (`async def
    ready_made()` in its services module, which must be idempotent); returns the names of the migrations
    applied."""
    _ensure_sqlite_folder(database_url)
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(name)

    async with TortoiseContext():
        await migrate_api(config=tortoise_config(database_url), progress=progress)
        await Tortoise.close_connections()
    if urlparse(database_url).scheme == "sqlite":
        await sqlite_schema.restore_indexes(tortoise_config(database_url))
    async with TortoiseContext():
        await Tortoise.init(config=tortoise_config(database_url))
        try:
            for module in domains.modules("services"):
                if hasattr(module, "ready_made"):
                    await module.ready_made()
        finally:
            await Tortoise.close_connections()
    return applied


async def pending_migrations() -> list[str]:
    """Migrations not yet applied to the connected database."""
    executor = MigrationExecutor(Tortoise.get_connection("default"), {"models": APP_CONFIG})
    return [step.migration.name for step in await executor.plan() if not step.backward]


async def ensure_migrated() -> None:
    missing = await pending_migrations()
    if missing:
        raise UnmigratedDatabase(
            f"the database lacks {len(missing)} migration(s) ({', '.join(missing)}); run `crm migrate` first"
        )


_commit_hooks: contextvars.ContextVar[list[Callable[[], object]] | None] = contextvars.ContextVar(
    "commit_hooks", default=None
)


@asynccontextmanager
async def atomic() -> AsyncIterator[None]:
    """One transaction; callbacks registered with `on_commit` run only once it has committed.

    Nested calls join the outermost transaction (Tortoise uses a savepoint) and its hooks.
    """
    if _commit_hooks.get() is not None:
        async with in_transaction():
            yield
        return
    hooks: list[Callable[[], object]] = []
    token = _commit_hooks.set(hooks)
    try:
        async with in_transaction():
            yield
    finally:
        _commit_hooks.reset(token)
    for hook in hooks:
        try:
            hook()
        except Exception:  # a hook must never undo or hide a committed change
            log.exception("after-commit hook failed")


def on_commit(hook: Callable[[], object]) -> None:
    """Run `hook` after the current transaction commits, or at once outside a transaction."""
    hooks = _commit_hooks.get()
    if hooks is None:
        hook()
    else:
        hooks.append(hook)


DEVELOPER_CONFIG = tortoise_config("sqlite://:memory:")
