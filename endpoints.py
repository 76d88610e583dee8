"""The HTTP endpoints beside GraphQL: health, readiness, metrics, and a finished job's file."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import Tortoise
from tortoise.functions import Count

from core.db import UNAVAILABLE_MESSAGE, is_unavailable
from core.metrics import Metrics
from core.settings import Settings
from models.jobs import Job, JobStatus
from schema.context import bearer_token
from services import audit, auth, jobs, notifications
from services.access import Caller
from services.errors import DomainError

if TYPE_CHECKING:
    from app import Runtime

log = logging.getLogger("crm")
READY_CHECK_SECONDS = 2.0  # each /readyz check: a database or Redis that hangs is "not ready", not a hung probe
Handler = Callable[[Request], Awaitable[Response]]


def unavailable_as_503(handler: Handler) -> Handler:
    """The database out of reach (core.db.is_unavailable) answers 503 SERVICE_UNAVAILABLE with Retry-After and a
    generic message, logged as one WARNING line (no traceback)."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as error:
            if not is_unavailable(error):
                raise
            log.warning("%s %s: SERVICE_UNAVAILABLE (%s)", request.method, request.url.path, type(error).__name__)
            return unavailable_response()

    return guarded


def unavailable_response() -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": UNAVAILABLE_MESSAGE, "extensions": {"code": "SERVICE_UNAVAILABLE"}}]},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def routes(settings: Settings, metrics: Metrics) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {"database": await _database_ready(), "broker": await _broker_ready(request.state.runtime)}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    async def metrics_endpoint(request: Request) -> Response:
        if settings.metrics_token is not None:
            given = bearer_token(request.headers.get("authorization")) or ""
            if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
                return JSONResponse(
                    {"error": "UNAUTHENTICATED"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        text = metrics.render(await _job_counts(), await notifications.counts())
        return Response(text, media_type="text/plain; version=0.0.4")

    async def job_download(request: Request) -> Response:
        return await _download(request, settings)

    return [
        Route("/jobs/{job_id:int}/download", unavailable_as_503(job_download)),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", unavailable_as_503(metrics_endpoint)),
    ]


async def _download(request: Request, settings: Settings) -> Response:
    """A finished job's file (report, export), for the staff member who may see the job."""
    token = bearer_token(request.headers.get("authorization"))
    staff = await auth.authenticate(token, secret_key=settings.secret_key) if token else None
    if staff is None:
        return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
    caller = Caller(
        staff, request.scope.get("state", {}).get("request_id"), request.client.host if request.client else None
    )
    try:
        job = await jobs.get(caller, request.path_params["job_id"])
    except DomainError:
        return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
    if not await jobs.file_allowed(job):
        # The creator no longer holds a role that may start this kind of job: the file goes with the role.
        return JSONResponse(
            {"error": "FORBIDDEN", "message": "This job's file is no longer available"}, status_code=403
        )
    result = job.result or {}
    if "csv" not in result:
        return JSONResponse({"error": "NOT_FOUND", "message": "This job has no file (yet)"}, status_code=404)
    await audit.record(caller, "job.download", subject_type="Job", subject_id=str(job.id))
    filename = result.get("filename", f"job-{job.id}.csv")
    return Response(
        result["csv"],
        media_type=result.get("contentType", "text/csv") + "; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _database_ready() -> bool:
    try:
        async with asyncio.timeout(READY_CHECK_SECONDS):
            await Tortoise.get_connection("default").execute_query("SELECT 1")
        return True
    except Exception as error:
        _not_ready("database", error)
        return False


async def _broker_ready(runtime: Runtime) -> bool:
    """Embedded: the worker threads are alive; else Redis (the broker's and pub/sub's) answers a PING in time."""
    try:
        if runtime.worker is not None:
            return all(w.is_alive() for w in runtime.worker.workers)
        async with asyncio.timeout(READY_CHECK_SECONDS):
            return await runtime.pubsub.ping()
    except Exception as error:
        _not_ready("broker", error)
        return False


def _not_ready(check: str, error: Exception) -> None:
    """One line: a probe polled every few seconds must not fill the log with tracebacks while a dependency is down
    (a timeout, a connection error); anything else is a bug and keeps its traceback."""
    expected = isinstance(error, TimeoutError) or is_unavailable(error) or _is_redis_connection_error(error)
    if expected:
        log.warning("readiness: %s check failed (%s)", check, type(error).__name__)
    else:
        log.exception("readiness: %s check failed", check)


def _is_redis_connection_error(error: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeout

    return isinstance(error, RedisConnectionError | RedisTimeout)


async def _job_counts() -> dict[str, int]:
    counts = {s.value: 0 for s in JobStatus}
    for row in await Job.annotate(n=Count("id")).group_by("status").values("status", "n"):
        counts[str(row["status"].value if hasattr(row["status"], "value") else row["status"])] = row["n"]
    return counts
