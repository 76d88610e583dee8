"""jobs.locked holds the job's row until the transaction ends: the batches of a job count themselves under it,
and an import or a campaign checks its checkpoint under it. Without the lock two last batches finishing at once
each counted the other as not done, and the job stayed RUNNING at total - 1 for good."""

import asyncio

import pytest

from core.db import atomic
from models.jobs import Job
from models.staff import Role
from services import jobs
from tests.conftest import TEST_DATABASE_URL, make_staff

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL or "").startswith("postgres"), reason="SQLite has one writer and no row locks"
)


async def test_a_second_transaction_waits_for_the_job_row(app):
    member = await make_staff(Role.ADMIN)
    job = await Job.create(kind="AUDIT_EXPORT", params={}, created_by=member)
    first_holds = asyncio.Event()
    order: list[str] = []

    async def second() -> None:  # created before the first transaction: it does not share its connection
        await first_holds.wait()
        async with atomic():
            await jobs.locked(job.id)
            order.append("second locked")

    waiting = asyncio.create_task(second())
    async with atomic():
        assert (await jobs.locked(job.id)).id == job.id
        first_holds.set()
        await asyncio.sleep(0.3)
        order.append("first commits")
    await asyncio.wait_for(waiting, 5)
    assert order == ["first commits", "second locked"]
