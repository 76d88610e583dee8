import asyncio
import time
from collections.abc import Awaitable, Callable

from dramatiq.brokers.stub import StubBroker

from models.jobs import Job, JobStatus

JOB = """query($id: ID!) { job(id: $id) { id kind status progress total processed failed result
  errors { row field message } createdBy { username } startedAt finishedAt } }"""
EXPORT = """mutation($input: ExportAuditLogInput!) { exportAuditLog(input: $input) {
  job { id kind status progress processed } errors { field message code } } }"""


async def wait_for_job(gql, token: str, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = (await gql(JOB, {"id": job_id}, token=token))["job"]
        if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout}s"
        await asyncio.sleep(0.05)


async def job_row(pk: int) -> Job:
    return await Job.get(id=pk)


async def _no_job_is_pending() -> bool:
    return not await Job.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()


async def drain(queue, *, until: Callable[[], Awaitable[bool]] | None = None, timeout: float = 30.0) -> None:
    """Until the task queue has nothing left to do, so that a test may then assert that something happened
    exactly once, or not at all. `queue` is the app's TaskQueue (`app.runtime.queue`) or its broker.

    The embedded broker (a StubBroker) is joined queue by queue, again until a whole round finds every queue
    empty (an actor may send more messages). StubBroker.join blocks its thread while the embedded worker runs
    the actors on this very event loop: it is joined from another thread. An actor that failed for good is
    raised here (dramatiq's fail_fast).

    With Redis (CRM_TEST_REDIS_URL) the messages are in a worker process's hands and cannot be joined from
    here: poll until `until()` holds (default: no job is queued or running), for at most `timeout` seconds.
    On the embedded broker `until()`, when given, must hold once the queues are empty."""
    broker = getattr(queue, "broker", queue)
    deadline = time.monotonic() + timeout
    if isinstance(broker, StubBroker):
        await asyncio.to_thread(_join_every_queue, broker, deadline, timeout)
        if until is not None:
            assert await until(), "the queue is empty but the state is not final"
        return
    settled = until or _no_job_is_pending
    while not await settled():
        assert time.monotonic() < deadline, f"the queue did not settle in {timeout}s"
        await asyncio.sleep(0.05)


def _join_every_queue(broker: StubBroker, deadline: float, timeout: float) -> None:
    while True:
        for name in sorted(broker.get_declared_queues()):
            left_ms = int((deadline - time.monotonic()) * 1000)
            assert left_ms > 0, f"the queues were not empty after {timeout}s"
            broker.join(name, timeout=left_ms)  # its delay queue too; QueueJoinTimeout when too slow
        if not any(q.unfinished_tasks for q in broker.queues.values()):
            return
