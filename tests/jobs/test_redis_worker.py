"""A job through the Redis broker and a separate `crm worker` process, with progress over Redis pub/sub."""

import asyncio
import subprocess

import pytest
import redis.asyncio as aioredis

from models.staff import Role
from tests.conftest import TEST_REDIS_URL, make_staff, token_for, with_overrides
from tests.jobs.live import live_server, start_worker, subscribe

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="CRM_TEST_REDIS_URL is not set")
PROGRESS = "subscription($id: ID!) { jobProgress(id: $id) { status processed } }"


@pytest.fixture
def redis_settings(settings):
    return with_overrides(settings, redis_url=TEST_REDIS_URL)


async def _flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


async def test_a_job_runs_on_a_separate_worker_process(redis_settings):
    await _flush(redis_settings.redis_url)
    async with live_server(redis_settings) as (application, address):
        assert application.runtime.worker is None  # nothing runs in the API process
        member = await make_staff(Role.AUDITOR)
        token = await token_for(member, redis_settings)
        worker = start_worker(redis_settings)
        try:
            import httpx

            async with httpx.AsyncClient(base_url=f"http://{address}") as http:
                response = await http.post(
                    "/graphql",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"query": "mutation { exportAuditLog(input: {}) { job { id status } errors { code } } }"},
                )
                gid = response.json()["data"]["exportAuditLog"]["job"]["id"]
                updates = await subscribe(address, token, PROGRESS, {"id": gid}, timeout=60)
                assert updates[-1]["data"]["jobProgress"]["status"] == "SUCCEEDED", updates
                ready = await http.get("/readyz")
                assert ready.json()["checks"] == {"database": True, "broker": True}
        finally:
            worker.terminate()
            try:
                output, _ = await asyncio.to_thread(worker.communicate, timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                output, _ = worker.communicate()
        assert worker.returncode == 0, output
