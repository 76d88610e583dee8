"""The HTTP endpoints beside GraphQL: health, readiness, metrics, and a finished job's file."""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import Tortoise
from tortoise.functions import Count

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
        Route("/jobs/{job_id:int}/download", job_download),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
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
        await Tortoise.get_connection("default").execute_query("SELECT 1")
        return True
    except Exception:
        log.exception("database check failed")
        return False


async def _broker_ready(runtime: Runtime) -> bool:
    try:
        if runtime.worker is not None:
            return all(w.is_alive() for w in runtime.worker.workers)
        return await runtime.pubsub.ping()
    except Exception:
        log.exception("broker check failed")
        return False


async def _job_counts() -> dict[str, int]:
    counts = {s.value: 0 for s in JobStatus}
    for row in await Job.annotate(n=Count("id")).group_by("status").values("status", "n"):
        counts[str(row["status"].value if hasattr(row["status"], "value") else row["status"])] = row["n"]
    return counts
