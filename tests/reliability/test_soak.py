"""Soak: mixed load against real processes while a worker is SIGKILLed every KILL_EVERY seconds.

An API process, a scheduler and two workers on the test's PostgreSQL and a Redis of its own. Clients create
customers, file complaints (each queues one customer notification) and log interactions; every few seconds a CSV
import job is uploaded. One worker lives throughout; the other is killed and started again on a timer, so jobs,
batches and notifications die with it in every state. At the end, once the load has stopped and the sweeps have
caught up: every count equals what the clients were told succeeded, each notification was delivered exactly once,
no job is left RUNNING or QUEUED, and the memory of the processes that ran throughout stayed flat.

CRM_TEST_SOAK_SECONDS (default 90) sets the load's length; run longer by hand, e.g. 1800."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from models.complaints import Complaint
from models.customers import Customer
from models.interactions import Interaction
from models.jobs import Job, JobStatus
from models.notifications import Notification, NotificationStatus
from services.demo_data import fake_person
from tests.reliability.harness import (
    NO_RATE_LIMITS,
    Process,
    crm_env,
    eventually,
    processes,
    redis_server,
    start_api,
    start_scheduler,
    start_worker,
)

SOAK_SECONDS = float(os.environ.get("CRM_TEST_SOAK_SECONDS", "90"))
KILL_EVERY = 30.0
CLIENTS = 4
IMPORT_EVERY = 10.0
IMPORT_ROWS = 150

# Short enough that a killed worker's work comes back within seconds (see docs/RELIABILITY.md).
FAST_RECOVERY = {
    "CRM_JOB_HEARTBEAT_SECONDS": "1",
    "CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS": "4",
    "CRM_JOB_SWEEP_SECONDS": "2",
    "CRM_JOB_QUEUED_SECONDS": "5",
    "CRM_JOB_STALL_SECONDS": "5",
    "CRM_BROKER_HEARTBEAT_TIMEOUT_MS": "5000",
    "CRM_BROKER_MAINTENANCE_CHANCE": "1000",
    "CRM_NOTIFICATION_CLAIM_SECONDS": "5",
    "CRM_NOTIFICATION_LOST_SECONDS": "5",
    "CRM_NOTIFICATION_SWEEP_SECONDS": "2",
    "CRM_NOTIFICATION_BACKOFF_MS": "200",
}

CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  customer { id } errors { code field message } } }"""
FILE = """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) {
  complaint { id referenceNo } errors { code message } } }"""
EXTEND = """mutation($input: ExtendComplaintDeadlineInput!) { extendComplaintDeadline(input: $input) {
  complaint { id } errors { code message } } }"""
LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  interaction { id } errors { code message } } }"""
IMPORT = """mutation($input: ImportCustomersInput!) { importCustomers(input: $input) {
  job { id } errors { code message } } }"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Tally:
    def __init__(self) -> None:
        self.customers = 0
        self.complaints = 0
        self.interactions = 0
        self.notified = 0
        self.import_jobs: list[str] = []
        self.imported_rows = 0
        self.unavailable = 0  # answers with a retryable error while a process restarted
        self.failures: list[str] = []


async def _post(http: httpx.AsyncClient, token: str, query: str, variables: dict) -> dict:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=_auth(token))
    return response.json()


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def _client(n: int, url: str, token: str, until: float, tally: Tally) -> None:
    serial = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while time.monotonic() < until:
            serial += 1
            phone = f"139{n:02d}{serial:06d}"
            body = await _post(
                http, token, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "压测客户", "phone": phone}}
            )
            payload = (body.get("data") or {}).get("createCustomer")
            if not payload or payload["errors"]:
                tally.failures.append(f"createCustomer: {body}")
                continue
            tally.customers += 1
            customer_id = payload["customer"]["id"]
            complaint = {
                "customerId": customer_id,
                "channel": "PHONE",
                "summary": "转账未到账",
                "description": "客户来电反映转账三天未到账",
            }
            body = await _post(http, token, FILE, {"input": complaint})
            filed = (body.get("data") or {}).get("fileComplaint")
            if filed and not filed["errors"]:
                tally.complaints += 1
                # An extension tells the customer (an SMS, into the mail drop): one notification per complaint.
                extension = {"id": filed["complaint"]["id"], "reason": "案情复杂，需要调取录音"}
                body = await _post(http, token, EXTEND, {"input": extension})
                extended = (body.get("data") or {}).get("extendComplaintDeadline")
                if extended and not extended["errors"]:
                    tally.notified += 1
                else:
                    tally.failures.append(f"extendComplaintDeadline: {body}")
            else:
                tally.failures.append(f"fileComplaint: {body}")
            interaction = {
                "customerId": customer_id,
                "channel": "PHONE",
                "direction": "INBOUND",
                "kind": "ADVICE",
                "subject": "咨询理财产品",
            }
            body = await _post(http, token, LOG, {"input": interaction})
            logged = (body.get("data") or {}).get("logInteraction")
            if logged and not logged["errors"]:
                tally.interactions += 1
            else:
                tally.failures.append(f"logInteraction: {body}")


def _csv(rng: random.Random, rows: int) -> bytes:
    lines = ["name,gender,birth_date,id_type,id_number,branch"]
    for _ in range(rows):
        p = fake_person(rng, date(2026, 1, 1))
        lines.append(f"{p.name},{p.gender},{p.birth_date},RESIDENT_ID,{p.resident_id},{p.branch}")
    return ("\n".join(lines) + "\n").encode()


async def _importer(url: str, token: str, until: float, tally: Tally) -> None:
    rng = random.Random(2026)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while time.monotonic() < until:
            operations = {"query": IMPORT, "variables": {"input": {"file": None}}}
            response = await http.post(
                "/graphql",
                headers=_auth(token),
                data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
                files={"0": ("customers.csv", _csv(rng, IMPORT_ROWS), "text/csv")},
            )
            payload = ((response.json().get("data") or {}).get("importCustomers")) or {}
            if payload.get("job") and not payload.get("errors"):
                tally.import_jobs.append(payload["job"]["id"])
            else:
                tally.failures.append(f"importCustomers: {response.text[:500]}")
            await asyncio.sleep(IMPORT_EVERY)


async def _killer(env: dict, started: list[Process], until: float, kills: list[float]) -> None:
    victim = start_worker(env, name="worker-killed")
    started.append(victim)
    while time.monotonic() < until:
        await asyncio.sleep(min(KILL_EVERY, max(0.0, until - time.monotonic())))
        victim.kill()
        kills.append(time.monotonic())
        victim = start_worker(env, name="worker-killed")
        started.append(victim)


@pytest.mark.timeout(SOAK_SECONDS + 180)  # the load, then the sweeps catching up and the checks
async def test_mixed_load_with_a_worker_killed_every_30_seconds(app, admin, settings, tmp_path):
    _, token = admin
    mail_drop = tmp_path / "outbox"
    with redis_server() as redis, processes() as started:
        env = crm_env(
            settings.database_url, redis.url, CRM_MAIL_DROP_DIR=str(mail_drop), **FAST_RECOVERY, **NO_RATE_LIMITS
        )
        api = await start_api(env)
        started.append(api)
        scheduler = start_scheduler(env)
        steady = start_worker(env, name="worker-steady")
        started += [scheduler, steady]

        tally, kills, memory = Tally(), [], {"api": [], "scheduler": [], "worker": []}
        until = time.monotonic() + SOAK_SECONDS

        async def sample_memory() -> None:
            while time.monotonic() < until:
                for name, process in (("api", api), ("scheduler", scheduler), ("worker", steady)):
                    memory[name].append(rss_kib(process.pid))
                await asyncio.sleep(2)

        await asyncio.gather(
            *(_client(n, api.url, token, until, tally) for n in range(CLIENTS)),
            _importer(api.url, token, until, tally),
            _killer(env, started, until, kills),
            sample_memory(),
        )

        assert tally.failures == [], tally.failures[:5]
        assert len(kills) >= int(SOAK_SECONDS // KILL_EVERY) - 1

        # Everything sent is done once the sweeps catch up: no job left behind, no message left unsent.
        async def settled() -> bool:
            unfinished = await Job.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count()
            unsent = await Notification.filter(status=NotificationStatus.QUEUED).count()
            return unfinished == 0 and unsent == 0

        await eventually(settled, timeout=90, interval=1, what="every job and notification finishing")
        for process in (api, scheduler, steady):
            assert process.alive(), f"{process.name} died:\n{process.output()[-3000:]}"

    jobs = await Job.filter(kind="IMPORT_CUSTOMERS").order_by("id")
    assert len(jobs) == len(tally.import_jobs)
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * len(jobs), [(j.id, j.status, j.errors) for j in jobs]
    imported = sum(j.result["created"] + j.result["failed"] for j in jobs)
    assert imported == IMPORT_ROWS * len(jobs)
    created_by_import = sum(j.result["created"] for j in jobs)

    assert await Customer.all().count() == tally.customers + created_by_import
    assert await Complaint.all().count() == tally.complaints
    assert await Interaction.all().count() == tally.interactions
    # One notification per extension, each delivered exactly once: as many files in the mail drop as rows SENT.
    notifications = await Notification.all().values_list("status", flat=True)
    assert len(notifications) == tally.notified
    assert set(notifications) <= {NotificationStatus.SENT}
    assert len([p for p in mail_drop.rglob("*") if p.is_file()]) == tally.notified

    print(  # shown with -s: the figures of a run
        f"soak {SOAK_SECONDS:.0f}s: {len(kills)} worker kills; {tally.customers} customers, "
        f"{tally.complaints} complaints, {tally.interactions} interactions, {tally.notified} notifications, "
        f"{len(jobs)} imports of {IMPORT_ROWS} rows;"
        f" RSS KiB first/last: " + ", ".join(f"{n} {m[0]}/{m[-1]}" for n, m in memory.items())
    )
    # Memory of the processes that ran throughout: after the first third (imports, caches, pools), flat.
    for name, samples in memory.items():
        third = max(1, len(samples) // 3)
        settled_rss, last_rss = max(samples[third : 2 * third] or samples), max(samples[2 * third :] or samples)
        assert last_rss <= settled_rss * 1.15 + 20_000, (name, samples)
