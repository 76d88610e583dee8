import asyncio
import time

from models.jobs import Job

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
