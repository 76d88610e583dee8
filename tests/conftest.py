"""Tests go through HTTP -> GraphQL -> a real database, like a client would.

The database is SQLite in a temporary folder by default, or CRM_TEST_DATABASE_URL (PostgreSQL in CI);
it is migrated once per run and emptied before every test.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from urllib.parse import urlparse

import asyncpg
import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager

from app import create_app
from core import db
from core.settings import Settings
from core.statement_counter import StatementCounter  # noqa: F401  (the tests import it from here)
from models.jobs import Job, JobStatus
from models.staff import Department, Role, Staff
from services import auth, staff as staff_service
from services.access import COMMAND_LINE
from services.notifications import NotificationSettings
from tasks.broker import declare_all
from tests.database import (
    empty_all_tables,
    ensure_postgres_database,
    forget_cached_statements,
    worker_database_url,
    worker_redis_url,
)

# This test process's own (one per pytest-xdist worker: tests/database.py).
TEST_DATABASE_URL = worker_database_url(os.environ.get("CRM_TEST_DATABASE_URL"))
TEST_REDIS_URL = worker_redis_url(os.environ.get("CRM_TEST_REDIS_URL"))
PASSWORD = "correct-horse-42"


@pytest.fixture(autouse=True, scope="session")
def _every_domain_declared() -> None:
    # As in a running process: every domain's actors, schedules and job kinds are declared.
    declare_all()


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> None:
    # Production argon2 parameters cost ~50 ms a hash; tests hash hundreds of passwords.
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return TEST_DATABASE_URL or f"sqlite://{tmp_path_factory.mktemp('db')}/crm-test.sqlite3"


async def _reset_postgres(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    if urlparse(database_url).scheme.startswith("postgres"):
        await ensure_postgres_database(database_url)
        await _reset_postgres(database_url)
    forget_cached_statements()
    await db.migrate(database_url)
    return database_url


@pytest.fixture
def settings(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Messages of unconfigured channels go to a mail drop of the test's own, never into the working tree.
    drop = NotificationSettings(mail_drop_dir=str(tmp_path_factory.mktemp("outbox")))
    return Settings(
        env="test",
        database_url=migrated_database,
        log_json=False,
        worker_threads=2,
        worker_poll_ms=10,  # each test stops its app: 2 x 100 ms by default, most of a short test's time
        sections={NotificationSettings: drop},
    ).validated()


class RunningApp:
    """The app after its lifespan started: an ASGI app whose requests carry the lifespan state, as a
    server gives it, and that state's `runtime` for tests that reach the queue or pub/sub."""

    def __init__(self, application) -> None:
        self._application = application
        self._asgi = None
        self._lifespan_state: dict = {}

    @asynccontextmanager
    async def running(self):
        async with LifespanManager(self._keep_state, startup_timeout=30, shutdown_timeout=30) as manager:
            self._asgi = manager.app
            yield self

    async def _keep_state(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            self._lifespan_state = scope["state"]  # filled with what the lifespan yields
        await self._application(scope, receive, send)

    @property
    def runtime(self):
        return self._lifespan_state["runtime"]

    async def __call__(self, scope, receive, send) -> None:
        await self._asgi(scope, receive, send)


@pytest_asyncio.fixture
async def app(settings: Settings):
    forget_cached_statements()
    async with RunningApp(create_app(settings)).running() as running:
        await empty_all_tables()
        yield running
        # The next test's app resumes the jobs it finds unfinished when it starts (before it truncates): a job this
        # test left QUEUED or RUNNING would run there, against the next test's data.
        await Job.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(status=JobStatus.CANCELLED)


@pytest_asyncio.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(
        self, query: str, variables: dict | None = None, token: str | None = None, headers: dict | None = None
    ) -> httpx.Response:
        all_headers = {**(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )

    async def __call__(
        self, query: str, variables: dict | None = None, token: str | None = None, headers: dict | None = None
    ) -> dict:
        """The response body; fails the test on any GraphQL error."""
        body = (await self.raw(query, variables, token, headers)).json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def errors(self, query: str, variables: dict | None = None, token: str | None = None) -> list[dict]:
        body = (await self.raw(query, variables, token)).json()
        assert body.get("errors"), f"expected errors, got {body}"
        return body["errors"]


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


_usernames = itertools.count(1)


async def make_staff(
    role: Role = Role.ADMIN,
    *,
    branch: str | None = None,
    username: str | None = None,
    department: Department = Department.OPERATIONS,
) -> Staff:
    return await staff_service.create(
        COMMAND_LINE,
        username=username or f"{role.value.lower().replace('_', '-')}-{next(_usernames)}",
        display_name=f"Test {role.value.title()}",
        password=PASSWORD,
        role=role,
        department=department,
        branch=branch,
    )


async def token_for(member: Staff, settings: Settings) -> str:
    from datetime import timedelta

    session = await auth.login(
        COMMAND_LINE,
        member.username,
        PASSWORD,
        secret_key=settings.secret_key,
        ttl=timedelta(minutes=settings.token_ttl_minutes),
    )
    return session.token


@pytest.fixture
def staff_factory(app, settings: Settings):
    """`await staff_factory(Role.X, branch=...)` -> (Staff, bearer token)."""

    async def create(role: Role = Role.ADMIN, **kwargs) -> tuple[Staff, str]:
        member = await make_staff(role, **kwargs)
        return member, await token_for(member, settings)

    return create


@pytest_asyncio.fixture
async def admin(staff_factory) -> tuple[Staff, str]:
    return await staff_factory(Role.ADMIN)


def with_overrides(settings: Settings, **changes) -> Settings:
    return replace(settings, **changes).validated()


class QueryCounter:
    """Counts the SQL statements sent on the default connection while it is active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __enter__(self) -> QueryCounter:
        from tortoise import Tortoise

        connection = Tortoise.get_connection("default")
        self._patched = []
        for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
            original = getattr(connection, name)

            async def counted(query, *args, _original=original, **kwargs):
                self.statements.append(str(query))
                return await _original(query, *args, **kwargs)

            setattr(connection, name, counted)
            self._patched.append((connection, name))
        return self

    def __exit__(self, *exc) -> None:
        for connection, name in self._patched:
            delattr(connection, name)

    @property
    def count(self) -> int:
        return len(self.statements)
