"""Stopping on purpose (docs/RELIABILITY.md, "Graceful shutdown"): SIGTERM to `crm serve` lets the requests in
flight finish (at most CRM_SHUTDOWN_GRACE_SECONDS), refuses new connections at once and closes open
graphql-transport-ws subscriptions with 1012 ("service restart"), so that clients reconnect instead of waiting on a
dead socket; SIGTERM to `crm worker` lets the actor run in progress finish and leaves the queued messages in Redis
for the next worker; SIGHUP to `crm serve --workers N` replaces its processes one by one without failing a
request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import textwrap
import time
from pathlib import Path

import dramatiq
import httpx
import pytest
import websockets
from dramatiq.brokers.redis import RedisBroker

from tests.complaints.helpers import file, new_customer
from tests.conftest import GraphQLClient
from tests.reliability.harness import (
    NO_RATE_LIMITS,
    ROOT,
    Api,
    crm_env,
    eventually,
    free_port,
    processes,
    redis_server,
    start_worker,
)

pytestmark = pytest.mark.timeout(120)

COUNT = '{"query": "query { customers(first: 1) { totalCount } }"}'
SUBSCRIBE_ALL = "subscription { complaintUpdated { id referenceNo } }"


async def _slow_request(url: str, token: str, pause: asyncio.Event, sent_first: asyncio.Event) -> httpx.Response:
    """A POST whose body arrives in two parts, the second only once `pause` is set: in flight all along."""

    async def body():
        yield COUNT[:10].encode()
        sent_first.set()
        await pause.wait()
        yield COUNT[10:].encode()

    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": str(len(COUNT)),
    }
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{url}/graphql", content=body(), headers=headers)


async def _streaming(ws, gql: GraphQLClient, token: str, customer_id: str) -> None:
    """Files complaints until the subscription streams one: then it is live."""
    for _ in range(10):
        filed = await file(gql, token, customer_id)
        with contextlib.suppress(TimeoutError):
            message = json.loads(await asyncio.wait_for(ws.recv(), 1))
            assert message["type"] == "next", message
            if message["payload"]["data"]["complaintUpdated"]["id"] == filed["id"]:
                return
    raise AssertionError("the subscription streamed nothing")


async def _refused(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(f"{url}/healthz")
    except httpx.ConnectError:
        return True
    return False


async def test_sigterm_finishes_requests_in_flight_refuses_new_ones_and_closes_subscriptions(
    app, admin, migrated_database
):
    _, token = admin
    with processes() as started:
        api = Api(crm_env(migrated_database, None), free_port())
        started.append(api)
        await api.ready(60)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            gql = GraphQLClient(http)
            customer = await new_customer(gql, token)
            async with websockets.connect(
                f"ws://127.0.0.1:{api.port}/graphql", subprotocols=["graphql-transport-ws"]
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE_ALL}}))
                await _streaming(ws, gql, token, customer["id"])

                pause, sent_first = asyncio.Event(), asyncio.Event()
                in_flight = asyncio.create_task(_slow_request(api.url, token, pause, sent_first))
                await asyncio.wait_for(sent_first.wait(), 10)
                await asyncio.sleep(0.5)  # the server has the request's first bytes
                api.popen.send_signal(signal.SIGTERM)

                # The subscription is closed with "service restart", not dropped.
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012), closed.value
                # New connections are refused while the request in flight goes on.
                await eventually(lambda: _refused(api.url), timeout=5, what="new connections refused")
                assert api.alive() and not in_flight.done()

                pause.set()
                response = await asyncio.wait_for(in_flight, 15)
                assert response.status_code == 200, response.text
                assert response.json()["data"]["customers"]["totalCount"] == 1
        # uvicorn re-raises the SIGTERM it caught once it has shut down: the status says "stopped by SIGTERM".
        assert await asyncio.to_thread(api.popen.wait, 15) in (0, -signal.SIGTERM)


async def test_the_grace_period_bounds_a_request_that_never_finishes(app, admin, migrated_database):
    _, token = admin
    with processes() as started:
        api = Api(crm_env(migrated_database, None, CRM_SHUTDOWN_GRACE_SECONDS="1"), free_port())
        started.append(api)
        await api.ready(60)
        never, sent_first = asyncio.Event(), asyncio.Event()
        stuck = asyncio.create_task(_slow_request(api.url, token, never, sent_first))
        await asyncio.wait_for(sent_first.wait(), 10)
        await asyncio.sleep(0.5)
        began = time.monotonic()
        api.popen.send_signal(signal.SIGTERM)
        await asyncio.to_thread(api.popen.wait, 15)
        assert time.monotonic() - began < 8, "the process outlived its 1 s grace period by far"
        assert "timeout graceful shutdown exceeded" in api.output()
        never.set()  # the client sends the rest of its body, too late: the request was cancelled
        try:
            response = await asyncio.wait_for(stuck, 10)
        except httpx.HTTPError:
            pass
        else:
            assert response.status_code >= 500, (response.status_code, response.text)


# ---------------------------------------------------------------- the worker

SLOW_ACTOR = textwrap.dedent(
    """
    # Loaded at start-up by the test's worker process only (PYTHONPATH): an actor that takes its time.
    import sys, time
    sys.path.insert(0, {root!r})
    from tasks.broker import actor

    @actor(queue_name="default", max_retries=0)
    def reliability_slow_probe(folder, name, seconds):
        from pathlib import Path
        Path(folder, name + ".started").touch()
        time.sleep(seconds)
        Path(folder, name + ".finished").touch()
    """
)


def _send_probe(redis_url: str, folder: Path, name: str, seconds: float) -> None:
    broker = RedisBroker(url=redis_url)
    try:
        broker.declare_queue("default")
        broker.enqueue(
            dramatiq.Message(
                queue_name="default",
                actor_name="reliability_slow_probe",
                args=(str(folder), name, seconds),
                kwargs={},
                options={},
            )
        )
    finally:
        broker.close()


async def test_sigterm_lets_the_worker_finish_the_run_in_progress(app, tmp_path, migrated_database):
    preload = tmp_path / "preload"
    preload.mkdir()
    (preload / "sitecustomize.py").write_text(SLOW_ACTOR.format(root=str(ROOT)))
    with redis_server() as redis, processes() as started:
        env = crm_env(migrated_database, redis.url, PYTHONPATH=str(preload))
        worker = start_worker(env, threads=1)
        started.append(worker)
        _send_probe(redis.url, tmp_path, "first", 3)
        _send_probe(redis.url, tmp_path, "second", 0)
        await eventually(
            lambda: asyncio.sleep(0, (tmp_path / "first.started").exists()), timeout=30, what="the slow run starting"
        )
        worker.popen.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.popen.wait, 30) == 0, worker.output()[-3000:]
        assert (tmp_path / "first.finished").exists(), worker.output()[-3000:]
        assert not (tmp_path / "second.started").exists()
        # The message the worker had not started is still queued: the next worker runs it.
        successor = start_worker(env, threads=1, name="successor")
        started.append(successor)
        await eventually(
            lambda: asyncio.sleep(0, (tmp_path / "second.finished").exists()), timeout=30, what="the second run"
        )


# ---------------------------------------------------------------- rolling restart


def _children(pid: int) -> set[int]:
    """The supervisor's uvicorn processes (spawned: `multiprocessing.spawn` on their command line)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    return found


async def test_a_rolling_restart_under_load_fails_no_request(app, admin, migrated_database):
    _, token = admin
    with redis_server() as redis, processes() as started:
        api = Api(crm_env(migrated_database, redis.url, **NO_RATE_LIMITS), free_port(), workers=2)
        started.append(api)
        await api.ready(90)
        await eventually(lambda: asyncio.sleep(0, len(_children(api.pid)) == 2), timeout=30, what="two processes")
        before = _children(api.pid)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            await new_customer(GraphQLClient(http), token)

        outcomes: list[str] = []
        stop = asyncio.Event()

        async def client() -> None:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            # Each request on a new connection: a connection kept alive by the client across the old process's
            # exit is a client's to retry (see docs/RELIABILITY.md); what must never happen is a refused or
            # unanswered request.
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
                while not stop.is_set():
                    try:
                        response = await http.post(f"{api.url}/graphql", content=COUNT, headers=headers)
                        body = response.json()
                        ok = response.status_code == 200 and body["data"]["customers"]["totalCount"] == 1
                        outcomes.append("ok" if ok else f"{response.status_code} {body}")
                    except Exception as exc:
                        outcomes.append(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.01)  # continuous, but leaving the CPU to the processes starting

        clients = [asyncio.create_task(client()) for _ in range(3)]
        await eventually(lambda: asyncio.sleep(0, len(outcomes) > 20), timeout=30, what="requests answered")
        os.kill(api.pid, signal.SIGHUP)
        await eventually(
            lambda: asyncio.sleep(0, (now := _children(api.pid)) and not now & before and len(now) == 2),
            timeout=90,
            interval=0.5,
            what="both processes replaced",
        )
        served = len(outcomes)
        await eventually(lambda: asyncio.sleep(0, len(outcomes) > served + 20), timeout=30, what="requests after")
        stop.set()
        await asyncio.gather(*clients)
        failures = [o for o in outcomes if o != "ok"]
        assert not failures, (len(outcomes), failures[:5])
        assert "Received SIGHUP, restarting processes" in api.output()
