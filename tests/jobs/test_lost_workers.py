"""Workers that stop mid-job (services/jobs.py, "deliveries, heartbeats and lost workers"), without processes: the
claim of a delivery, the heartbeat, the lost-job sweep's claim and the limit on the stops of a job or batch. The
same with real processes killed by SIGKILL: tests/reliability/test_worker_killed.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.settings import Settings, SettingsError
from models.jobs import Job, JobBatch, JobStatus
from models.staff import Role
from services import clock, jobs
from tasks.broker import redis_broker
from tests.conftest import make_staff

TIMEOUT = timedelta(seconds=60)  # JobSettings' default heartbeat timeout
LONG_AGO = timedelta(minutes=5)
KIND = "TEST_LOST_WORKERS"
BATCHED = "TEST_LOST_WORKERS_BATCHED"
ran: list[tuple[str, int]] = []


async def _handler(params: dict, progress: jobs.Progress) -> dict:
    ran.append(("job", progress.job.id))
    return {"ok": True}


async def _batch_work(job: Job, params: dict) -> None:
    ran.append(("batch", params["n"]))


async def _plan(params: dict, progress: jobs.Progress) -> jobs.InBatches:
    return await jobs.split(progress, [{"n": 0}, {"n": 1}])


@pytest.fixture(autouse=True)
def _test_kinds(monkeypatch) -> None:
    # Registered for this module's tests only: the registries are the process's, shared with other test modules.
    monkeypatch.setitem(jobs._HANDLERS, KIND, _handler)
    monkeypatch.setitem(jobs._HANDLERS, BATCHED, _plan)
    monkeypatch.setitem(jobs._BATCH_WORK, BATCHED, _batch_work)


async def _publish(channel: str, message: dict) -> None:
    return None


@pytest.fixture(autouse=True)
def _clean():
    ran.clear()
    yield
    clock.reset()


async def _running(*, worker: str | None = "dead-host:1", beat_ago: timedelta | None = LONG_AGO, **fields) -> Job:
    member = await make_staff(Role.ADMIN)
    beat = clock.now() - beat_ago if beat_ago is not None else None
    defaults = {"status": JobStatus.RUNNING, "attempts": 1, "started_at": clock.now() - LONG_AGO}
    return await Job.create(kind=KIND, created_by=member, worker=worker, heartbeat_at=beat, **{**defaults, **fields})


# ---------------------------------------------------------------- a delivery's claim


async def test_a_job_whose_heartbeat_is_fresh_is_left_to_the_delivery_running_it(app):
    job = await _running(worker="live-host:7", beat_ago=timedelta(seconds=5))
    await jobs.run(job.id, _publish)
    after = await Job.get(id=job.id)
    assert ran == [] and (after.status, after.attempts, after.worker, after.worker_stops) == (
        JobStatus.RUNNING,
        1,
        "live-host:7",
        0,
    )


async def test_a_job_whose_worker_stopped_is_taken_over_and_the_stop_counted(app):
    job = await _running()
    await jobs.run(job.id, _publish)
    after = await Job.get(id=job.id)
    assert ran == [("job", job.id)]
    assert (after.status, after.attempts, after.worker_stops) == (JobStatus.SUCCEEDED, 2, 1)
    assert after.worker is None and after.heartbeat_at is not None  # nobody runs it now


async def test_a_queued_job_is_claimed_with_this_worker_and_a_heartbeat(app):
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind=KIND, created_by=member)
    seen: list[tuple[str | None, bool]] = []

    async def look(params: dict, progress: jobs.Progress) -> dict:
        row = await Job.get(id=progress.job.id)
        seen.append((row.worker, row.heartbeat_at is not None))
        return {}

    await jobs.run(job.id, _publish, handlers={KIND: look})
    assert seen == [(jobs.worker_name(), True)]
    assert (await Job.get(id=job.id)).worker_stops == 0


async def test_two_deliveries_at_once_run_the_job_once(app):
    job = await _running()
    await asyncio.gather(jobs.run(job.id, _publish), jobs.run(job.id, _publish))
    after = await Job.get(id=job.id)
    assert ran == [("job", job.id)] and (after.attempts, after.worker_stops) == (2, 1)


async def test_the_heartbeat_is_written_while_the_handler_runs(app, monkeypatch):
    monkeypatch.setattr(
        jobs, "_job_settings", lambda: jobs.JobSettings(job_heartbeat_seconds=1, job_heartbeat_timeout_seconds=2)
    )
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind=KIND, created_by=member)
    beats: list = []

    async def slow(params: dict, progress: jobs.Progress) -> dict:
        beats.append((await Job.get(id=progress.job.id)).heartbeat_at)
        await asyncio.sleep(1.5)
        beats.append((await Job.get(id=progress.job.id)).heartbeat_at)
        return {}

    await jobs.run(job.id, _publish, handlers={KIND: slow})
    assert beats[1] > beats[0]


async def test_a_delivery_that_raises_hands_the_job_back_without_counting_a_stop(app):
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind=KIND, created_by=member)

    class Interrupted(BaseException):
        pass

    async def interrupted(params: dict, progress: jobs.Progress) -> dict:
        raise Interrupted

    with pytest.raises(Interrupted):
        await jobs.run(job.id, _publish, handlers={KIND: interrupted})
    after = await Job.get(id=job.id)
    assert (after.status, after.worker, after.worker_stops) == (JobStatus.RUNNING, None, 0)
    assert after.heartbeat_at is not None  # the sweep sends it again once that is old
    await jobs.run(job.id, _publish)  # the retry takes it at once: nobody runs it
    after = await Job.get(id=job.id)
    assert (after.status, after.attempts, after.worker_stops) == (JobStatus.SUCCEEDED, 2, 0)


# ---------------------------------------------------------------- the limit


async def test_a_delivery_after_the_last_allowed_stop_fails_the_job_with_the_reason(app):
    job = await _running(attempts=3, worker_stops=2)  # a third worker died running it
    await jobs.run(job.id, _publish)
    after = await Job.get(id=job.id)
    assert ran == [] and (after.status, after.attempts, after.worker_stops) == (JobStatus.FAILED, 3, 3)
    assert "its worker stopped 3 times while running it" in after.errors[-1]["message"]
    assert after.finished_at is not None and after.worker is None
    await jobs.run(job.id, _publish)  # another message: a finished job is left alone
    assert ran == [] and (await Job.get(id=job.id)).attempts == 3


async def test_the_limit_is_a_setting(app, monkeypatch):
    monkeypatch.setattr(jobs, "_job_settings", lambda: jobs.JobSettings(job_max_worker_stops=5))
    job = await _running(attempts=3, worker_stops=2)
    await jobs.run(job.id, _publish)
    after = await Job.get(id=job.id)
    assert (after.status, after.worker_stops) == (JobStatus.SUCCEEDED, 3)


async def test_a_batch_whose_worker_stopped_too_often_fails_its_job(app):
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind=BATCHED, created_by=member, status=JobStatus.RUNNING, total=2)
    stale = clock.now() - LONG_AGO
    await JobBatch.create(
        job=job, seq=0, params={"n": 0}, deliveries=3, worker="dead:1", heartbeat_at=stale, worker_stops=2
    )
    await JobBatch.create(job=job, seq=1, params={"n": 1})
    await jobs.run_batch(job.id, 0, _publish)
    after = await Job.get(id=job.id)
    assert ran == [] and after.status == JobStatus.FAILED
    assert "batch 0 was not run again: its worker stopped 3 times while running it" in after.errors[-1]["message"]
    await jobs.run_batch(job.id, 1, _publish)  # the job's other batches are left alone
    assert ran == []


async def test_a_batch_is_claimed_once_and_left_to_a_live_delivery(app):
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind=BATCHED, created_by=member, status=JobStatus.RUNNING, total=2)
    fresh = clock.now() - timedelta(seconds=5)
    await JobBatch.create(job=job, seq=0, params={"n": 0}, deliveries=1, worker="live:1", heartbeat_at=fresh)
    await JobBatch.create(job=job, seq=1, params={"n": 1}, deliveries=1, worker="dead:1", heartbeat_at=fresh - LONG_AGO)
    await jobs.run_batch(job.id, 0, _publish)
    await jobs.run_batch(job.id, 1, _publish)
    assert ran == [("batch", 1)]
    taken = await JobBatch.get(job_id=job.id, seq=1)
    assert (taken.deliveries, taken.worker_stops, taken.done_at is not None) == (2, 1, True)
    left = await JobBatch.get(job_id=job.id, seq=0)
    assert (left.deliveries, left.worker, left.done_at) == (1, "live:1", None)


# ---------------------------------------------------------------- the sweep


async def test_the_sweep_sends_again_what_lost_its_worker_once(app):
    lost = await _running()
    handed_back = await _running(worker=None)  # its message was lost after a sweep (or a delivery raised)
    live = await _running(worker="live:1", beat_ago=timedelta(seconds=5))
    batched = await _running(worker=None, beat_ago=None)  # went out as batches: the stalled-batch sweep's
    finished = await _running(status=JobStatus.FAILED)
    member = await make_staff(Role.ADMIN)
    parent = await Job.create(kind=BATCHED, created_by=member, status=JobStatus.RUNNING, total=2)
    await JobBatch.create(
        job=parent, seq=0, params={"n": 0}, deliveries=1, worker="dead:1", heartbeat_at=clock.now() - LONG_AGO
    )
    await JobBatch.create(job=parent, seq=1, params={"n": 1})

    first, second = await asyncio.gather(jobs.lost(TIMEOUT), jobs.lost(TIMEOUT))
    sent = sorted([*first, *second])
    assert sent == sorted([("run_job", (lost.id,)), ("run_job", (handed_back.id,)), ("run_job_batch", (parent.id, 0))])
    rows = {job.id: job for job in await Job.all()}
    assert (rows[lost.id].worker, rows[lost.id].worker_stops) == (None, 1)  # the stop is counted once
    assert rows[handed_back.id].worker_stops == 0
    assert rows[live.id].worker == "live:1" and rows[batched.id].heartbeat_at is None
    assert rows[finished.id].status == JobStatus.FAILED
    batch = await JobBatch.get(job_id=parent.id, seq=0)
    assert (batch.worker, batch.worker_stops) == (None, 1)

    assert await jobs.lost(TIMEOUT) == []  # claimed: their clock restarted
    clock.travel(TIMEOUT + timedelta(seconds=1))  # the messages were lost again: sent again, no stop counted
    again = await jobs.lost(TIMEOUT)
    assert ("run_job", (lost.id,)) in again and ("run_job", (handed_back.id,)) in again
    assert (await Job.get(id=lost.id)).worker_stops == 1


async def test_a_delivery_sent_by_the_sweep_takes_the_job_without_counting_the_stop_again(app):
    job = await _running(attempts=1)
    assert await jobs.lost(TIMEOUT) == [("run_job", (job.id,))]
    await jobs.run(job.id, _publish)
    after = await Job.get(id=job.id)
    assert (after.status, after.attempts, after.worker_stops) == (JobStatus.SUCCEEDED, 2, 1)


async def test_stale_queued_jobs_use_the_age_given(app):
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind=KIND, created_by=member)
    await Job.filter(id=job.id).update(created_at=clock.now() - timedelta(seconds=30))
    assert await jobs.stale_queued(timedelta(seconds=20)) == [job.id]
    assert await jobs.stale_queued() == []  # CRM_JOB_QUEUED_SECONDS' default: 120


# ---------------------------------------------------------------- settings


def test_the_settings_are_read_and_checked():
    settings = Settings.from_env(
        {
            "CRM_JOB_HEARTBEAT_SECONDS": "1",
            "CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS": "3",
            "CRM_JOB_SWEEP_SECONDS": "2",
            "CRM_JOB_QUEUED_SECONDS": "30",
            "CRM_JOB_MAX_WORKER_STOPS": "4",
            "CRM_BROKER_HEARTBEAT_TIMEOUT_MS": "2000",
            "CRM_BROKER_MAINTENANCE_CHANCE": "1000000",
        }
    )
    tuning = settings.of(jobs.JobSettings)
    assert (tuning.heartbeat_timeout, tuning.job_sweep_seconds, tuning.job_max_worker_stops) == (
        timedelta(seconds=3),
        2,
        4,
    )
    with pytest.raises(SettingsError, match="at least twice"):
        Settings.from_env({"CRM_JOB_HEARTBEAT_SECONDS": "10", "CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS": "15"})
    with pytest.raises(SettingsError, match="CRM_BROKER_MAINTENANCE_CHANCE"):
        Settings.from_env({"CRM_BROKER_MAINTENANCE_CHANCE": "2000000"})
    broker = redis_broker(Settings.from_env({**{"CRM_REDIS_URL": "redis://127.0.0.1:1/0"}, **_broker_env()}))
    try:
        assert (broker.heartbeat_timeout, broker.maintenance_chance, broker.dead_message_ttl) == (
            2000,
            1_000_000,
            60_000,
        )
    finally:
        broker.close()
    default = redis_broker(Settings.from_env({"CRM_REDIS_URL": "redis://127.0.0.1:1/0"}))
    try:
        assert (default.heartbeat_timeout, default.maintenance_chance) == (30_000, 100_000)
    finally:
        default.close()


def _broker_env() -> dict[str, str]:
    return {
        "CRM_BROKER_HEARTBEAT_TIMEOUT_MS": "2000",
        "CRM_BROKER_MAINTENANCE_CHANCE": "1000000",
        "CRM_BROKER_DEAD_MESSAGE_TTL_MS": "60000",
    }
