from contextlib import aclosing

import httpx

from models.jobs import Job
from models.staff import Role
from schema.base import to_global_id
from services import audit
from services.access import Caller
from tests.conftest import make_staff, token_for
from tests.jobs.live import live_server, stream, subscribe

PROGRESS = "subscription($id: ID!) { jobProgress(id: $id) { id status processed total progress } }"


async def test_job_progress_streams_until_the_job_finishes(settings):
    async with live_server(settings) as (application, address):
        member = await make_staff(Role.AUDITOR)
        token = await token_for(member, settings)
        for i in range(50):
            await audit.record(Caller(member), "test.item", detail={"i": i})
        job = await Job.create(kind="AUDIT_EXPORT", params={"action": "test.item"}, created_by=member)
        gid = to_global_id("Job", job.id)

        async with aclosing(stream(address, token, PROGRESS, {"id": gid})) as payloads:
            # The first message is the state read after the server subscribed: from here on it misses nothing.
            updates = [(await anext(payloads))["data"]["jobProgress"]]
            application.runtime.queue.send("run_job", job.id)
            updates += [u["data"]["jobProgress"] async for u in payloads]

    # Each message carries the job as it is when the news arrives, so a fast job may finish before a RUNNING
    # state is read: the states only move forward, and the stream ends with the finished job.
    order = ["QUEUED", "RUNNING", "SUCCEEDED"]
    states = [order.index(u["status"]) for u in updates]
    assert updates[0]["status"] == "QUEUED" and len(updates) >= 2 and states == sorted(states)
    assert [u["progress"] for u in updates] == sorted(u["progress"] for u in updates)
    assert updates[-1] == {"id": gid, "status": "SUCCEEDED", "processed": 50, "total": 50, "progress": 1.0}


async def test_job_progress_of_a_finished_job_sends_its_state_and_completes(settings):
    async with live_server(settings) as (_application, address):
        member = await make_staff(Role.ADMIN)
        token = await token_for(member, settings)
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.post(
                "/graphql",
                headers={"Authorization": f"Bearer {token}"},
                json={"query": "mutation { exportAuditLog(input: {}) { job { id } errors { code } } }"},
            )
        gid = response.json()["data"]["exportAuditLog"]["job"]["id"]
        updates = await subscribe(address, token, PROGRESS, {"id": gid})
    assert updates[-1]["data"]["jobProgress"]["status"] == "SUCCEEDED"


async def test_job_progress_needs_a_token_and_hides_other_peoples_jobs(settings):
    async with live_server(settings) as (_, address):
        owner = await make_staff(Role.ANALYST)
        stranger_token = await token_for(await make_staff(Role.ANALYST), settings)
        job = await Job.create(kind="AUDIT_EXPORT", created_by=owner)
        gid = to_global_id("Job", job.id)
        hidden = await subscribe(address, stranger_token, PROGRESS, {"id": gid})
        anonymous = await subscribe(address, "no-such-token", PROGRESS, {"id": gid})
    assert hidden[0]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert anonymous[0]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
