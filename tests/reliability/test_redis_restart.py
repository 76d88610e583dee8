"""Redis down while the API takes mutations, then back (docs/RELIABILITY.md, "Redis down"): a real `crm serve` and
`crm worker` on a Redis server of the test's own, restarted for real (it keeps nothing: every message is lost).

While Redis is down, mutations commit and answer as usual: their after-commit messages fail to go out
(services.dispatch, core.db.on_commit: one WARNING line each), the rows stay QUEUED, /readyz says the broker is not
ready, rate limits count in the process. Once Redis is back the sweeps send the rows again and each notification
is sent, each job run, exactly once.

The sweeps run at the scheduler's tick (every minute) and take rows that waited longer than their age (outbox:
services.notifications.LOST_AFTER, 2 minutes; jobs: CRM_JOB_QUEUED_SECONDS): to stay within a minute the test ages
the rows and sends the two sweep messages itself, as the scheduler's next tick would."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from models.jobs import Job, JobStatus
from models.notifications import Notification, NotificationStatus
from services import clock
from tests.complaints.helpers import do, file, new_customer
from tests.conftest import GraphQLClient
from tests.reliability.harness import (
    NO_RATE_LIMITS,
    Api,
    crm_env,
    eventually,
    free_port,
    processes,
    readiness,
    redis_server,
    send_message,
    start_worker,
)

pytestmark = pytest.mark.timeout(90)
COMPLAINTS = 4
EXPORTS = 2
EXPORT = "mutation { exportAuditLog(input: {}) { job { id status } errors { code } } }"


async def test_mutations_while_redis_is_down_are_delivered_once_when_it_returns(
    app, admin, migrated_database, tmp_path
):
    _, token = admin
    drop = tmp_path / "outbox"
    started_at = time.monotonic()
    with redis_server() as redis, processes() as started:
        env = crm_env(migrated_database, redis.url, CRM_MAIL_DROP_DIR=str(drop), **NO_RATE_LIMITS)
        api = Api(env, free_port())
        started.append(api)
        started.append(start_worker(env, threads=2))
        await api.ready(60)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            client = GraphQLClient(http)
            complaints = [
                await file(client, token, (await new_customer(client, token))["id"]) for _ in range(COMPLAINTS)
            ]
            assert (await readiness(api.url))[0] == 200

            redis.stop()
            t0 = time.monotonic()
            for complaint in complaints:  # each extension queues a notification to the customer (an SMS)
                result = await do(client, token, "extend", id=complaint["id"], reason="案情复杂，需要调取录音")
                assert result["errors"] == [], result
            jobs = []
            for _ in range(EXPORTS):
                payload = (await client(EXPORT, token=token))["exportAuditLog"]
                assert payload["errors"] == [] and payload["job"]["status"] == "QUEUED", payload
                jobs.append(payload["job"]["id"])
            await new_customer(client, token)  # a mutation that sends nothing
            assert time.monotonic() - t0 < 10, "mutations must not wait on a Redis that is down"
            status, checks = await readiness(api.url)
            assert (status, checks) == (503, {"database": True, "broker": False})

            # Committed, and waiting for the sweeps.
            assert await Notification.filter(status=NotificationStatus.QUEUED).count() == COMPLAINTS
            assert await Job.filter(status=JobStatus.QUEUED).count() == EXPORTS

            redis.start()

            async def broker_ready() -> bool:
                return await readiness(api.url) == (200, {"database": True, "broker": True})

            await eventually(broker_ready, timeout=15, what="/readyz saying the broker is back")

        # The sweeps' age thresholds pass (LOST_AFTER, CRM_JOB_QUEUED_SECONDS), then the scheduler's tick.
        long_ago = clock.now() - timedelta(minutes=10)
        await Notification.filter(status=NotificationStatus.QUEUED).update(created_at=long_ago)
        await Job.filter(status=JobStatus.QUEUED).update(created_at=long_ago)
        send_message(redis.url, "requeue_lost_notifications")
        send_message(redis.url, "requeue_stale_jobs")

        async def all_delivered() -> tuple | None:
            sent = await Notification.filter(status=NotificationStatus.SENT).count()
            done = await Job.filter(status=JobStatus.SUCCEEDED).count()
            return (sent, done) if (sent, done) == (COMPLAINTS, EXPORTS) else None

        await eventually(all_delivered, timeout=25, what="every notification sent and every job done")

        # A second tick finds nothing to do: still exactly once.
        send_message(redis.url, "requeue_lost_notifications")
        send_message(redis.url, "requeue_stale_jobs")
        await _settle(redis, seconds=2)
        notifications = await Notification.all()
        assert [(n.status, n.attempts) for n in notifications] == [(NotificationStatus.SENT, 1)] * COMPLAINTS
        assert len(_dropped(drop)) == COMPLAINTS, _dropped(drop)
        finished = await Job.filter(status=JobStatus.SUCCEEDED)
        assert sorted(j.attempts for j in finished) == [1] * EXPORTS
        log = started[0].output()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("left to its sweep") + log.count("after-commit message not sent") == COMPLAINTS + EXPORTS, log
    assert time.monotonic() - started_at < 60


def _dropped(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def _settle(redis, seconds: float) -> None:
    """Wait until the workers' queues are empty (then `seconds` more for a message in hand to finish)."""
    client = redis.client()

    async def empty() -> bool:
        return all(client.llen(f"dramatiq:{q}") == 0 for q in ("default", "notifications", "jobs"))

    await eventually(empty, timeout=10, what="the queues emptied")
    import asyncio

    await asyncio.sleep(seconds)
