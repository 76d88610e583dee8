"""Tortoise configuration, migrations and the transaction helper used by mutations."""

from __future__ import annotations

import contextvars
import errno
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
from asyncpg import exceptions as pg_errors
from tortoise import Tortoise
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as migrate_api
from tortoise.migrations.executor import MigrationExecutor
from tortoise.transactions import in_transaction

from core import domains, sqlite_schema
from core.pubsub import broker_unreachable
from core.settings import SettingsError, active, section

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
        if config["engine"] == "tortoise.backends.asyncpg":
            config["engine"] = __name__  # `client_class` below: Tortoise's asyncpg client with bounded waits
            # asyncpg's own connect timeout (60 s by default): a database that accepts nothing fails this fast.
            config["credentials"].setdefault("timeout", _database_settings().db_connect_timeout_ms / 1000)
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
        _run_hook(hook)


def on_commit(hook: Callable[[], object]) -> None:
    """Run `hook` after the current transaction commits, or at once outside a transaction. A hook that fails
    because the broker is out of reach (its message is a nudge: the sweeps make up for it) is one WARNING line; any
    other failure is logged with its traceback after a commit (raised at once outside a transaction)."""
    hooks = _commit_hooks.get()
    if hooks is None:
        _run_hook(hook, reraise=True)
    else:
        hooks.append(hook)


def _run_hook(hook: Callable[[], object], *, reraise: bool = False) -> None:
    try:
        hook()
    except Exception as error:  # after a commit: a hook must never undo or hide the committed change
        if broker_unreachable(error):
            log.warning("after-commit message not sent: the broker is unreachable (%s)", type(error).__name__)
        elif reraise:  # outside a transaction, as before: the caller sees its own bug
            raise
        else:
            log.exception("after-commit hook failed")


# ---------------------------------------------------------------- the database out of reach


@section
@dataclass(frozen=True)
class DatabaseSettings:
    # CRM_DB_CONNECT_TIMEOUT_MS: how long opening a PostgreSQL connection may take (asyncpg waits 60 s by default):
    # a database host that accepts nothing fails requests this fast instead of holding them.
    db_connect_timeout_ms: int = 5_000
    # CRM_DB_ACQUIRE_TIMEOUT_MS: how long a request waits for a connection of the pool (all busy, or being opened)
    # before it is answered SERVICE_UNAVAILABLE; asyncpg would wait for ever.
    db_acquire_timeout_ms: int = 10_000

    def check(self) -> None:
        if not 100 <= self.db_connect_timeout_ms <= 120_000:
            raise SettingsError("CRM_DB_CONNECT_TIMEOUT_MS must be between 100 and 120000")
        if not 100 <= self.db_acquire_timeout_ms <= 600_000:
            raise SettingsError("CRM_DB_ACQUIRE_TIMEOUT_MS must be between 100 and 600000")


def _database_settings() -> DatabaseSettings:
    try:
        return active().of(DatabaseSettings)
    except SettingsError:  # the environment is read at the command line before it is checked
        return DatabaseSettings()


class DatabaseUnavailable(Exception):
    """No connection to the database within the bounded wait (the pool's acquire, a new connection's connect)."""


class _BoundedPool(asyncpg.Pool):
    """asyncpg's pool whose `acquire()` waits at most CRM_DB_ACQUIRE_TIMEOUT_MS (Tortoise passes no timeout)."""

    __slots__ = ("_acquire_timeout",)

    def acquire(self, *, timeout: float | None = None):
        return super().acquire(timeout=timeout if timeout is not None else self._acquire_timeout)

    async def _acquire(self, timeout):
        try:
            return await super()._acquire(timeout)
        except TimeoutError as error:  # no connection free in time, or the database's host accepted nothing
            raise DatabaseUnavailable(f"no database connection within {timeout:g}s") from error


class BoundedAsyncpgClient(AsyncpgDBClient):
    """Tortoise's asyncpg client on `_BoundedPool`. A broken connection is dropped by asyncpg when it goes back
    to the pool and the next acquire opens a new one: the pool recovers by itself once the database is back."""

    async def create_pool(self, **kwargs) -> asyncpg.Pool:
        defaults = {  # asyncpg.create_pool's, which builds its Pool with no way to choose the class
            "max_queries": 50_000,
            "max_inactive_connection_lifetime": 300.0,
            "record_class": asyncpg.Record,
            "connection_class": asyncpg.Connection,
            "loop": None,
        }
        pool = _BoundedPool(None, **{**defaults, **kwargs})
        pool._acquire_timeout = _database_settings().db_acquire_timeout_ms / 1000
        return await pool


client_class = BoundedAsyncpgClient  # this module is the Tortoise engine of PostgreSQL URLs (`_connection`)

_CONNECTION_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
}
# The server said it cannot take the session: out of connections, shutting down, starting up, crashed.
_SERVER_UNAVAILABLE = (
    pg_errors.TooManyConnectionsError,
    pg_errors.AdminShutdownError,
    pg_errors.CrashShutdownError,
    pg_errors.CannotConnectNowError,
)
# asyncpg's InterfaceError for a connection that went away (other InterfaceErrors are bugs).
_CLOSED = ("connection is closed", "connection was closed", "pool is closing", "pool is closed")


def _is_unavailable_itself(error: BaseException) -> bool:
    if isinstance(error, (DatabaseUnavailable, *_SERVER_UNAVAILABLE)):
        return True
    if isinstance(error, pg_errors.PostgresConnectionError):
        return not isinstance(error, pg_errors.ProtocolViolationError)  # a protocol violation is a bug
    if isinstance(error, pg_errors.InterfaceError):
        return any(words in str(error) for words in _CLOSED)
    if isinstance(error, ConnectionError):  # refused, reset, aborted, broken pipe
        return True
    if isinstance(error, OSError) and not isinstance(error, TimeoutError):
        # asyncio's "Multiple exceptions: [Errno 111] Connect call failed ..." when a host has several addresses.
        return error.errno in _CONNECTION_ERRNOS or "Connect call failed" in str(error)
    return False


def is_unavailable(error: BaseException | None) -> bool:
    """Whether `error` means the database is out of reach (down, unreachable, the connection dropped, no connection
    free in time), the request being blameless: itself, or the error it was raised from or while handling (Tortoise
    wraps asyncpg's errors; a rollback on a dropped connection fails in turn). Such an error is answered
    SERVICE_UNAVAILABLE (or 503) with a generic message, and logged as one line without a traceback."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if _is_unavailable_itself(error):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


UNAVAILABLE_MESSAGE = "The service is temporarily unavailable (its database cannot be reached); try again shortly."


DEVELOPER_CONFIG = tortoise_config("sqlite://:memory:")
