"""A worker killed with SIGKILL mid-job (docs/RELIABILITY.md, "A worker is killed"): real `crm scheduler` and
`crm worker` processes on a Redis server of the test's own and the test's PostgreSQL.

A delivery writes its job's (or batch's) heartbeat every CRM_JOB_HEARTBEAT_SECONDS; the lost-job sweep
(requeue_lost_jobs, every CRM_JOB_SWEEP_SECONDS) hands back the RUNNING rows whose heartbeat is older than
CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS and sends them again, and the broker gives a dead worker's prefetched messages back
within CRM_BROKER_HEARTBEAT_TIMEOUT_MS (CRM_BROKER_MAINTENANCE_CHANCE). The work resumes after its checkpoint on a
fresh worker and ends as one clean run would: nothing twice, nothing missing. A job whose worker is killed on every
delivery is FAILED after CRM_JOB_MAX_WORKER_STOPS stops, and then nothing sends it again.

The jobs are created here through the services (no API process: it would only cost its start-up) and their
message is sent to the private Redis as the API would after the commit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.db import atomic
from models.customers import Channel, Customer, CustomerKind
from models.jobs import Job, JobBatch, JobStatus
from models.notifications import Notification, NotificationStatus
from models.portraits import Portrait
from models.staff import Role
from models.surveys import InvitationStatus, QuestionType, SurveyInvitation, SurveyKind
from services import clock, customer_import, survey_campaigns, surveys
from services.access import Caller
from tests.conftest import make_staff
from tests.portraits.helpers import customers_with_a_deposit
from tests.reliability.harness import (
    Process,
    RedisServer,
    crm_env,
    eventually,
    processes,
    redis_server,
    send_message,
    start_scheduler,
    start_worker,
)

pytestmark = pytest.mark.timeout(60)

# Short enough that a lost worker is noticed within seconds (the defaults are 10 s, 60 s, 15 s and 30 s).
FAST = {
    "CRM_JOB_HEARTBEAT_SECONDS": "1",
    "CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS": "3",
    "CRM_JOB_SWEEP_SECONDS": "1",
    "CRM_BROKER_HEARTBEAT_TIMEOUT_MS": "2000",
    "CRM_BROKER_MAINTENANCE_CHANCE": "1000000",
    "CRM_NOTIFICATION_CLAIM_SECONDS": "3",
    "CRM_NOTIFICATION_LOST_SECONDS": "3",
    "CRM_NOTIFICATION_SWEEP_SECONDS": "1",
    "CRM_PORTRAIT_DEBOUNCE_SECONDS": "600",  # the freshness sweep stays out of the way of the jobs
}
IMPORT_ROWS = 10_000  # two batches of customer_import.BATCH_ROWS: the kill lands after the first
RECOMPUTE_CUSTOMERS, RECOMPUTE_BATCH = 2000, 50
CAMPAIGN_CUSTOMERS = 2000  # four batches of survey_campaigns.BATCH_CUSTOMERS
POISON_ROWS = 2000


@pytest.fixture(autouse=True)
def _real_clock():
    """The processes run on the real clock; so does this test."""
    clock.reset()
    yield
    clock.reset()


async def _job(job_id: int) -> Job:
    return await Job.get(id=job_id)


async def _kill_when(
    worker: Process, job_id: int, ready: Callable[[Job], bool], *, timeout: float, meanwhile: Callable[[], None]
) -> Job:
    """Polls the job until `ready(job)`, then SIGKILLs the worker; the job as it was then. `meanwhile()` is called
    once the job is RUNNING: it starts the fresh worker, whose start-up then overlaps the doomed one's work (a job
    of one message gives it nothing until the doomed one dies; the batches of a recompute it shares)."""
    deadline = time.monotonic() + timeout
    running = False
    while True:
        job = await _job(job_id)
        assert not job.status.finished, f"the job ended before the kill: {job.status} {job.errors}"
        if not running and job.status == JobStatus.RUNNING:
            running = True
            meanwhile()
        if ready(job):
            worker.kill()
            return job
        assert time.monotonic() < deadline, (
            f"the job did not get going ({job.processed}/{job.total}):\n" + (worker.output()[-3000:])
        )
        await asyncio.sleep(0.02)


async def _finished(job_id: int, timeout: float, started: list[Process]) -> Job:
    async def ended() -> Job | None:
        job = await _job(job_id)
        return job if job.status.finished else None

    try:
        return await eventually(ended, timeout=timeout, interval=0.2, what=f"job {job_id} ending")
    except AssertionError:
        for process in started:
            print(f"---- {process.name}\n{process.output()[-4000:]}")
        raise


async def _run_and_kill(
    redis_url: str, env: dict, started: list[Process], job_id: int, ready: Callable[[Job], bool]
) -> tuple[Job, Job]:
    """Sends the job to the last started worker, SIGKILLs it once `ready(job)`, with a fresh worker started as the
    job runs, and waits for the job to end: the job as it was at the kill, and as it ended."""
    doomed = started[-1]
    send_message(redis_url, "run_job", job_id, queue_name="jobs")
    at_kill = await _kill_when(
        doomed, job_id, ready, timeout=40, meanwhile=lambda: started.append(start_worker(env, name="fresh"))
    )
    return at_kill, await _finished(job_id, 40, started)


@contextlib.contextmanager
def _cluster(database_url: str, **more: str) -> Iterator[tuple[RedisServer, dict[str, str], list[Process]]]:
    """A Redis of the test's own, `crm scheduler` and one `crm worker` ("doomed"), started at once: they boot
    while the test writes its data. Everything is killed at the end."""
    with redis_server() as redis, processes() as started:
        env = crm_env(database_url, redis.url, **FAST, **more)
        started += [start_scheduler(env), start_worker(env, name="doomed")]
        yield redis, env, started


# ---------------------------------------------------------------- a CSV import


async def _chunks(text: str) -> AsyncIterator[bytes]:
    data = text.encode()
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]


async def test_an_import_whose_worker_is_killed_resumes_on_a_fresh_worker(app, migrated_database):
    with _cluster(migrated_database) as (redis, env, started):
        member = await make_staff(Role.MANAGER)
        csv = "customer_no,name,email\n" + "".join(
            f"C{n:010d},客户{n},c{n}@example.com\n" for n in range(1, IMPORT_ROWS + 1)
        )
        async with atomic():
            job = await customer_import.start_import(
                Caller(member), _chunks(csv), filename="big.csv", update_existing=False, enqueue=lambda _: None
            )
        at_kill, done = await _run_and_kill(redis.url, env, started, job.id, lambda j: j.checkpoint > 0)

    assert at_kill.status == JobStatus.RUNNING and 0 < at_kill.checkpoint < IMPORT_ROWS, "killed too late"
    assert done.status == JobStatus.SUCCEEDED, done.errors
    assert (done.total, done.processed, done.failed, done.errors) == (IMPORT_ROWS, IMPORT_ROWS, 0, [])
    assert done.result == {"created": IMPORT_ROWS, "updated": 0, "unchanged": 0, "failed": 0, "rows": IMPORT_ROWS}
    assert done.attempts >= 2 and done.worker_stops >= 1  # the kill was seen (a loaded machine may see more)
    numbers = await Customer.all().values_list("customer_no", flat=True)
    assert len(numbers) == len(set(numbers)) == IMPORT_ROWS  # nothing twice, nothing missing
    assert set(numbers) == {f"C{n:010d}" for n in range(1, IMPORT_ROWS + 1)}


# ---------------------------------------------------------------- a full portrait recompute


async def test_a_recompute_whose_worker_is_killed_computes_every_portrait_once(app, migrated_database):
    from services import portrait_jobs

    batches = RECOMPUTE_CUSTOMERS // RECOMPUTE_BATCH
    with _cluster(migrated_database, CRM_PORTRAIT_BATCH_SIZE=str(RECOMPUTE_BATCH)) as (redis, env, started):
        ids = await customers_with_a_deposit(RECOMPUTE_CUSTOMERS)
        member = await make_staff(Role.ANALYST)
        async with atomic():
            job = await portrait_jobs.start(Caller(member), everyone=True, enqueue=lambda _: None)
        at_kill, done = await _run_and_kill(redis.url, env, started, job.id, lambda j: j.processed >= 3)

    assert at_kill.status == JobStatus.RUNNING and at_kill.processed < batches, "killed too late"
    assert done.status == JobStatus.SUCCEEDED, done.errors
    assert (done.total, done.processed, done.errors) == (batches, batches, [])
    assert await JobBatch.filter(job_id=job.id, done_at__isnull=True).count() == 0
    # Every customer has exactly one portrait, computed by this job.
    portraits = await Portrait.all().values_list("customer_id", "computed_at")
    assert sorted(customer_id for customer_id, _ in portraits) == ids
    assert all(done.created_at <= computed_at <= done.finished_at for _, computed_at in portraits)


# ---------------------------------------------------------------- a survey campaign


async def test_a_campaign_whose_worker_is_killed_invites_and_mails_each_customer_once(
    app, migrated_database, tmp_path: Path
):
    drop = tmp_path / "outbox"
    with _cluster(migrated_database, CRM_MAIL_DROP_DIR=str(drop)) as (redis, env, started):
        await Customer.bulk_create(
            [
                Customer(customer_no=f"C{n:010d}", kind=CustomerKind.INDIVIDUAL, name="张伟", email=f"c{n}@example.com")
                for n in range(1, CAMPAIGN_CUSTOMERS + 1)
            ],
            batch_size=1000,
        )
        launcher = await make_staff(Role.MANAGER)
        questions = [{"key": "nps", "text": "您有多大可能向亲友推荐我行？", "type": QuestionType.NPS}]
        template = await surveys.create_template(
            Caller(launcher), name="客户推荐度调查", kind=SurveyKind.NPS, questions=questions
        )
        async with atomic():
            job = await survey_campaigns.start(
                Caller(launcher), template.id, channel=Channel.EMAIL, enqueue=lambda _: None
            )
        at_kill, done = await _run_and_kill(redis.url, env, started, job.id, lambda j: j.checkpoint > 0)

        async def all_sent() -> bool:
            return not await Notification.filter(status=NotificationStatus.QUEUED).exists()

        await eventually(all_sent, timeout=20, what="every notification recorded")

    assert at_kill.status == JobStatus.RUNNING and at_kill.processed < CAMPAIGN_CUSTOMERS, "killed too late"
    assert done.status == JobStatus.SUCCEEDED, done.errors
    assert (done.total, done.processed) == (CAMPAIGN_CUSTOMERS, CAMPAIGN_CUSTOMERS)
    assert done.result["invited"] + done.result["skipped"] == CAMPAIGN_CUSTOMERS
    invitations = await SurveyInvitation.filter(campaign_id=job.id).values_list("customer_id", "status")
    assert len(invitations) == len({c for c, _ in invitations}) == CAMPAIGN_CUSTOMERS  # one each, none missing
    assert InvitationStatus.SUPPRESSED not in {status for _, status in invitations}
    notifications = await Notification.all().values_list("id", "customer_id", "status")
    assert len(notifications) == len({c for _, c, _ in notifications}) == CAMPAIGN_CUSTOMERS
    assert {status for _, _, status in notifications} == {NotificationStatus.SENT}
    mails = sorted(drop.glob("notification-*.eml"))
    assert [p.name for p in mails] == sorted(f"notification-{n}.eml" for n, _, _ in notifications)


# ---------------------------------------------------------------- a poison message


async def test_a_job_that_kills_every_worker_fails_after_the_limit_and_is_not_sent_again(app, migrated_database):
    with _cluster(migrated_database, CRM_JOB_MAX_WORKER_STOPS="3") as (redis, env, started):
        workers = [started[-1], start_worker(env, name="standby")]
        started.append(workers[-1])
        member = await make_staff(Role.MANAGER)
        csv = "customer_no,name\n" + "".join(f"C{n:010d},客户{n}\n" for n in range(1, POISON_ROWS + 1))
        async with atomic():
            job = await customer_import.start_import(
                Caller(member), _chunks(csv), filename="poison.csv", update_existing=False, enqueue=lambda _: None
            )
        send_message(redis.url, "run_job", job.id, queue_name="jobs")
        kills = 0
        deadline = time.monotonic() + 50
        while (current := await _job(job.id)).status != JobStatus.FAILED:
            assert current.status != JobStatus.SUCCEEDED, "the job outran its killer"
            assert time.monotonic() < deadline, f"not FAILED after {kills} kills: {current.status} {current.errors}"
            running = current.status == JobStatus.RUNNING and current.worker is not None
            victim = next((w for w in workers if running and current.worker.endswith(f":{w.pid}")), None)
            if victim is not None and victim.alive():  # each delivery's worker dies as soon as it starts the job
                victim.kill()
                kills += 1
                workers.remove(victim)
                workers.append(fresh := start_worker(env, name=f"worker-{kills + 2}"))
                started.append(fresh)
            await asyncio.sleep(0.02)
        failed = current
        await asyncio.sleep(3)  # three sweeps: none sends it again
        after = await _job(job.id)
        queued = redis.client().llen("dramatiq:jobs")
        alive = [w.alive() for w in workers]

    assert kills == 3, kills
    assert (failed.attempts, failed.worker_stops) == (3, 3)
    assert "its worker stopped 3 times while running it" in failed.errors[-1]["message"], failed.errors
    assert (after.status, after.attempts, after.worker_stops, after.finished_at) == (
        JobStatus.FAILED,
        3,
        3,
        failed.finished_at,
    )
    assert queued == 0 and all(alive)
    assert await Customer.all().count() <= POISON_ROWS  # whatever a killed delivery committed, once
    assert failed.finished_at - failed.started_at < timedelta(minutes=1)
