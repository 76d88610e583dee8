"""A full recompute shared by two real `crm worker` processes on Redis, one of them killed with SIGKILL mid-run:
the batches it held are sent again by the stalled-batch sweep (sent here every second, as the scheduler would)
and the survivor computes them; the job still ends SUCCEEDED with every customer's portrait computed by it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import httpx
import pytest
import redis.asyncio as aioredis

from models.customers import Customer
from models.jobs import Job, JobBatch, JobStatus
from models.portraits import Portrait
from models.staff import Role
from services import clock
from tests.conftest import TEST_REDIS_URL, make_staff, token_for, with_overrides
from tests.jobs.live import live_server, start_worker
from tests.portraits.helpers import customers_with_a_deposit

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="CRM_TEST_REDIS_URL is not set")
CUSTOMERS, BATCH = 3000, 20  # 150 batches: the kill lands mid-run
RECOMPUTE = """mutation { recomputePortraits(input: {all: true}) { job { id status } errors { code message } } }"""


@pytest.fixture(autouse=True)
def _pinned_clock():
    """Overrides the portrait tests' pinned clock: the workers run on the real one, and so does this test."""
    clock.reset()
    yield
    clock.reset()


def _start_worker(settings) -> subprocess.Popen:
    # A dead worker's batches are taken over once their heartbeat is older than the timeout (services/jobs.py).
    return start_worker(
        settings,
        CRM_PORTRAIT_BATCH_SIZE=str(BATCH),
        CRM_JOB_STALL_SECONDS="3",
        CRM_JOB_HEARTBEAT_SECONDS="1",
        CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS="3",
    )


async def _stop(worker: subprocess.Popen) -> tuple[int, str]:
    worker.terminate()
    try:
        output, _ = await asyncio.to_thread(worker.communicate, timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return worker.returncode, output


async def test_a_worker_killed_mid_recompute_loses_nothing(settings):
    redis_settings = with_overrides(settings, redis_url=TEST_REDIS_URL)
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    await client.flushdb()
    await client.aclose()
    async with live_server(redis_settings) as (application, address):
        ids = await customers_with_a_deposit(CUSTOMERS)
        token = await token_for(await make_staff(Role.ANALYST), redis_settings)
        doomed, survivor = _start_worker(redis_settings), _start_worker(redis_settings)
        try:
            async with httpx.AsyncClient(base_url=f"http://{address}") as http:
                response = await http.post(
                    "/graphql", headers={"Authorization": f"Bearer {token}"}, json={"query": RECOMPUTE}
                )
            payload = response.json()["data"]["recomputePortraits"]
            assert payload["errors"] == [], payload
            job = await Job.get(kind="RECOMPUTE_PORTRAITS")

            deadline = time.monotonic() + 120
            while (await Job.get(id=job.id)).processed < 10:  # both workers are at it
                assert time.monotonic() < deadline, "the recompute did not start"
                await asyncio.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)
            at_kill = await Job.get(id=job.id)
            assert at_kill.status == JobStatus.RUNNING and at_kill.processed < at_kill.total, "killed too late"

            queue = application.runtime.queue
            while (current := await Job.get(id=job.id)).status == JobStatus.RUNNING:
                assert time.monotonic() < deadline, f"still RUNNING at {current.processed}/{current.total}"
                queue.send("requeue_stalled_batches")  # as the scheduler does, every minute in production
                await asyncio.sleep(1)
            done = await Job.get(id=job.id)
            unfinished = await JobBatch.filter(job_id=job.id, done_at__isnull=True).count()
            portraits = await Portrait.all().values_list("customer_id", "computed_at")
            stale = await Customer.filter(portrait_stale_since__isnull=False).count()
        finally:
            if doomed.poll() is None:
                doomed.kill()
            doomed.communicate()
            code, output = await _stop(survivor)

    assert done.status == JobStatus.SUCCEEDED, (done.errors, output[-3000:])
    assert (done.total, done.processed, done.errors) == (CUSTOMERS // BATCH, CUSTOMERS // BATCH, [])
    assert done.result == {"customers": CUSTOMERS, "batches": CUSTOMERS // BATCH}
    assert unfinished == 0 and stale == 0
    # Every customer has exactly one portrait, computed by this job.
    assert sorted(customer_id for customer_id, _ in portraits) == ids
    assert all(job.created_at <= computed_at <= done.finished_at for _, computed_at in portraits)
    assert code == 0, output[-3000:]
