"""Jobs: long work created QUEUED by a mutation, run by a worker, resumable after a crash."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from tortoise.queryset import QuerySet

from core.db import atomic, on_commit
from models.jobs import Job, JobStatus
from models.staff import Role, Staff
from services import clock
from services.access import ALL_ROLES, COMMAND_LINE, JOB_OVERSEERS, Caller, require_role
from services.errors import not_found

log = logging.getLogger(__name__)

MAX_STORED_ERRORS = 1000
PROGRESS_INTERVAL = 0.5  # seconds between progress writes while a job runs
Enqueue = Callable[[int], None]
Publish = Callable[[str, dict], Awaitable[None]]


def channel(job_id: int) -> str:
    return f"job:{job_id}"


async def create(caller: Caller, kind: str, params: dict, enqueue: Enqueue) -> Job:
    """Writes the job; its message is sent only once the surrounding transaction has committed."""
    job = await Job.create(kind=kind, params=params, created_by=caller.staff)
    on_commit(lambda: enqueue(job.id))
    return job


def visible(caller: Caller) -> QuerySet[Job]:
    staff = require_role(caller, ALL_ROLES)
    return Job.all() if staff is None or staff.role in JOB_OVERSEERS else Job.filter(created_by_id=staff.id)


async def get(caller: Caller, job_id: int) -> Job:
    job = await visible(caller).get_or_none(id=job_id)
    if job is None:
        raise not_found("Job")
    return job


def progress_of(job: Job) -> float:
    if job.status == JobStatus.SUCCEEDED:
        return 1.0
    if not job.total:
        return 0.0
    return min(1.0, (job.processed + job.failed) / job.total)


class Progress:
    """Given to a job handler; writes progress to the job row (throttled) and publishes each write."""

    def __init__(self, job: Job, publish: Publish) -> None:
        self.job = job
        self._publish = publish
        self._last_write = 0.0

    async def set_total(self, total: int) -> None:
        self.job.total = total
        await self._write(force=True)

    async def advance(self, processed: int = 0, *, failed: int = 0) -> None:
        self.job.processed += processed
        self.job.failed += failed
        await self._write()

    async def checkpoint(self, items_done: int) -> None:
        """Call inside the transaction that commits those items: a re-delivered job resumes after them."""
        self.job.checkpoint = items_done
        await self.job.save(update_fields=["checkpoint", "total", "processed", "failed", "errors", "updated_at"])
        self._last_write = time.monotonic()
        await self._publish(channel(self.job.id), {"id": self.job.id, "status": self.job.status.value})

    async def error(self, message: str, *, row: int | None = None, field: str | None = None) -> None:
        self.job.failed += 1
        if len(self.job.errors) < MAX_STORED_ERRORS:
            self.job.errors = [*self.job.errors, {"row": row, "field": field, "message": message}]
        await self._write()

    async def _write(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = time.monotonic()
        await self.job.save(update_fields=["total", "processed", "failed", "errors", "updated_at"])
        await self._publish(channel(self.job.id), {"id": self.job.id, "status": self.job.status.value})


Handler = Callable[[dict, Progress], Awaitable[dict]]
_HANDLERS: dict[str, Handler] = {}


def register_kind(kind: str, handler: Handler) -> None:
    """A domain declares a kind of job and the handler a worker runs for it (from its tasks module)."""
    if _HANDLERS.get(kind, handler) is not handler:
        raise ValueError(f"job kind {kind} is registered already")
    _HANDLERS[kind] = handler


def kinds() -> list[str]:
    """The registered job kinds, in registration order."""
    return list(_HANDLERS)


async def run(job_id: int, publish: Publish, *, handlers: Mapping[str, Handler] | None = None) -> None:
    """Run one job to its end. Idempotent: a finished job is left alone; a re-delivered one resumes after
    its checkpoint when its handler keeps one, and otherwise restarts from scratch. `handlers` replaces
    the registered ones (tests)."""
    job = await Job.get_or_none(id=job_id)
    if job is None or job.status.finished:
        log.info("job %s is finished or gone; nothing to do", job_id)
        return
    fresh = {} if job.checkpoint else {"processed": 0, "failed": 0, "errors": [], "total": None, "result": None}
    claimed = await Job.filter(id=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.RUNNING, started_at=job.started_at or clock.now(), attempts=job.attempts + 1, **fresh
    )
    if not claimed:
        return
    job = await Job.get(id=job_id)
    await publish(channel(job.id), {"id": job.id, "status": job.status.value})
    handler = (_HANDLERS if handlers is None else handlers).get(job.kind)
    progress = Progress(job, publish)
    try:
        if handler is None:
            raise LookupError(f"no handler for {job.kind} jobs in this version")
        result = await handler(job.params, progress)
        job.status, job.result = JobStatus.SUCCEEDED, result
    except Exception as exc:
        log.exception("job %s (%s) failed", job.id, job.kind)
        job.status = JobStatus.FAILED
        job.errors = [*job.errors, {"row": None, "field": None, "message": f"{type(exc).__name__}: {exc}"}]
    job.finished_at = clock.now()
    async with atomic():
        await job.save()
    await publish(channel(job.id), {"id": job.id, "status": job.status.value})


class RequesterGone(Exception):
    """The staff member who asked for a job is no longer active or no longer allowed to: the job fails."""


async def requester(job: Job, roles: frozenset[Role], what: str) -> Caller:
    """The staff member who asked for `job`, as they are now, acting for it in a worker."""
    if job.created_by_id is None:
        return COMMAND_LINE
    staff = await Staff.get_or_none(id=job.created_by_id)
    if staff is None or not staff.active:
        raise RequesterGone(f"The staff member who asked for {what} is no longer active")
    caller = Caller(staff=staff, request_id=f"job:{job.id}")
    if staff.role not in roles:
        raise RequesterGone(f"The staff member who asked for {what} may no longer do it")
    return caller


async def unfinished() -> list[int]:
    """Queued or running jobs: in the embedded setup, those the previous process left behind."""
    return (
        await Job.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("id").values_list("id", flat=True)
    )


async def stale_queued(older_than: timedelta = timedelta(minutes=2)) -> list[int]:
    """Queued jobs whose message may have been lost (the process died between commit and send)."""
    return await Job.filter(status=JobStatus.QUEUED, created_at__lt=clock.now() - older_than).values_list(
        "id", flat=True
    )
