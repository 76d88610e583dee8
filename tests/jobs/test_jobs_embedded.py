import csv
import io

import pytest

from models.audit import AuditEntry
from models.jobs import Job, JobStatus
from models.staff import Role
from schema.base import int_pk
from services import audit, jobs as job_service
from services.access import Caller
from tests.jobs.helpers import EXPORT, wait_for_job


async def _noop_publish(channel: str, message: dict) -> None:
    return None


async def test_an_export_job_runs_end_to_end_on_the_in_process_worker(gql, admin):
    member, token = admin
    for i in range(1200):  # more than two export batches
        await audit.record(Caller(member, "seed", "10.0.0.1"), "test.bulk", detail={"i": i})
    payload = (await gql(EXPORT, {"input": {"filter": {"action": "test.bulk"}}}, token=token))["exportAuditLog"]
    assert payload["errors"] == [] and payload["job"]["status"] == "QUEUED" and payload["job"]["kind"] == "AUDIT_EXPORT"

    job = await wait_for_job(gql, token, payload["job"]["id"])
    assert job["status"] == "SUCCEEDED", job["errors"]
    assert job["progress"] == 1.0 and job["total"] == 1200 and job["processed"] == 1200 and job["failed"] == 0
    assert job["createdBy"]["username"] == member.username
    assert job["startedAt"] <= job["finishedAt"]
    rows = list(csv.reader(io.StringIO(job["result"]["csv"])))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    assert len(rows) == 1201 and {r[3] for r in rows[1:]} == {"test.bulk"}
    assert [int(r[0]) for r in rows[1:]] == sorted(int(r[0]) for r in rows[1:])
    assert job["result"]["rows"] == 1200
    # The export itself is audited, in the same transaction that queued the job.
    assert await AuditEntry.filter(action="audit.export", subject_type="Job").count() == 1


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SERVICE_AGENT, Role.RELATIONSHIP_MANAGER])
async def test_export_is_for_audit_readers_only(gql, staff_factory, role):
    _, token = await staff_factory(role)
    payload = (await gql(EXPORT, {"input": {}}, token=token))["exportAuditLog"]
    assert payload["job"] is None and payload["errors"][0]["code"] == "FORBIDDEN"
    assert await Job.all().count() == 0


async def test_a_rejected_export_queues_nothing(gql, admin):
    _, token = admin
    backwards = {"from": "2026-02-01T00:00:00+00:00", "to": "2026-01-01T00:00:00+00:00"}
    payload = (await gql(EXPORT, {"input": {"filter": backwards}}, token=token))["exportAuditLog"]
    assert payload["errors"][0]["code"] == "INVALID" and payload["job"] is None
    assert await Job.all().count() == 0


async def test_running_a_finished_job_again_changes_nothing(admin):
    member, _ = admin
    job = await Job.create(kind="AUDIT_EXPORT", params={}, created_by=member)
    await job_service.run(job.id, _noop_publish)
    first = await Job.get(id=job.id)
    assert first.status == JobStatus.SUCCEEDED and first.attempts == 1
    await job_service.run(job.id, _noop_publish)  # a re-delivered message
    again = await Job.get(id=job.id)
    assert (again.status, again.attempts, again.result, again.finished_at) == (
        first.status,
        first.attempts,
        first.result,
        first.finished_at,
    )


async def test_a_job_interrupted_while_running_restarts_cleanly(admin):
    member, _ = admin
    await audit.record(Caller(member), "test.one")
    # A worker died half-way: the row says RUNNING with partial progress.
    job = await Job.create(
        kind="AUDIT_EXPORT",
        params={"action": "test.one"},
        created_by=member,
        status=JobStatus.RUNNING,
        processed=7,
        total=9,
        attempts=1,
        errors=[{"row": 1, "field": None, "message": "stale"}],
    )
    await job_service.run(job.id, _noop_publish)
    done = await Job.get(id=job.id)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 2
    assert (done.processed, done.total, done.errors) == (1, 1, [])


async def test_a_failing_handler_marks_the_job_failed_with_the_reason(admin):
    member, _ = admin

    async def explode(params, progress):
        await progress.set_total(3)
        await progress.error("row is odd", row=2, field="name")
        raise ValueError("the file is not CSV")

    job = await Job.create(kind="COMPLAINT_REPORT", params={}, created_by=member)
    await job_service.run(job.id, _noop_publish, handlers={"COMPLAINT_REPORT": explode})
    failed = await Job.get(id=job.id)
    assert failed.status == JobStatus.FAILED and failed.finished_at is not None
    assert failed.errors == [
        {"row": 2, "field": "name", "message": "row is odd"},
        {"row": None, "field": None, "message": "ValueError: the file is not CSV"},
    ]


async def test_a_kind_without_handler_fails_instead_of_hanging(admin):
    member, _ = admin
    job = await Job.create(kind="SURVEY_CAMPAIGN", params={}, created_by=member)
    await job_service.run(job.id, _noop_publish)
    assert (await Job.get(id=job.id)).status == JobStatus.FAILED


async def test_stale_queued_jobs_are_found_for_resending(admin):
    from datetime import timedelta

    from services import clock

    member, _ = admin
    old = await Job.create(kind="AUDIT_EXPORT", created_by=member)
    await Job.filter(id=old.id).update(created_at=clock.now() - timedelta(minutes=5))
    await Job.create(kind="AUDIT_EXPORT", created_by=member)  # fresh: its message is on its way
    assert await job_service.stale_queued() == [old.id]


async def test_job_message_is_sent_only_after_commit(admin):
    from core.db import atomic

    member, _ = admin
    sent: list[int] = []

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with atomic():
            await job_service.create(Caller(member), "AUDIT_EXPORT", {}, sent.append)
            raise Boom
    assert sent == [] and await Job.all().count() == 0
    async with atomic():
        job = await job_service.create(Caller(member), "AUDIT_EXPORT", {}, sent.append)
        assert sent == []
    assert sent == [job.id]


async def test_jobs_list_shows_own_jobs_to_non_overseers(gql, staff_factory):
    owner, owner_token = await staff_factory(Role.ANALYST)
    other, _ = await staff_factory(Role.ANALYST)
    mine = await Job.create(kind="AUDIT_EXPORT", created_by=owner)
    await Job.create(kind="AUDIT_EXPORT", created_by=other)
    edges = (await gql("{ jobs { totalCount edges { node { id } } } }", token=owner_token))["jobs"]
    assert edges["totalCount"] == 1 and int_pk(edges["edges"][0]["node"]["id"], "Job") == mine.id


async def test_jobs_left_behind_by_a_previous_process_are_resumed_at_start(settings):
    """The embedded queue lives in memory: a restart re-sends what was queued or running."""
    from asgi_lifespan import LifespanManager

    from app import create_app
    from core import db
    from tests.conftest import make_staff
    from tests.database import empty_all_tables

    await db.init_orm(settings.database_url)
    await empty_all_tables()
    member = await make_staff(Role.AUDITOR)
    queued = await Job.create(kind="AUDIT_EXPORT", created_by=member)
    running = await Job.create(kind="AUDIT_EXPORT", created_by=member, status=JobStatus.RUNNING, processed=3)
    await db.close_orm()

    import asyncio

    async with LifespanManager(create_app(settings)):
        for _ in range(200):
            statuses = set(await Job.filter(id__in=[queued.id, running.id]).values_list("status", flat=True))
            if statuses == {JobStatus.SUCCEEDED}:
                break
            await asyncio.sleep(0.05)
        assert statuses == {JobStatus.SUCCEEDED}


async def test_a_finished_jobs_file_downloads_for_those_who_may_see_it(gql, client, staff_factory):
    member, token = await staff_factory(Role.AUDITOR)
    _, stranger = await staff_factory(Role.ANALYST)
    payload = (await gql(EXPORT, {"input": {}}, token=token))["exportAuditLog"]
    job = await wait_for_job(gql, token, payload["job"]["id"])
    pk = int_pk(job["id"], "Job")
    response = await client.get(f"/jobs/{pk}/download", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.text == job["result"]["csv"]
    assert 'filename="audit-log.csv"' in response.headers["content-disposition"]
    assert (await client.get(f"/jobs/{pk}/download")).status_code == 401
    assert (
        await client.get(f"/jobs/{pk}/download", headers={"Authorization": f"Bearer {stranger}"})
    ).status_code == 404
    assert await AuditEntry.filter(action="job.download", actor_id=member.id).count() == 1
