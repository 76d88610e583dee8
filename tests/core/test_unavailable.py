"""The database or the broker out of reach, without real processes: which errors count as an outage
(core.db.is_unavailable, core.pubsub.broker_unreachable), how GraphQL and the HTTP endpoints answer them
(SERVICE_UNAVAILABLE, a generic message, one log line without a traceback), and that a message the broker cannot
take leaves the committed mutation alone. The real outages: tests/reliability/test_postgres_restart.py and
test_redis_restart.py."""

from __future__ import annotations

import logging

import pytest
import redis
from asyncpg import exceptions as pg_errors
from dramatiq.errors import ConnectionClosed
from graphql import GraphQLError
from tortoise.exceptions import IntegrityError, OperationalError

from core import db
from core.db import UNAVAILABLE_MESSAGE, DatabaseSettings, DatabaseUnavailable, is_unavailable
from core.logs import log_graphql_errors
from core.pubsub import broker_unreachable
from core.settings import Settings, SettingsError
from schema.context import Context
from schema.protection import _code_for, _should_mask
from services import dispatch, limits
from tests.conftest import with_overrides


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:
        return raised


def _raised_while(error: BaseException, handling: BaseException) -> BaseException:
    try:
        try:
            raise handling
        except BaseException:
            raise error  # noqa: B904 (the implicit context is the point)
    except BaseException as raised:
        return raised


OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432), [Errno 99] ..."),
    pg_errors.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg_errors.InterfaceError("cannot call Connection.fetch(): connection is closed"),
    pg_errors.TooManyConnectionsError("sorry, too many clients already"),
    pg_errors.AdminShutdownError("terminating connection due to administrator command"),
    pg_errors.CannotConnectNowError("the database system is starting up"),
    DatabaseUnavailable("no database connection within 10s"),
]
NOT_OUTAGES = [
    ValueError("bad"),
    FileNotFoundError(2, "No such file"),
    TimeoutError(),  # a bare timeout is no proof the database is gone (the pool's becomes DatabaseUnavailable)
    pg_errors.InterfaceError("cannot perform operation: another operation is in progress"),
    pg_errors.ProtocolViolationError("unexpected message"),
    IntegrityError("duplicate key"),
    OperationalError("syntax error at or near"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_connection_errors_are_outages_also_wrapped(error: BaseException) -> None:
    assert is_unavailable(error)
    assert is_unavailable(_raised_from(OperationalError("wrapped by Tortoise"), error))
    # A rollback on the dropped connection fails in turn: the outage is what it was handling.
    assert is_unavailable(_raised_while(pg_errors.InterfaceError("cannot rollback"), error))


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_other_errors_are_not_outages(error: BaseException) -> None:
    assert not is_unavailable(error)
    assert not is_unavailable(None)


def test_an_outage_is_service_unavailable_and_never_masked() -> None:
    dropped = pg_errors.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    error = GraphQLError("connection was closed", path=["customers"], original_error=dropped)
    assert _code_for(error) == "SERVICE_UNAVAILABLE"
    assert not _should_mask(error)  # production masking would make it INTERNAL_SERVER_ERROR
    bug = GraphQLError("boom", path=["customers"], original_error=KeyError("x"))
    assert _code_for(bug) == "INTERNAL_SERVER_ERROR"
    # Refused before execution (an extension's write failed): still the outage, not the client's fault.
    assert _code_for(GraphQLError("[Errno 111]", original_error=ConnectionRefusedError(111, "x"))) == (
        "SERVICE_UNAVAILABLE"
    )


def test_outages_are_logged_once_a_request_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    errors = [
        GraphQLError("[Errno 111] Connection refused", path=[f"f{i}"], original_error=ConnectionRefusedError(111, "x"))
        for i in range(3)
    ]
    with caplog.at_level(logging.INFO, logger="crm.graphql"):
        log_graphql_errors(errors)
    lines = [r for r in caplog.records if r.name == "crm.graphql"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert "SERVICE_UNAVAILABLE" in lines[0].getMessage() and "Errno" not in lines[0].getMessage()


def test_database_timeouts_are_settings() -> None:
    assert DatabaseSettings().db_connect_timeout_ms == 5_000
    assert DatabaseSettings().db_acquire_timeout_ms == 10_000
    settings = Settings.from_env({"CRM_DB_CONNECT_TIMEOUT_MS": "750", "CRM_DB_ACQUIRE_TIMEOUT_MS": "1500"})
    assert settings.of(DatabaseSettings) == DatabaseSettings(750, 1500)
    with pytest.raises(SettingsError, match="CRM_DB_ACQUIRE_TIMEOUT_MS"):
        Settings.from_env({"CRM_DB_ACQUIRE_TIMEOUT_MS": "0"})
    # PostgreSQL goes through the bounded pool, with asyncpg's connect timeout set.
    config = db.tortoise_config("postgres://u:p@127.0.0.1:5432/crm")["connections"]["default"]
    assert config["engine"] == "core.db" and config["credentials"]["timeout"] == 5.0


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        _raised_from(ConnectionClosed(redis.exceptions.ConnectionError("x")), redis.exceptions.ConnectionError("x")),
        ConnectionClosed(Exception("closed")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_broker_errors_are_outages(error: BaseException) -> None:
    assert broker_unreachable(error)


def test_other_broker_errors_are_not() -> None:
    assert not broker_unreachable(KeyError("run_job"))
    assert not broker_unreachable(redis.exceptions.ResponseError("WRONGTYPE"))


@pytest.fixture
def refusing_broker():
    sent: list[tuple] = []

    def send(actor_name: str, *args: object) -> None:
        sent.append((actor_name, args))
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    dispatch.bind(send)
    yield sent
    dispatch.bind(None)


async def test_a_message_the_broker_refuses_is_left_to_the_sweep(
    app, refusing_broker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with db.atomic():
            dispatch.send_after_commit("send_notifications", list(range(1, 101)))
        dispatch.send_after_commit("run_job", 7)  # outside a transaction: at once, and it must not raise either
    assert [name for name, _ in refusing_broker] == ["send_notifications", "run_job"]
    warnings = [r for r in caplog.records if "left to its sweep" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING and r.exc_info is None for r in warnings)
    assert "[100 ids]" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]


async def test_any_after_commit_hook_failing_on_the_broker_is_one_line(app, caplog: pytest.LogCaptureFixture) -> None:
    def refused() -> None:
        raise ConnectionClosed(redis.exceptions.ConnectionError("Connection refused"))

    with caplog.at_level(logging.INFO):
        async with db.atomic():
            db.on_commit(refused)
        db.on_commit(refused)  # a job created outside a transaction sends at once (schema.context.enqueue)
    lines = [r for r in caplog.records if r.name == "core.db"]
    assert len(lines) == 2 and all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)

    def bug() -> None:
        raise KeyError("no such actor")

    with pytest.raises(KeyError):
        db.on_commit(bug)  # outside a transaction a bug still raises, as before


async def test_graphql_answers_service_unavailable_with_a_generic_message(
    gql, admin, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def dropped(self):
        raise pg_errors.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(Context, "caller", dropped)
    with caplog.at_level(logging.INFO):
        errors = await gql.errors("{ me { id } }", token=admin[1])
    assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]
    assert errors[0]["message"] == UNAVAILABLE_MESSAGE
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"


async def test_http_endpoints_answer_503(client, monkeypatch: pytest.MonkeyPatch) -> None:
    from services import notifications

    async def refused() -> dict:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(notifications, "counts", refused)
    response = await client.get("/metrics")
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Errno" not in response.text and "Connect call" not in response.text
    assert response.headers["retry-after"]


async def test_any_page_answers_503_through_the_request_middleware() -> None:
    from core.http import RequestContext
    from core.metrics import Metrics

    async def page(scope, receive, send):
        raise pg_errors.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    await RequestContext(page, Metrics())({"type": "http", "method": "GET", "path": "/s/x", "headers": []}, None, send)
    assert sent[0]["status"] == 503
    assert b"SERVICE_UNAVAILABLE" in sent[1]["body"]


async def test_rate_limits_fail_over_to_the_process_when_redis_is_down(
    settings, caplog: pytest.LogCaptureFixture
) -> None:
    from core import settings as core_settings

    down = with_overrides(settings, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    core_settings.use(down)
    limits._resting_until.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="crm.limits"):
            for _ in range(5):
                await limits.take(limits.API_IP, "198.51.100.9")
        # One line while Redis rests; the bucket is counted here meanwhile.
        assert len([r for r in caplog.records if r.name == "crm.limits"]) == 1
    finally:
        core_settings.use(None)
        limits._resting_until.clear()


def test_library_tracebacks_of_an_outage_become_one_line() -> None:
    from core.logs import OutageWithoutTraceback

    def record(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except BaseException:
            import sys

            return logging.LogRecord("asyncpg.pool", logging.WARNING, "", 0, "retrying", (), sys.exc_info())

    outage = record(ConnectionRefusedError(111, "Connection refused"))
    assert OutageWithoutTraceback().filter(outage)
    assert outage.exc_info is None and "ConnectionRefusedError" in outage.getMessage()
    bug = record(KeyError("x"))
    assert OutageWithoutTraceback().filter(bug)
    assert bug.exc_info is not None  # a bug keeps its traceback


async def test_readyz_is_bounded_when_redis_hangs(app, client, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import time

    import endpoints

    async def hangs() -> bool:
        await asyncio.sleep(3600)
        return True

    monkeypatch.setattr(endpoints, "READY_CHECK_SECONDS", 0.3)
    monkeypatch.setattr(app.runtime, "worker", None)  # as with a Redis broker: the check is a PING
    monkeypatch.setattr(app.runtime.pubsub, "ping", hangs)
    started = time.monotonic()
    response = await client.get("/readyz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "broker": False}
