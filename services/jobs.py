"""Jobs: long work created QUEUED by a mutation, run by a worker, resumable after a crash."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from tortoise.queryset import QuerySet

from core.db import atomic, on_commit
from core.settings import SettingsError, section
from core.sql import update_returning
from models.jobs import Job, JobBatch, JobStatus
from models.staff import Role, Staff
from services import clock, dispatch
from services.access import ALL_ROLES, COMMAND_LINE, JOB_OVERSEERS, Caller, require_role
from services.errors import not_found

log = logging.getLogger(__name__)

MAX_STORED_ERRORS = 1000
PROGRESS_INTERVAL = 0.5  # seconds between progress writes while a job runs
Enqueue = Callable[[int], None]
Publish = Callable[[str, dict], Awaitable[None]]
BATCH_ACTOR = "run_job_batch"  # tasks/jobs.py: runs one batch of a job split into batches


@section
@dataclass(frozen=True)
class JobSettings:
    # CRM_JOB_STALL_SECONDS: a job split into batches that finished no batch for this long has lost messages or
    # a dead worker's batches; the sweep (tasks/jobs.py) sends its unfinished batches again.
    job_stall_seconds: int = 60

    def check(self) -> None:
        if not 1 <= self.job_stall_seconds <= 86_400:
            raise SettingsError("CRM_JOB_STALL_SECONDS must be between 1 and 86400")


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


@dataclass(frozen=True)
class InBatches:
    """What a handler returns (from `split`) when its work went out as batches: the job stays RUNNING and the
    delivery of its last batch ends it."""

    total: int
    pending: int


Handler = Callable[[dict, Progress], Awaitable[dict | InBatches]]
# One batch of a job split into batches: (the job, the batch's params) -> None; run inside the transaction that
# marks the batch done, so it must be idempotent (a batch whose worker died is run again).
BatchWork = Callable[[Job, dict], Awaitable[None]]
_HANDLERS: dict[str, Handler] = {}
_BATCH_WORK: dict[str, BatchWork] = {}
# Who may start each kind of job (the role set of the mutation that starts it): a job's file is handed out only
# while its creator still holds one of them (docs/DOMAIN.md, limits and protection). A domain names the set when it
# registers its kind (`starters=`); these are the kinds registered before it could.
_STARTERS: dict[str, frozenset[Role]] = {}


def register_kind(
    kind: str, handler: Handler, *, batch: BatchWork | None = None, starters: frozenset[Role] | None = None
) -> None:
    """A domain declares a kind of job and the handler a worker runs for it (from its tasks module). A kind
    whose handler splits the work (`split`) also gives the work of one batch; `starters` is the role set that
    may start it (a job's file is downloadable only while its creator holds one)."""
    if _HANDLERS.get(kind, handler) is not handler or _BATCH_WORK.get(kind, batch) is not batch:
        raise ValueError(f"job kind {kind} is registered already")
    _HANDLERS[kind] = handler
    if batch is not None:
        _BATCH_WORK[kind] = batch
    if starters is not None:
        _STARTERS[kind] = starters


def file_allowed_to(job: Job, creator: Staff | None) -> bool:
    """Whether `job`'s file may still be handed out, its creator being `creator`: they are active and still hold
    a role that may start this kind of job (a kind that names no such roles hands out nothing). A job of the
    command line has no creator; who sees it (`visible`) decides."""
    if job.created_by_id is None:
        return True
    roles = _STARTERS.get(job.kind)
    return roles is not None and creator is not None and creator.active and creator.role in roles


async def file_allowed(job: Job) -> bool:
    """file_allowed_to, reading the creator."""
    creator = await Staff.get_or_none(id=job.created_by_id) if job.created_by_id is not None else None
    return file_allowed_to(job, creator)


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
        if isinstance(result, InBatches):
            if result.pending:  # the batches run now; the last one to finish ends the job
                await publish(channel(job.id), {"id": job.id, "status": job.status.value})
                return
            result = job.result  # nothing was left to do (an empty job): it ends here
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


# ---------------------------------------------------------------- jobs split into batches
#
# Long work that several worker processes share: the handler plans the batches (`split`), which are stored as
# JobBatch rows and sent as one message each (`BATCH_ACTOR`, after commit); `run_batch` runs one batch and marks
# it done in the same transaction, and the batch that completes the count ends the job. Progress: total = the
# number of batches, processed = the batches done. A re-delivered batch that is done is skipped, one that is not
# runs again; a re-delivered job keeps its stored batches and sends the unfinished ones again; `stalled` finds
# the jobs whose batches stopped moving (a dead worker's prefetched messages, a lost message).


async def split(progress: Progress, batches: Sequence[dict], result: dict | None = None) -> InBatches:
    """For a handler: store the job's batches (params of each) and send every batch not done yet, once the
    transaction commits. A re-delivered job finds its batches stored already and keeps them (`batches` is then
    ignored). `result` is stored on the job as its result (e.g. what the batches cover)."""
    job = progress.job
    async with atomic():
        await locked(job.id)
        stored = await JobBatch.filter(job_id=job.id).count()
        if not stored:
            await JobBatch.bulk_create([JobBatch(job_id=job.id, seq=n, params=p) for n, p in enumerate(batches)])
        if result is not None and (not stored or job.result is None):  # a re-delivery starts with no result
            job.result = result
        total = stored or len(batches)
        pending = (
            await JobBatch.filter(job_id=job.id, done_at__isnull=True).order_by("seq").values_list("seq", flat=True)
        )
        job.total, job.processed = total, total - len(pending)
        await job.save(update_fields=["total", "processed", "result", "updated_at"])
        for seq in pending:
            dispatch.send_after_commit(BATCH_ACTOR, job.id, seq)
    return InBatches(total=total, pending=len(pending))


async def run_batch(job_id: int, seq: int, publish: Publish) -> None:
    """Run one batch (the BATCH_ACTOR). Idempotent: a batch done already, or of a job that is no longer
    RUNNING (FAILED, CANCELLED), is left alone; otherwise its work and its done mark commit together, the job's
    `processed` counts it once, and the batch that completes the count marks the job SUCCEEDED (conditional
    updates, so that of two last batches finishing at once exactly one ends the job)."""
    batch = await JobBatch.get_or_none(job_id=job_id, seq=seq)
    job = await Job.get_or_none(id=job_id)
    if batch is None or batch.done_at is not None or job is None or job.status != JobStatus.RUNNING:
        log.info("batch %s of job %s is done, gone or of a finished job; nothing to do", seq, job_id)
        return
    work = _BATCH_WORK.get(job.kind)
    if work is None:
        await fail(job_id, f"no batch work for {job.kind} jobs in this version", publish)
        return
    finished = False
    async with atomic():
        await work(job, batch.params)
        # One batch of the job ends at a time (PostgreSQL: the job row's lock; SQLite: its single writer), and
        # each counts the done batches afresh: a count never goes stale, whoever else writes it.
        current = await locked(job_id)
        total = current.total if current is not None else None
        now = clock.now()
        if await JobBatch.filter(id=batch.id, done_at__isnull=True).update(done_at=now):
            done = await JobBatch.filter(job_id=job_id, done_at__isnull=False).count()
            await Job.filter(id=job_id).update(processed=done, updated_at=now)
            if total is not None and done >= total:
                finished = bool(
                    await Job.filter(id=job_id, status=JobStatus.RUNNING).update(
                        status=JobStatus.SUCCEEDED, finished_at=now
                    )
                )
    status = JobStatus.SUCCEEDED if finished else JobStatus.RUNNING
    await publish(channel(job_id), {"id": job_id, "status": status.value})


async def locked(job_id: int) -> Job | None:
    """Inside a transaction: the job as it is now, its row held until the transaction ends (PostgreSQL; SQLite
    ignores it and has one writer). The whole row: Tortoise drops FOR UPDATE from `values_list` queries."""
    return await Job.filter(id=job_id).select_for_update().first()


async def fail(job_id: int, message: str, publish: Publish) -> None:
    """A batch failed for good (its retries are used up): the job is FAILED with that message, once."""
    job = await Job.get_or_none(id=job_id)
    if job is None or job.status.finished:
        return
    errors = [*job.errors, {"row": None, "field": None, "message": message}][:MAX_STORED_ERRORS]
    if await Job.filter(id=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, finished_at=clock.now(), failed=job.failed + 1, errors=errors
    ):
        await publish(channel(job_id), {"id": job_id, "status": JobStatus.FAILED.value})


async def stalled(older_than: timedelta) -> list[tuple[str, tuple[int, ...]]]:
    """(actor, args) messages to send again for the RUNNING jobs split into batches that made no progress for
    `older_than`: each unfinished batch, or the job itself when it died before storing its batches. The jobs
    are claimed with a conditional update of their `updated_at` (which also restarts their clock), so that two
    sweeps at once send each message once."""
    cutoff = clock.now() - older_than
    batched = list(_BATCH_WORK)
    if not batched:
        return []
    claimed = await update_returning(
        Job.filter(status=JobStatus.RUNNING, kind__in=batched, updated_at__lt=cutoff).update(updated_at=clock.now()),
        "id",
    )
    ids = sorted(row["id"] for row in claimed)
    if not ids:
        return []
    pending = (
        await JobBatch.filter(job_id__in=ids, done_at__isnull=True)
        .order_by("job_id", "seq")
        .values_list("job_id", "seq")
    )
    planned = set(await JobBatch.filter(job_id__in=ids).distinct().values_list("job_id", flat=True))
    messages: list[tuple[str, tuple[int, ...]]] = [(BATCH_ACTOR, (job_id, seq)) for job_id, seq in pending]
    messages += [("run_job", (job_id,)) for job_id in ids if job_id not in planned]
    return messages
