"""Jobs: long work created QUEUED by a mutation, run by a worker, resumable after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from operator import itemgetter

from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet

from core.db import atomic, on_commit
from core.settings import SettingsError, active as active_settings, section
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
    # CRM_JOB_HEARTBEAT_SECONDS: while a delivery runs a job (or a batch), its worker writes the row's
    # heartbeat this often.
    job_heartbeat_seconds: int = 10
    # CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS: a RUNNING job (or batch) whose heartbeat is older than this lost its
    # worker: the lost-job sweep delivers it again, and a delivery may take it over.
    job_heartbeat_timeout_seconds: int = 60
    # CRM_JOB_SWEEP_SECONDS: how often the lost-job sweep (requeue_lost_jobs) runs.
    job_sweep_seconds: int = 15
    # CRM_JOB_QUEUED_SECONDS: a job still QUEUED this long after it was created lost its message (the process
    # died between commit and send); requeue_stale_jobs sends it again.
    job_queued_seconds: int = 120
    # CRM_JOB_MAX_WORKER_STOPS: a job (or batch) whose worker stopped (was killed) this many times while running
    # it is FAILED, with that explanation, instead of being delivered again (a poison message).
    job_max_worker_stops: int = 3

    def check(self) -> None:
        if not 1 <= self.job_stall_seconds <= 86_400:
            raise SettingsError("CRM_JOB_STALL_SECONDS must be between 1 and 86400")
        if not 1 <= self.job_heartbeat_seconds <= 600:
            raise SettingsError("CRM_JOB_HEARTBEAT_SECONDS must be between 1 and 600")
        if not 2 * self.job_heartbeat_seconds <= self.job_heartbeat_timeout_seconds <= 86_400:
            raise SettingsError(
                "CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS must be at least twice CRM_JOB_HEARTBEAT_SECONDS (and at most 86400)"
            )
        if not 1 <= self.job_sweep_seconds <= 3_600:
            raise SettingsError("CRM_JOB_SWEEP_SECONDS must be between 1 and 3600")
        if not 1 <= self.job_queued_seconds <= 86_400:
            raise SettingsError("CRM_JOB_QUEUED_SECONDS must be between 1 and 86400")
        if not 1 <= self.job_max_worker_stops <= 100:
            raise SettingsError("CRM_JOB_MAX_WORKER_STOPS must be between 1 and 100")

    @property
    def heartbeat_timeout(self) -> timedelta:
        return timedelta(seconds=self.job_heartbeat_timeout_seconds)


@section
@dataclass(frozen=True)
class BrokerSettings:
    """Dramatiq's Redis broker (tasks/broker.py). A worker that dies holding messages (the one it runs and those it
    prefetched) leaves them unacknowledged; the broker gives them back to the queue during its maintenance, which
    runs on a random share of its commands and gives back the messages of workers whose broker heartbeat is older
    than the timeout. Dramatiq's defaults (0.1% of commands, 60 s) took minutes to give them back."""

    # CRM_BROKER_HEARTBEAT_TIMEOUT_MS: a worker process silent this long is dead; its messages go back. A live
    # worker's consumers poll Redis at least every second, so a few seconds' silence already means it is gone.
    broker_heartbeat_timeout_ms: int = 30_000
    # CRM_BROKER_MAINTENANCE_CHANCE: commands out of a million that run the maintenance (100000: one in ten; it
    # costs two sorted-set reads when no worker died).
    broker_maintenance_chance: int = 100_000
    # CRM_BROKER_DEAD_MESSAGE_TTL_MS: how long dead-lettered messages (retries used up) are kept (7 days).
    broker_dead_message_ttl_ms: int = 7 * 24 * 60 * 60 * 1000

    def check(self) -> None:
        if not 1_000 <= self.broker_heartbeat_timeout_ms <= 3_600_000:
            raise SettingsError("CRM_BROKER_HEARTBEAT_TIMEOUT_MS must be between 1000 and 3600000")
        if not 0 <= self.broker_maintenance_chance <= 1_000_000:
            raise SettingsError("CRM_BROKER_MAINTENANCE_CHANCE must be between 0 and 1000000 (per million)")
        if not 60_000 <= self.broker_dead_message_ttl_ms <= 90 * 24 * 60 * 60 * 1000:
            raise SettingsError("CRM_BROKER_DEAD_MESSAGE_TTL_MS must be between 60000 and 90 days")


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


# ---------------------------------------------------------------- deliveries, heartbeats and lost workers
#
# A delivery (a message run by a worker) takes a job with a conditional update (`_claim`): a QUEUED job, or a
# RUNNING one that nobody runs (its worker is unset: handed back by the sweep, or left by a delivery that raised),
# or whose heartbeat is older than CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS (its worker was lost). A RUNNING job whose
# heartbeat is fresh is left to the delivery running it: a second message (the broker giving back a dead worker's
# messages, a sweep) never runs it twice at once. While the delivery runs, a task on the worker's event loop
# writes the heartbeat every CRM_JOB_HEARTBEAT_SECONDS (`_heartbeat`). The lost-job sweep (`lost`) hands back the
# RUNNING jobs whose heartbeat went stale and sends them again; the job resumes after its checkpoint.
#
# Dramatiq's retries never see a worker killed mid-run, so the stops are counted on the row (`worker_stops`): a
# delivery finding the previous one's worker still named on a stale row, or the sweep handing such a row back,
# counts one. A delivery that would be the next after CRM_JOB_MAX_WORKER_STOPS stops parks the job as FAILED with
# `stopped_message` instead of running it (the sweep looks only at RUNNING jobs, so that ends it). Batches of a
# job split into batches work the same way (JobBatch: `deliveries`, `worker`, `heartbeat_at`, `worker_stops`).


def worker_name() -> str:
    """This process, as the rows it runs name it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def stopped_message(stops: int, what: str = "the job") -> str:
    return (
        f"{what} was not run again: its worker stopped {stops} times while running it (killed, out of memory or "
        "its host lost); see the worker logs, then start it again"
    )


def _job_settings() -> JobSettings:
    return active_settings().of(JobSettings)


async def _claim(job: Job, settings: JobSettings, publish: Publish) -> Job | None:
    """Take `job` for this delivery (see above): the job as claimed, or None when another delivery runs it, took
    it first, or when it was parked as FAILED for its worker stopping too often."""
    now = clock.now()
    stale = now - settings.heartbeat_timeout
    running = job.status == JobStatus.RUNNING
    if running and job.worker is not None and job.heartbeat_at is not None and job.heartbeat_at >= stale:
        log.info("job %s is running in %s; this delivery leaves it to that one", job.id, job.worker)
        return None
    stops = job.worker_stops + (1 if running and job.worker is not None else 0)
    # Compare-and-set on what was read: of two deliveries (or a delivery and the sweep) exactly one moves on.
    free = (
        Q(status=JobStatus.QUEUED)
        | Q(status=JobStatus.RUNNING, worker__isnull=True)
        | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
    )
    same = Job.filter(free, id=job.id, attempts=job.attempts, worker_stops=job.worker_stops)
    if stops >= settings.job_max_worker_stops:
        message = stopped_message(stops)
        errors = [*job.errors, {"row": None, "field": None, "message": message}][:MAX_STORED_ERRORS]
        parked = await same.update(
            status=JobStatus.FAILED,
            finished_at=now,
            worker=None,
            worker_stops=stops,
            failed=job.failed + 1,
            errors=errors,
        )
        if parked:
            log.error("job %s (%s) FAILED: %s", job.id, job.kind, message)
            await publish(channel(job.id), {"id": job.id, "status": JobStatus.FAILED.value})
        return None
    if stops > job.worker_stops:
        log.warning("job %s: the worker %s stopped while running it (%s time(s))", job.id, job.worker, stops)
    fresh = {} if job.checkpoint else {"processed": 0, "failed": 0, "errors": [], "total": None, "result": None}
    claimed = await same.update(
        status=JobStatus.RUNNING,
        started_at=job.started_at or now,
        attempts=job.attempts + 1,
        worker=worker_name(),
        heartbeat_at=now,
        worker_stops=stops,
        **fresh,
    )
    return await Job.get(id=job.id) if claimed else None


@asynccontextmanager
async def _heartbeat(rows: Callable[[], QuerySet], every: float, what: str) -> AsyncIterator[None]:
    """While the block runs, a task on this event loop writes `heartbeat_at` of `rows()` (the row as this
    delivery claimed it) every `every` seconds; it stops when the block ends, or when the row is no longer this
    delivery's (another took it over after this one's heartbeat went stale)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                if not await rows().update(heartbeat_at=clock.now()):
                    log.warning("%s is no longer this delivery's; its heartbeat stops", what)
                    return
            except Exception:  # the database away for a moment: the next beat tries again
                log.warning("%s: the heartbeat was not written", what, exc_info=True)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _hand_back(rows: QuerySet, *, keep_heartbeat: bool) -> None:
    """The delivery ends without finishing its row: nobody runs it now (a stop is not counted). With the heartbeat
    kept, the sweep delivers it again after the timeout; without, it waits for something else (its batches)."""
    changes: dict = {"worker": None} if keep_heartbeat else {"worker": None, "heartbeat_at": None}
    try:
        await rows.update(**changes)
    except Exception:  # the database is away: the row's heartbeat goes stale, and the sweep counts a stop
        log.warning("could not hand a row back", exc_info=True)


async def run(job_id: int, publish: Publish, *, handlers: Mapping[str, Handler] | None = None) -> None:
    """Run one job to its end. Idempotent: a finished job is left alone, and so is one another delivery runs
    (fresh heartbeat); a re-delivered one resumes after its checkpoint when its handler keeps one, and otherwise
    restarts from scratch. `handlers` replaces the registered ones (tests)."""
    job = await Job.get_or_none(id=job_id)
    if job is None or job.status.finished:
        log.info("job %s is finished or gone; nothing to do", job_id)
        return
    settings = _job_settings()
    job = await _claim(job, settings, publish)
    if job is None:
        return
    await publish(channel(job.id), {"id": job.id, "status": job.status.value})
    handler = (_HANDLERS if handlers is None else handlers).get(job.kind)
    progress = Progress(job, publish)
    attempt = job.attempts

    def mine() -> QuerySet[Job]:
        return Job.filter(id=job_id, attempts=attempt, status=JobStatus.RUNNING)

    ended = False
    try:
        async with _heartbeat(mine, settings.job_heartbeat_seconds, f"job {job_id}"):
            try:
                if handler is None:
                    raise LookupError(f"no handler for {job.kind} jobs in this version")
                result = await handler(job.params, progress)
                if isinstance(result, InBatches):
                    if result.pending:  # the batches run now; the last one to finish ends the job
                        await _hand_back(mine(), keep_heartbeat=False)
                        ended = True
                        await publish(channel(job.id), {"id": job.id, "status": job.status.value})
                        return
                    result = job.result  # nothing was left to do (an empty job): it ends here
                job.status, job.result = JobStatus.SUCCEEDED, result
            except Exception as exc:
                log.exception("job %s (%s) failed", job.id, job.kind)
                job.status = JobStatus.FAILED
                job.errors = [*job.errors, {"row": None, "field": None, "message": f"{type(exc).__name__}: {exc}"}]
            job.finished_at, job.worker = clock.now(), None  # nobody runs it any more
            async with atomic():
                await job.save()
            ended = True
    finally:
        if not ended:  # a BaseException (Superseded, cancelled) or the database away: not a stop of the worker
            await _hand_back(mine(), keep_heartbeat=True)
    await publish(channel(job.id), {"id": job.id, "status": job.status.value})


async def lost(timeout: timedelta) -> list[tuple[str, tuple[int, ...]]]:
    """The lost-job sweep: (actor, args) messages to send again for the RUNNING jobs and batches whose heartbeat is
    older than `timeout`. Each row is claimed with a conditional update that hands it back (no worker) and restarts
    its clock, so that two sweeps at once send each message once, and a message lost again is sent again after
    another `timeout`. A row whose worker was still named counts a stop of that worker."""
    now = clock.now()
    cutoff = now - timeout
    stopped = await update_returning(
        Job.filter(status=JobStatus.RUNNING, worker__isnull=False, heartbeat_at__lt=cutoff).update(
            worker=None, heartbeat_at=now, worker_stops=F("worker_stops") + 1
        ),
        "id",
    )
    unsent = await update_returning(
        Job.filter(status=JobStatus.RUNNING, worker__isnull=True, heartbeat_at__lt=cutoff).update(heartbeat_at=now),
        "id",
    )
    batches = await update_returning(
        JobBatch.filter(
            worker__isnull=False,
            heartbeat_at__lt=cutoff,
            done_at__isnull=True,
            job_id__in=Subquery(Job.filter(status=JobStatus.RUNNING).values("id")),
        ).update(worker=None, heartbeat_at=now, worker_stops=F("worker_stops") + 1),
        "job_id",
        "seq",
    )
    if stopped or batches:
        log.warning(
            "workers stopped while running jobs %s and batches %s; they are sent again",
            sorted(row["id"] for row in stopped),
            sorted((row["job_id"], row["seq"]) for row in batches),
        )
    messages: list[tuple[str, tuple[int, ...]]] = [
        ("run_job", (job_id,)) for job_id in sorted(row["id"] for row in [*stopped, *unsent])
    ]
    messages += [(BATCH_ACTOR, (row["job_id"], row["seq"])) for row in sorted(batches, key=itemgetter("job_id", "seq"))]
    return messages


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
    """Queued or running jobs: in the embedded setup, those the previous process left behind. That process (the
    only one running jobs) is gone, so its rows are handed back first: their messages take them at once instead of
    waiting for the heartbeat to go stale (no stop is counted: it may have been stopped on purpose)."""
    await Job.filter(status=JobStatus.RUNNING, worker__isnull=False).update(worker=None)
    await JobBatch.filter(worker__isnull=False, done_at__isnull=True).update(worker=None)
    return (
        await Job.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("id").values_list("id", flat=True)
    )


async def stale_queued(older_than: timedelta = timedelta(seconds=JobSettings.job_queued_seconds)) -> list[int]:
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
    settings = _job_settings()
    batch = await _claim_batch(batch, settings, publish)
    if batch is None:
        return
    delivery = batch.deliveries

    def mine() -> QuerySet[JobBatch]:
        return JobBatch.filter(id=batch.id, deliveries=delivery, done_at__isnull=True)

    finished = False
    try:
        async with _heartbeat(mine, settings.job_heartbeat_seconds, f"batch {seq} of job {job_id}"), atomic():
            await work(job, batch.params)
            # One batch of the job ends at a time (PostgreSQL: the job row's lock; SQLite: its single writer),
            # and each counts the done batches afresh: a count never goes stale, whoever else writes it.
            current = await locked(job_id)
            total = current.total if current is not None else None
            now = clock.now()
            if await JobBatch.filter(id=batch.id, done_at__isnull=True).update(done_at=now, worker=None):
                done = await JobBatch.filter(job_id=job_id, done_at__isnull=False).count()
                await Job.filter(id=job_id).update(processed=done, updated_at=now)
                if total is not None and done >= total:
                    finished = bool(
                        await Job.filter(id=job_id, status=JobStatus.RUNNING).update(
                            status=JobStatus.SUCCEEDED, finished_at=now
                        )
                    )
    except BaseException:  # rolled back: its retry (or the sweep) runs it again; not a stop of the worker
        await _hand_back(mine(), keep_heartbeat=True)
        raise
    status = JobStatus.SUCCEEDED if finished else JobStatus.RUNNING
    await publish(channel(job_id), {"id": job_id, "status": status.value})


async def _claim_batch(batch: JobBatch, settings: JobSettings, publish: Publish) -> JobBatch | None:
    """Take `batch` for this delivery, as `_claim` takes a job: None when another delivery runs it (fresh
    heartbeat) or took it first, or when its worker stopped too often (the job is then FAILED)."""
    now = clock.now()
    stale = now - settings.heartbeat_timeout
    if batch.worker is not None and batch.heartbeat_at is not None and batch.heartbeat_at >= stale:
        log.info("batch %s of job %s is running in %s; this delivery leaves it", batch.seq, batch.job_id, batch.worker)
        return None
    stops = batch.worker_stops + (1 if batch.worker is not None else 0)
    same = JobBatch.filter(
        Q(worker__isnull=True) | Q(heartbeat_at__lt=stale),
        id=batch.id,
        deliveries=batch.deliveries,
        worker_stops=batch.worker_stops,
        done_at__isnull=True,
    )
    if stops >= settings.job_max_worker_stops:
        if await same.update(worker=None, worker_stops=stops):
            await fail(batch.job_id, stopped_message(stops, f"batch {batch.seq}"), publish)
        return None
    if stops > batch.worker_stops:
        log.warning("batch %s of job %s: the worker %s stopped while running it", batch.seq, batch.job_id, batch.worker)
    if not await same.update(
        worker=worker_name(), heartbeat_at=now, deliveries=batch.deliveries + 1, worker_stops=stops
    ):
        return None
    return await JobBatch.get(id=batch.id)


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
