"""PostgreSQL out of reach under load, then back (docs/RELIABILITY.md, "Database down"): a real `crm serve` and
`crm worker` reach the database through a TCP proxy of the test's own (stopping it resets every open connection and
refuses new ones, as a database that went away; the server itself keeps serving the other tests).

While it is down, every request, in flight or new, is answered quickly SERVICE_UNAVAILABLE with a generic message
(never INTERNAL_SERVER_ERROR, never a socket's words), a mutation commits nothing, /readyz is 503 and the API logs no
traceback. Once it is back the same processes serve again without a restart: requests succeed, /readyz is 200, and
the worker runs a job submitted after the recovery."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest

from models.complaints import Complaint
from models.jobs import Job, JobStatus
from tests.complaints.helpers import FILE, new_customer
from tests.conftest import GraphQLClient
from tests.reliability.harness import (
    NO_RATE_LIMITS,
    Api,
    TcpProxy,
    crm_env,
    database_target,
    eventually,
    free_port,
    processes,
    proxied_database_url,
    readiness,
    redis_server,
    start_worker,
)

pytestmark = pytest.mark.timeout(90)
CLIENTS = 8
LATENCY_BOUND = 3.0  # seconds: an answer while the database is down (CRM_DB_CONNECT_TIMEOUT_MS below, and more)
READ = "{ me { username } customers(first: 5) { edges { node { id name } } } }"
EXPORT = "mutation { exportAuditLog(input: {}) { job { id status } errors { code } } }"
SHORT_WAITS = {"CRM_DB_CONNECT_TIMEOUT_MS": "1000", "CRM_DB_ACQUIRE_TIMEOUT_MS": "2000"}


class Load:
    """CLIENTS loops, each alternating a read and a complaint filing (a write), recording every answer: (phase,
    kind, seconds, the response body or the client-side error)."""

    def __init__(self, client: GraphQLClient, token: str, customer_id: str) -> None:
        self.client, self.token, self.customer_id = client, token, customer_id
        self.phase = "up"
        self.answers: list[tuple[str, str, float, dict | str, str]] = []
        self._stop = asyncio.Event()
        self._numbers = itertools.count()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            for kind in ("read", "write"):
                phase, started = self.phase, time.monotonic()
                summary = f"reliability-{next(self._numbers)}"
                try:
                    if kind == "read":
                        response = await self.client.raw(READ, token=self.token)
                    else:
                        data = {"customerId": self.customer_id, "channel": "PHONE", "summary": summary}
                        response = await self.client.raw(
                            FILE, {"input": {**data, "description": "客户来电反映问题"}}, token=self.token
                        )
                    body: dict | str = response.json()
                except (httpx.HTTPError, ValueError) as error:
                    body = f"{type(error).__name__}: {error}"
                # Started and answered while up, or else "in flight" while it changed (a reset connection).
                phase = phase if phase == self.phase else "in flight"
                self.answers.append((phase, kind, time.monotonic() - started, body, summary))

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(CLIENTS)]
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def of(self, phase: str) -> list:
        return [a for a in self.answers if a[0] == phase]


def _codes(body: dict | str) -> set[str]:
    if isinstance(body, str):
        return {body}
    return {(e.get("extensions") or {}).get("code", "-") for e in body.get("errors") or []}


def _ok(body: dict | str) -> bool:
    if isinstance(body, str) or body.get("errors"):
        return False
    payload = body["data"].get("fileComplaint")
    return payload is None or payload["errors"] == []


async def test_requests_get_service_unavailable_while_the_database_is_down_and_recover(app, admin, migrated_database):
    _, token = admin
    started_at = time.monotonic()
    proxy = TcpProxy(*database_target(migrated_database))
    await proxy.start()
    try:
        with redis_server() as redis, processes() as started:
            env = crm_env(proxied_database_url(migrated_database, proxy), redis.url, **NO_RATE_LIMITS, **SHORT_WAITS)
            api = Api(env, free_port())
            worker = start_worker(env, threads=2)
            started += [api, worker]
            await api.ready(60)
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
            async with httpx.AsyncClient(base_url=api.url, timeout=15, limits=limits) as http:
                client = GraphQLClient(http)
                customer = await new_customer(client, token)
                async with Load(client, token, customer["id"]) as load:
                    await asyncio.sleep(1.5)
                    load.phase = "stopping"
                    await proxy.stop()  # requests under way are in flight while their connections are reset
                    load.phase = "down"
                    await asyncio.sleep(0.5)
                    status, checks = await readiness(api.url)
                    assert (status, checks["database"]) == (503, False), checks
                    await asyncio.sleep(3)
                    load.phase = "starting"
                    await proxy.start()

                    async def serving() -> bool:
                        answers = load.of("back")
                        return len(answers) >= 2 * CLIENTS and all(_ok(a[3]) for a in answers[-CLIENTS:])

                    load.phase = "back"
                    await eventually(serving, timeout=15, what="requests succeeding again")
                assert await readiness(api.url) == (200, {"database": True, "broker": True})

                # The worker's pool was reset too: a job submitted now runs.
                payload = (await client(EXPORT, token=token))["exportAuditLog"]
                assert payload["errors"] == [], payload

                async def exported() -> bool:
                    jobs = await Job.all()
                    return bool(jobs) and all(j.status == JobStatus.SUCCEEDED for j in jobs)

                await eventually(exported, timeout=20, what="the export job running on the recovered worker")
            log = api.output()
    finally:
        await proxy.stop()

    up, down, in_flight = load.of("up"), load.of("down"), load.of("in flight")
    assert up and all(_ok(a[3]) for a in up), [a for a in up if not _ok(a[3])][:3]
    assert len(down) >= CLIENTS, "the load kept going while the database was down"
    for phase, kind, seconds, body, _ in down + in_flight:
        assert _ok(body) or _codes(body) == {"SERVICE_UNAVAILABLE"}, (phase, kind, body)
        text = str(body)
        assert "Errno" not in text and "Connection refused" not in text and "INTERNAL_SERVER_ERROR" not in text
        assert seconds < LATENCY_BOUND, (phase, kind, seconds, body)
    assert not [a for a in down if _ok(a[3])], "nothing succeeds while the database is down"
    # A filing refused while the database was down committed nothing.
    refused = [a[4] for a in down if a[1] == "write"]
    assert refused and not await Complaint.filter(summary__in=refused).exists()
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:4000]
    assert "SERVICE_UNAVAILABLE" in log
    assert time.monotonic() - started_at < 60
