"""recomputePortraits over HTTP with the embedded worker (ids, a segment, all split into batches; refusals and
roles), then the batched job underneath (services.jobs.split / run_batch): progress counts batches, a batch
whose worker died is computed again, a done batch is not, a re-delivered job keeps its batches, stalled
batches are sent again, a batch that keeps failing fails the job, and the nightly run."""

from __future__ import annotations

import itertools
from datetime import timedelta

import httpx
import pytest

from app import create_app
from core.db import atomic
from models.jobs import Job, JobBatch, JobStatus
from models.portraits import Portrait
from models.staff import Role
from schema.base import to_global_id
from services import clock, dispatch, jobs, portrait_jobs, portraits, segments
from services.access import Caller
from services.customers import CustomerFilter
from services.portraits import PortraitSettings
from tasks import jobs as job_tasks
from tests.conftest import GraphQLClient, RunningApp, make_staff, token_for, with_overrides
from tests.database import empty_all_tables
from tests.jobs.helpers import wait_for_job
from tests.portraits import helpers as h

RECOMPUTE = """mutation($input: RecomputePortraitsInput!) { recomputePortraits(input: $input) {
  job { id kind status total processed progress } errors { field message code } } }"""
HERE, THERE = "北京朝阳支行", "上海浦东支行"
_segment_names = itertools.count(1)


def gid(customer_id: int) -> str:
    return to_global_id("Customer", customer_id)


async def _recompute(gql, token: str, **fields) -> dict:
    return (await gql(RECOMPUTE, {"input": fields}, token=token))["recomputePortraits"]


async def _ran(gql, token: str, **fields) -> dict:
    payload = await _recompute(gql, token, **fields)
    assert payload["errors"] == [], payload["errors"]
    assert (payload["job"]["kind"], payload["job"]["status"]) == ("RECOMPUTE_PORTRAITS", "QUEUED")
    return await wait_for_job(gql, token, payload["job"]["id"])


async def _with_portraits() -> set[int]:
    return set(await Portrait.all().values_list("customer_id", flat=True))


async def _segment(member, branch: str) -> int:
    made = await segments.create(
        Caller(member),
        name=f"分群{next(_segment_names)}",
        description=None,
        customer_filter=CustomerFilter(branch=branch),
    )
    return made.id


# ---------------------------------------------------------------- over HTTP


async def test_chosen_customers_are_recomputed(gql, staff_factory):
    _, token = await staff_factory(Role.ANALYST)
    a, b, c = await h.customer(), await h.customer(), await h.customer()
    job = await _ran(gql, token, customerIds=[gid(a.id), gid(b.id)])
    assert (job["status"], job["total"], job["processed"], job["progress"]) == ("SUCCEEDED", 1, 1, 1.0)
    assert job["result"] == {"customers": 2, "batches": 1} and job["errors"] == []
    assert await _with_portraits() == {a.id, b.id}
    assert c.id not in await _with_portraits()


async def test_a_segment_is_recomputed_with_its_members_of_the_moment(gql, staff_factory):
    member, token = await staff_factory(Role.MANAGER)
    here = [await h.customer(branch=HERE) for _ in range(3)]
    there = await h.customer(branch=THERE)
    job = await _ran(gql, token, segmentId=to_global_id("Segment", await _segment(member, HERE)))
    assert job["status"] == "SUCCEEDED" and job["result"] == {"customers": 3, "batches": 1}
    assert await _with_portraits() == {c.id for c in here}
    assert there.id not in await _with_portraits()


@pytest.fixture
async def small_batches(settings):
    """The app with batches of 3 customers (CRM_PORTRAIT_BATCH_SIZE), its GraphQL client and an ANALYST's token."""
    tuned = with_overrides(
        settings, sections={**settings.sections, PortraitSettings: PortraitSettings(portrait_batch_size=3)}
    )
    async with RunningApp(create_app(tuned)).running() as running:
        await empty_all_tables()
        member = await make_staff(Role.ANALYST)
        token = await token_for(member, tuned)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=running), base_url="http://testserver") as http:
            yield GraphQLClient(http), token


async def test_all_is_split_into_batches_and_progress_counts_them(small_batches):
    gql, token = small_batches
    made = [await h.customer(branch=HERE if n % 2 else THERE) for n in range(10)]
    job = await _ran(gql, token, all=True)
    assert (job["status"], job["total"], job["processed"], job["progress"]) == ("SUCCEEDED", 4, 4, 1.0)
    assert job["result"] == {"customers": 10, "batches": 4}
    assert await _with_portraits() == {c.id for c in made}
    batches = await JobBatch.all().order_by("seq")
    assert [len(b.params["ids"]) for b in batches] == [3, 3, 3, 1]
    assert all(b.done_at is not None for b in batches)
    assert sorted(i for b in batches for i in b.params["ids"]) == sorted(c.id for c in made)


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({}, "REQUIRED", ["all"]),
        ({"all": False}, "REQUIRED", ["all"]),
        ({"all": True, "segmentId": "U2VnbWVudDox"}, "INVALID", ["all"]),
        ({"customerIds": [], "all": True}, "INVALID", ["all"]),
        ({"customerIds": []}, "INVALID", ["customerIds"]),
        ({"customerIds": ["known", "Q3VzdG9tZXI6OTk5OTk5"]}, "NOT_FOUND", ["customerIds", "1"]),
        ({"customerIds": ["known", "not-an-id"]}, "NOT_FOUND", ["customerIds", "1"]),
        ({"customerIds": ["known"] * 1001}, "INVALID", ["customerIds"]),
        ({"segmentId": "U2VnbWVudDo5OTk5OTk="}, "NOT_FOUND", ["segmentId"]),
        ({"segmentId": "Q3VzdG9tZXI6MQ=="}, "NOT_FOUND", ["segmentId"]),
    ],
)
async def test_refusals_say_why_and_queue_nothing(gql, staff_factory, fields, code, field):
    _, token = await staff_factory(Role.ANALYST)
    known = gid((await h.customer()).id)
    if "customerIds" in fields:
        fields = {**fields, "customerIds": [known if i == "known" else i for i in fields["customerIds"]]}
    payload = await _recompute(gql, token, **fields)
    assert payload["job"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]][:1] == [(code, field)], payload["errors"]
    assert not await Job.exists()


@pytest.mark.parametrize("role", list(Role))
async def test_who_may_recompute(gql, staff_factory, role):
    _, token = await staff_factory(role)
    payload = await _recompute(gql, token, all=True)
    if role in (Role.ADMIN, Role.MANAGER, Role.ANALYST):
        assert payload["errors"] == [] and payload["job"]["kind"] == "RECOMPUTE_PORTRAITS"
        assert (await wait_for_job(gql, token, payload["job"]["id"]))["status"] == "SUCCEEDED"
    else:
        assert payload["job"] is None and payload["errors"][0]["code"] == "FORBIDDEN"
        assert "ADMIN, MANAGER, ANALYST" in payload["errors"][0]["message"]


# ---------------------------------------------------------------- the batched job underneath


class WorkerDied(BaseException):
    """Like a worker killed mid-batch (SIGKILL): escapes everything; the batch's transaction never commits."""


async def _noop_publish(channel: str, message: dict) -> None:
    return None


@pytest.fixture
def sent(app) -> list[tuple]:
    """The messages services send to the workers, kept here: each test delivers them itself."""
    messages: list[tuple] = []
    dispatch.bind(lambda name, *args: messages.append((name, *args)))
    yield messages
    dispatch.bind(app.runtime.queue.send)


async def _planned(member, count: int, size: int, sent: list[tuple]) -> tuple[Job, list[int]]:
    """A full recompute of `count` customers, its handler run: batches stored and sent, none run yet."""
    ids = [(await h.customer(contacted_days_ago=None)).id for _ in range(count)]
    async with atomic():
        job = await portrait_jobs.start(Caller(member), everyone=True, enqueue=lambda job_id: None)
    with_size = with_overrides_active(size)
    try:
        await jobs.run(job.id, _noop_publish)
    finally:
        with_size()
    return await Job.get(id=job.id), ids


def with_overrides_active(size: int):
    """The active settings with this batch size (what a worker process reads); returns the undo."""
    from core import settings as core_settings

    previous = core_settings.active()
    core_settings.use(
        with_overrides(
            previous, sections={**previous.sections, PortraitSettings: PortraitSettings(portrait_batch_size=size)}
        )
    )
    return lambda: core_settings.use(previous)


async def test_a_batch_whose_worker_died_is_computed_again_and_a_done_one_is_not(app, sent, computed, monkeypatch):
    member = await make_staff(Role.ANALYST)
    job, ids = await _planned(member, 5, 2, sent)
    assert (job.status, job.total, job.processed) == (JobStatus.RUNNING, 3, 0)
    assert sent == [("run_job_batch", job.id, 0), ("run_job_batch", job.id, 1), ("run_job_batch", job.id, 2)]

    original = portraits.compute

    async def dies(customer_ids):
        await original(customer_ids)
        raise WorkerDied

    monkeypatch.setattr(portraits, "compute", dies)
    with pytest.raises(WorkerDied):
        await jobs.run_batch(job.id, 0, _noop_publish)
    assert (await JobBatch.get(job_id=job.id, seq=0)).done_at is None
    assert (await Job.get(id=job.id)).processed == 0
    assert not await Portrait.filter(customer_id__in=ids[:2]).exists()  # rolled back with the batch

    monkeypatch.setattr(portraits, "compute", original)
    await jobs.run_batch(job.id, 0, _noop_publish)  # the re-delivery computes it
    current = await Job.get(id=job.id)
    assert (current.status, current.processed, jobs.progress_of(current)) == (
        JobStatus.RUNNING,
        1,
        pytest.approx(1 / 3),
    )
    assert await Portrait.filter(customer_id__in=ids[:2]).count() == 2

    monkeypatch.setattr(portraits, "compute", dies)  # a done batch delivered again computes nothing
    await jobs.run_batch(job.id, 0, _noop_publish)
    assert (await Job.get(id=job.id)).processed == 1

    # The job's own message delivered again: the stored batches stay, only those not done are sent.
    monkeypatch.setattr(portraits, "compute", original)
    sent.clear()
    await jobs.run(job.id, _noop_publish)
    assert sent == [("run_job_batch", job.id, 1), ("run_job_batch", job.id, 2)]
    assert await JobBatch.filter(job_id=job.id).count() == 3
    current = await Job.get(id=job.id)
    assert (current.status, current.total, current.processed) == (JobStatus.RUNNING, 3, 1)
    assert current.result == {"customers": 5, "batches": 3}

    await jobs.run_batch(job.id, 2, _noop_publish)
    assert (await Job.get(id=job.id)).status == JobStatus.RUNNING
    await jobs.run_batch(job.id, 1, _noop_publish)  # the last batch to finish ends the job
    done = await Job.get(id=job.id)
    assert (done.status, done.processed, done.total) == (JobStatus.SUCCEEDED, 3, 3) and done.finished_at
    assert await Portrait.filter(customer_id__in=ids).count() == 5


async def test_an_empty_recompute_succeeds_at_once(app, sent):
    member = await make_staff(Role.ANALYST)
    async with atomic():
        job = await portrait_jobs.start(Caller(member), everyone=True, enqueue=lambda job_id: None)
    await jobs.run(job.id, _noop_publish)
    done = await Job.get(id=job.id)
    assert (done.status, done.total, done.result) == (JobStatus.SUCCEEDED, 0, {"customers": 0, "batches": 0})
    assert sent == []


async def test_stalled_batches_are_sent_again_once(app, sent):
    member = await make_staff(Role.ANALYST)
    job, _ = await _planned(member, 4, 2, sent)
    await jobs.run_batch(job.id, 0, _noop_publish)
    assert await jobs.stalled(timedelta(seconds=60)) == []  # it moved a moment ago
    clock.travel(timedelta(seconds=61))
    assert await jobs.stalled(timedelta(seconds=60)) == [("run_job_batch", (job.id, 1))]
    assert await jobs.stalled(timedelta(seconds=60)) == []  # claimed: its clock started again

    lost = await Job.create(kind=portrait_jobs.RECOMPUTE_JOB, status=JobStatus.RUNNING, params={"all": True})
    await Job.filter(id=lost.id).update(updated_at=clock.now() - timedelta(minutes=5))
    assert await jobs.stalled(timedelta(seconds=60)) == [("run_job", (lost.id,))]  # died before its batches


async def test_a_batch_that_keeps_failing_fails_its_job(app, sent):
    member = await make_staff(Role.ANALYST)
    job, _ = await _planned(member, 4, 2, sent)
    # What Dramatiq sends once the batch's retries are used up (`on_retry_exhausted`).
    await job_tasks.fail_job_batch({"args": [job.id, 1], "kwargs": {}}, {"retries": 3, "max_retries": 3})
    failed = await Job.get(id=job.id)
    assert failed.status == JobStatus.FAILED and failed.errors[-1]["message"] == "batch 1 failed 4 times"
    await jobs.run_batch(job.id, 0, _noop_publish)  # a batch of a failed job does nothing
    assert (await JobBatch.get(job_id=job.id, seq=0)).done_at is None


async def test_the_nightly_recompute_is_skipped_while_one_runs(app):
    queued: list[int] = []
    async with atomic():
        first = await portrait_jobs.nightly(queued.append)
    assert first is not None and first.params == {"all": True} and first.created_by_id is None
    assert queued == [first.id]
    async with atomic():
        assert await portrait_jobs.nightly(queued.append) is None
    await Job.filter(id=first.id).update(status=JobStatus.SUCCEEDED)
    async with atomic():
        assert await portrait_jobs.nightly(queued.append) is not None


async def test_a_requester_who_may_no_longer_recompute_fails_the_job(app, sent):
    member = await make_staff(Role.ANALYST)
    async with atomic():
        job = await portrait_jobs.start(Caller(member), everyone=True, enqueue=lambda job_id: None)
    member.role = Role.SERVICE_AGENT
    await member.save()
    await jobs.run(job.id, _noop_publish)
    failed = await Job.get(id=job.id)
    assert failed.status == JobStatus.FAILED and "may no longer" in failed.errors[-1]["message"]
    assert sent == []


async def test_a_job_redelivered_while_its_batches_end_still_ends_once(app, sent):
    """The job's own message delivered again resets its progress (services.jobs.run) while its batches run:
    they count the done batches afresh, and when the last one found no total, the re-delivery ends the job."""
    member = await make_staff(Role.ANALYST)
    job, _ = await _planned(member, 4, 2, sent)
    await jobs.run_batch(job.id, 0, _noop_publish)
    await Job.filter(id=job.id).update(processed=0, total=None)  # what a re-delivery's claim does first
    await jobs.run_batch(job.id, 1, _noop_publish)
    midway = await Job.get(id=job.id)
    assert (midway.status, midway.processed) == (JobStatus.RUNNING, 2)  # counted afresh; no total to end at
    sent.clear()
    await jobs.run(job.id, _noop_publish)  # the re-delivery finds every batch done
    done = await Job.get(id=job.id)
    assert (done.status, done.total, done.processed) == (JobStatus.SUCCEEDED, 2, 2) and sent == []
    assert done.result == {"customers": 4, "batches": 2}
