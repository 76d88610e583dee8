"""`complaintUpdated` over graphql-transport-ws against a live uvicorn server: one complaint or all the viewer
may see; from a mutation on the same server and (with CRM_TEST_REDIS_URL) on another API server process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from core.pubsub import InProcessPubSub, RedisPubSub
from models.staff import Role
from schema.base import to_global_id
from services import complaints as complaint_service
from tests.complaints.helpers import FILE, move, pk
from tests.conftest import TEST_REDIS_URL, make_staff, token_for, with_overrides
from tests.customers.helpers import CREATE, person, resident_id
from tests.jobs.live import live_server

ROOT = Path(__file__).resolve().parents[2]
ONE = "subscription($id: ID!) { complaintUpdated(id: $id) { id status version events { type } } }"
ALL = "subscription { complaintUpdated { id referenceNo status version } }"
BEIJING, SHANGHAI = "北京朝阳支行", "上海浦东支行"
ADD_NOTE = """mutation($input: AddNoteInput!) { addNote(input: $input) { errors { code } } }"""


# ---------------------------------------------------------------- a small graphql-transport-ws client


class Subscription:
    """One subscription on its own connection; `await sub.next()` is the next `next` payload."""

    def __init__(
        self, address: str, token: str, query: str, variables: dict | None = None, timeout: float = 15.0
    ) -> None:
        self.address, self.token, self.query, self.variables, self.timeout = address, token, query, variables, timeout

    async def __aenter__(self) -> Subscription:
        self.ws = await websockets.connect(f"ws://{self.address}/graphql", subprotocols=["graphql-transport-ws"])
        await self.ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}})
        )
        assert json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))["type"] == "connection_ack"
        await self.ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": self.query, "variables": self.variables or {}}}
            )
        )
        return self

    async def next(self, timeout: float | None = None) -> dict:
        """The next payload: {"data": ...}, or {"errors": ...} when the server refused; {"complete": True} at the
        end."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout or self.timeout))
            if message["type"] == "next":
                return message["payload"]
            if message["type"] == "error":
                return {"errors": message["payload"]}
            if message["type"] == "complete":
                return {"complete": True}
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))

    async def nothing_within(self, seconds: float) -> bool:
        try:
            message = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"expected nothing, got {message}")

    async def __aexit__(self, *exc) -> None:
        try:
            await self.ws.send(json.dumps({"id": "1", "type": "complete"}))
        except websockets.ConnectionClosed:
            pass
        await self.ws.close()


async def subscribe_n(
    address: str,
    token: str,
    query: str,
    variables: dict | None,
    n: int,
    *,
    ready: asyncio.Event | None = None,
    timeout: float = 15.0,
) -> list[dict]:
    """The first `n` payloads of a subscription, then it stops; `ready` is set once the subscribe is sent."""
    async with Subscription(address, token, query, variables, timeout) as sub:
        if ready is not None:
            ready.set()
        return [await sub.next() for _ in range(n)]


async def wait_listening(pubsub, channel: str, listeners: int = 1, timeout: float = 10.0) -> None:
    """Until the server has `listeners` subscribers on the channel (there is no ack of a subscribe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if isinstance(pubsub, InProcessPubSub):
            count = len(pubsub._queues.get(channel, ()))
        else:
            assert isinstance(pubsub, RedisPubSub)
            count = dict(await pubsub._redis.pubsub_numsub(pubsub._prefix + channel)).get(
                (pubsub._prefix + channel).encode(), 0
            )
        if count >= listeners:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"nobody subscribed to {channel} in {timeout}s")


# ---------------------------------------------------------------- a client of one server over HTTP


class Api:
    def __init__(self, address: str, token: str) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://{address}", timeout=30)
        self.token = token

    async def __call__(self, query: str, variables: dict | None = None) -> dict:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    async def customer(self, n: int, branch: str = BEIJING) -> dict:
        result = (await self(CREATE, {"input": person(idNumber=resident_id(sequence=f"{n:03d}"), branch=branch)}))[
            "createCustomer"
        ]
        assert result["errors"] == [], result
        return result["customer"]

    async def file(self, customer_id: str, summary: str = "信用卡年费争议") -> dict:
        result = (
            await self(
                FILE,
                {
                    "input": {
                        "customerId": customer_id,
                        "channel": "PHONE",
                        "summary": summary,
                        "description": "客户要求退还年费",
                    }
                },
            )
        )["fileComplaint"]
        assert result["errors"] == [], result
        return result["complaint"]

    async def do(self, name: str, **fields) -> dict:
        mutation = f"{name}Complaint" if name != "extend" else "extendComplaintDeadline"
        result = (await self(move(name), {"input": fields}))[mutation]
        assert result["errors"] == [], result
        return result["complaint"]

    async def close(self) -> None:
        await self.http.aclose()


@asynccontextmanager
async def api(address: str, token: str):
    client = Api(address, token)
    try:
        yield client
    finally:
        await client.close()


async def people(settings) -> dict:
    admin = await make_staff(Role.ADMIN)
    handler = await make_staff(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    return {
        "admin": await token_for(admin, settings),
        "handler": await token_for(handler, settings),
        "handler_name": handler.username,
    }


# ---------------------------------------------------------------- through the same server


async def test_one_complaint_streams_each_change_made_on_the_same_server(settings):
    async with live_server(settings) as (application, address):
        tokens = await people(settings)
        async with api(address, tokens["admin"]) as admin, api(address, tokens["handler"]) as handler:
            customer = await admin.customer(201)
            complaint = await admin.file(customer["id"])
            other = await admin.file(customer["id"], summary="手机银行闪退")
            channel = complaint_service.channel_for(pk(complaint["id"]))
            async with Subscription(address, tokens["handler"], ONE, {"id": complaint["id"]}) as sub:
                await wait_listening(application.runtime.pubsub, channel)
                await handler.do("acknowledge", id=complaint["id"])
                first = (await sub.next())["data"]["complaintUpdated"]
                assert (first["id"], first["status"], first["version"]) == (complaint["id"], "ACKNOWLEDGED", 2)
                assert first["events"][-1]["type"] == "ACKNOWLEDGED"

                await handler.do("acknowledge", id=other["id"])  # another complaint: not on this stream
                await handler.do("assign", id=complaint["id"], department="COMPLAINTS")
                second = (await sub.next())["data"]["complaintUpdated"]
                assert (second["id"], second["status"], second["version"]) == (complaint["id"], "ACKNOWLEDGED", 3)

                await handler.do("start", id=complaint["id"])
                third = (await sub.next())["data"]["complaintUpdated"]
                assert (third["id"], third["status"], third["version"]) == (complaint["id"], "IN_PROGRESS", 4)

                note = await handler(ADD_NOTE, {"input": {"subjectId": complaint["id"], "body": "已联系客户"}})
                assert note["addNote"]["errors"] == []
                fourth = (await sub.next())["data"]["complaintUpdated"]  # a note is news too
                assert (fourth["id"], fourth["version"]) == (complaint["id"], 4)

                # A rejected move publishes nothing.
                rejected = await handler(move("close"), {"input": {"id": complaint["id"], "customerAccepted": True}})
                assert rejected["closeComplaint"]["errors"][0]["code"] == "INVALID_TRANSITION"
                assert await sub.nothing_within(0.5)


async def test_subscribe_n_collects_the_events_of_several_moves(settings):
    async with live_server(settings) as (application, address):
        tokens = await people(settings)
        async with api(address, tokens["admin"]) as admin, api(address, tokens["handler"]) as handler:
            customer = await admin.customer(202)
            complaint = await admin.file(customer["id"])
            channel = complaint_service.channel_for(pk(complaint["id"]))
            listening = asyncio.create_task(subscribe_n(address, tokens["handler"], ONE, {"id": complaint["id"]}, 3))
            await wait_listening(application.runtime.pubsub, channel)
            await handler.do("escalate", id=complaint["id"], reason="客户要求")
            await handler.do("start", id=complaint["id"])
            await handler.do("extend", id=complaint["id"], reason="复杂")
            payloads = await listening
    updates = [p["data"]["complaintUpdated"] for p in payloads]
    assert [u["id"] for u in updates] == [complaint["id"]] * 3
    # Each message names the complaint; its state is read when the message is handled, so never older.
    assert [u["version"] for u in updates] == sorted(u["version"] for u in updates)
    assert updates[-1]["version"] == 4 and updates[-1]["status"] == "IN_PROGRESS"


async def test_each_update_carries_the_current_events_and_notes(settings):
    query = """subscription($id: ID!) { complaintUpdated(id: $id) { version events { type } notes { body } } }"""
    async with live_server(settings) as (application, address):
        tokens = await people(settings)
        async with api(address, tokens["admin"]) as admin, api(address, tokens["handler"]) as handler:
            customer = await admin.customer(207)
            complaint = await admin.file(customer["id"])
            channel = complaint_service.channel_for(pk(complaint["id"]))
            async with Subscription(address, tokens["handler"], query, {"id": complaint["id"]}) as sub:
                await wait_listening(application.runtime.pubsub, channel)
                await handler.do("acknowledge", id=complaint["id"])
                first = (await sub.next())["data"]["complaintUpdated"]
                assert [e["type"] for e in first["events"]] == ["RECEIVED", "ACKNOWLEDGED"]
                await handler.do("assign", id=complaint["id"], department="COMPLAINTS")
                second = (await sub.next())["data"]["complaintUpdated"]
                assert second["version"] == 3
                assert [e["type"] for e in second["events"]] == ["RECEIVED", "ACKNOWLEDGED", "ASSIGNED"]
                await handler(ADD_NOTE, {"input": {"subjectId": complaint["id"], "body": "已联系客户"}})
                third = (await sub.next())["data"]["complaintUpdated"]
                assert third["notes"] == [{"body": "已联系客户"}]
                assert third["events"][-1]["type"] == "NOTE_ADDED"


async def test_all_complaints_stream_filings_and_moves(settings):
    async with live_server(settings) as (application, address):
        tokens = await people(settings)
        async with api(address, tokens["admin"]) as admin, api(address, tokens["handler"]) as handler:
            customer = await admin.customer(203)
            async with Subscription(address, tokens["handler"], ALL) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all())
                filed = await admin.file(customer["id"])
                update = (await sub.next())["data"]["complaintUpdated"]
                assert (update["id"], update["referenceNo"], update["status"]) == (
                    filed["id"],
                    filed["referenceNo"],
                    "RECEIVED",
                )
                second = await admin.file(customer["id"], summary="手机银行闪退")
                assert (await sub.next())["data"]["complaintUpdated"]["id"] == second["id"]
                await handler.do("withdraw", id=filed["id"], reason="客户撤回")
                update = (await sub.next())["data"]["complaintUpdated"]
                assert (update["id"], update["status"]) == (filed["id"], "WITHDRAWN")


async def test_a_branch_bound_subscriber_of_all_sees_only_its_branch(settings):
    async with live_server(settings) as (application, address):
        tokens = await people(settings)
        rm = await make_staff(Role.RELATIONSHIP_MANAGER, branch=BEIJING)
        rm_token = await token_for(rm, settings)
        async with api(address, tokens["admin"]) as admin, api(address, tokens["handler"]) as handler:
            ours = await admin.customer(204, BEIJING)
            theirs = await admin.customer(205, SHANGHAI)
            hidden = await admin.file(theirs["id"])
            async with (
                Subscription(address, rm_token, ALL) as sub,
                Subscription(address, tokens["handler"], ALL) as everything,
            ):
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all(), 2)
                await admin.file(theirs["id"], summary="另一个分行的投诉")
                await handler.do("acknowledge", id=hidden["id"])
                visible = await admin.file(ours["id"])
                # The bank-wide handler sees all three, in order; the branch-bound RM only its branch's.
                seen = [(await everything.next())["data"]["complaintUpdated"]["id"] for _ in range(3)]
                assert seen[1:] == [hidden["id"], visible["id"]]
                update = (await sub.next())["data"]["complaintUpdated"]
                assert update["id"] == visible["id"]
                assert await sub.nothing_within(0.5)
            # Subscribing to a hidden complaint by id is NOT_FOUND, like reading it.
            async with Subscription(address, rm_token, ONE, {"id": hidden["id"]}) as refused:
                reply = await refused.next()
            assert reply["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_subscription_needs_a_token(settings):
    async with live_server(settings) as (_, address), Subscription(address, "no-such-token", ALL) as sub:
        reply = await sub.next()
    assert reply["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_unknown_complaint_is_not_found(settings):
    async with live_server(settings) as (_, address):
        tokens = await people(settings)
        async with Subscription(address, tokens["handler"], ONE, {"id": to_global_id("Complaint", 999999)}) as sub:
            reply = await sub.next()
    assert reply["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# ---------------------------------------------------------------- from another API server process


@pytest.fixture
def redis_settings(settings):
    if not TEST_REDIS_URL:
        pytest.skip("CRM_TEST_REDIS_URL is not set")
    return with_overrides(settings, redis_url=TEST_REDIS_URL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def second_server(settings):
    """`python app.py serve` in its own process, on the same database and Redis."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_ENV="test",
        CRM_DATABASE_URL=settings.database_url,
        CRM_REDIS_URL=settings.redis_url,
        CRM_SECRET_KEY=settings.secret_key,
        CRM_LOG_JSON="false",
    )
    process = subprocess.Popen(
        [sys.executable, "app.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            for _ in range(300):
                if process.poll() is not None:
                    raise AssertionError(f"the second server exited: {process.communicate()[0]}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the second server did not start")
        yield address
    finally:
        process.terminate()
        try:
            output, _ = await asyncio.to_thread(process.communicate, timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(output)


async def _flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


async def test_a_change_made_on_another_server_process_reaches_the_subscriber(redis_settings):
    await _flush(redis_settings.redis_url)
    async with live_server(redis_settings) as (application, address):
        assert isinstance(application.runtime.pubsub, RedisPubSub)
        tokens = await people(redis_settings)
        async with (
            second_server(redis_settings) as other_address,
            api(other_address, tokens["admin"]) as admin,
            api(other_address, tokens["handler"]) as handler,
        ):
            customer = await admin.customer(206)
            complaint = await admin.file(customer["id"])
            pubsub = application.runtime.pubsub
            async with (
                Subscription(address, tokens["handler"], ONE, {"id": complaint["id"]}) as one,
                Subscription(address, tokens["handler"], ALL) as every,
            ):
                await wait_listening(pubsub, complaint_service.channel_for(pk(complaint["id"])))
                await wait_listening(pubsub, complaint_service.channel_for_all())
                # Made on the other process; received on this one.
                await handler.do("acknowledge", id=complaint["id"])
                update = (await one.next())["data"]["complaintUpdated"]
                assert (update["id"], update["status"], update["events"][-1]["type"]) == (
                    complaint["id"],
                    "ACKNOWLEDGED",
                    "ACKNOWLEDGED",
                )
                assert (await every.next())["data"]["complaintUpdated"]["id"] == complaint["id"]

                await handler.do("escalate", id=complaint["id"], reason="客户要求")
                update = (await one.next())["data"]["complaintUpdated"]
                assert (update["status"], update["version"]) == ("ESCALATED", 3)
                assert (await every.next())["data"]["complaintUpdated"]["status"] == "ESCALATED"

                filed = await admin.file(customer["id"], summary="另一个投诉")
                update = (await every.next())["data"]["complaintUpdated"]
                assert (update["id"], update["referenceNo"]) == (filed["id"], filed["referenceNo"])
                assert await one.nothing_within(0.5)  # that one was another complaint
