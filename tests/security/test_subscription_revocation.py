"""Live subscriptions re-check the token, role and branch for every message (docs/DOMAIN.md, "Roles and what they may
do"): a revoked or expired token, or a deactivated staff member, closes the graphql-transport-ws socket with
4401 before anything more is delivered; a new role or branch applies to the next message."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import websockets

from models.jobs import Job
from models.staff import Role, StaffToken
from schema import context as context_module
from schema.base import to_global_id
from services import auth, clock, complaints as complaint_service, jobs as job_service
from tests.complaints.test_subscription import BEIJING, SHANGHAI, Subscription, api, wait_listening
from tests.conftest import make_staff, token_for
from tests.jobs.live import live_server

ALL = "subscription { complaintUpdated { id status customer { id phone } } }"
PROGRESS = "subscription($id: ID!) { jobProgress(id: $id) { id status processed } }"
UPDATE_STAFF = """mutation($input: UpdateStaffInput!) { updateStaff(input: $input) { staff { id } errors { code } } }"""
UNAUTHORIZED = 4401


async def closed_without_delivery(sub: Subscription, timeout: float = 10.0) -> int:
    """The socket's close code; fails when anything at all arrives before the close."""
    try:
        message = await asyncio.wait_for(sub.ws.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1
    raise AssertionError(f"expected the socket to close, got {message}")


async def _people(settings) -> dict:
    admin = await make_staff(Role.ADMIN)
    handler = await make_staff(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    return {
        "admin": await token_for(admin, settings),
        "handler": handler,
        "handler_token": await token_for(handler, settings),
    }


async def _revoke(handler) -> None:
    assert await auth.revoke_tokens(handler.id) >= 1


async def _expire(handler) -> None:
    await StaffToken.filter(staff_id=handler.id).update(expires_at=clock.now() - timedelta(seconds=1))


async def _deactivate(handler, admin) -> None:
    result = await admin(UPDATE_STAFF, {"input": {"id": to_global_id("Staff", handler.id), "active": False}})
    assert result["updateStaff"]["errors"] == []


async def _complaint_stream_closes_after(settings, cut) -> None:
    async with live_server(settings) as (application, address):
        people = await _people(settings)
        async with api(address, people["admin"]) as admin:
            customer = await admin.customer(301)
            async with Subscription(address, people["handler_token"], ALL) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all())
                await admin.file(customer["id"])
                assert (await sub.next())["data"]["complaintUpdated"]["status"] == "RECEIVED"

                await cut(people["handler"], admin)
                await admin.file(customer["id"], summary="之后的投诉")  # an event after the cut
                assert await closed_without_delivery(sub) == UNAUTHORIZED
            # The server let go of the subscription.
            await _no_listener(application.runtime.pubsub, complaint_service.channel_for_all())


async def _no_listener(pubsub, channel: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while pubsub._queues.get(channel):
        assert asyncio.get_running_loop().time() < deadline, f"still listening on {channel}"
        await asyncio.sleep(0.02)


async def test_a_revoked_token_closes_the_complaint_stream(settings):
    await _complaint_stream_closes_after(settings, lambda handler, admin: _revoke(handler))


async def test_logging_out_closes_the_complaint_stream(settings):
    """The `logout` mutation, sent over HTTP with the token the socket was opened with."""
    async with live_server(settings) as (application, address):
        people = await _people(settings)
        async with api(address, people["admin"]) as admin, api(address, people["handler_token"]) as handler:
            customer = await admin.customer(305)
            async with Subscription(address, people["handler_token"], ALL) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all())
                await admin.file(customer["id"])
                assert (await sub.next())["data"]["complaintUpdated"]["status"] == "RECEIVED"
                assert (await handler("mutation { logout { revoked } }"))["logout"]["revoked"] is True
                await admin.file(customer["id"], summary="之后的投诉")
                assert await closed_without_delivery(sub) == UNAUTHORIZED


async def test_an_expired_token_closes_the_complaint_stream(settings):
    await _complaint_stream_closes_after(settings, lambda handler, admin: _expire(handler))


async def test_deactivating_the_staff_member_closes_the_complaint_stream(settings):
    await _complaint_stream_closes_after(settings, _deactivate)


async def test_a_revoked_token_closes_the_job_progress_stream(settings):
    async with live_server(settings) as (application, address):
        member = await make_staff(Role.ADMIN)
        token = await token_for(member, settings)
        job = await Job.create(kind="AUDIT_EXPORT", params={}, created_by=member)
        gid = to_global_id("Job", job.id)
        async with Subscription(address, token, PROGRESS, {"id": gid}) as sub:
            assert (await sub.next())["data"]["jobProgress"]["status"] == "QUEUED"
            pubsub = application.runtime.pubsub
            await wait_listening(pubsub, job_service.channel(job.id))
            await pubsub.publish(job_service.channel(job.id), {"id": job.id, "status": "QUEUED"})
            assert (await sub.next())["data"]["jobProgress"]["id"] == gid  # still delivered

            await auth.revoke_tokens(member.id)
            await pubsub.publish(job_service.channel(job.id), {"id": job.id, "status": "RUNNING"})
            assert await closed_without_delivery(sub) == UNAUTHORIZED


async def test_a_branch_change_applies_to_the_next_message(settings):
    async with live_server(settings) as (application, address):
        people = await _people(settings)
        rm = await make_staff(Role.RELATIONSHIP_MANAGER, branch=BEIJING)
        async with api(address, people["admin"]) as admin:
            beijing = await admin.customer(302, BEIJING)
            shanghai = await admin.customer(303, SHANGHAI)
            async with Subscription(address, await token_for(rm, settings), ALL) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all())
                await admin.file(shanghai["id"])  # not theirs
                ours = await admin.file(beijing["id"])
                assert (await sub.next())["data"]["complaintUpdated"]["id"] == ours["id"]

                moved = await admin(UPDATE_STAFF, {"input": {"id": to_global_id("Staff", rm.id), "branch": SHANGHAI}})
                assert moved["updateStaff"]["errors"] == []
                await admin.file(beijing["id"], summary="北京的第二个投诉")  # no longer theirs
                now_theirs = await admin.file(shanghai["id"], summary="上海的第二个投诉")
                assert (await sub.next())["data"]["complaintUpdated"]["id"] == now_theirs["id"]
                assert await sub.nothing_within(0.5)


async def test_a_role_change_applies_to_the_next_message(settings):
    """A COMPLAINT_HANDLER sees phone numbers unmasked; made a SERVICE_AGENT, the next message masks them."""
    async with live_server(settings) as (application, address):
        people = await _people(settings)
        async with api(address, people["admin"]) as admin:
            customer = await admin.customer(304)
            async with Subscription(address, people["handler_token"], ALL) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all())
                await admin.file(customer["id"])
                before = (await sub.next())["data"]["complaintUpdated"]["customer"]["phone"]
                assert "*" not in before

                handler_id = to_global_id("Staff", people["handler"].id)
                changed = await admin(UPDATE_STAFF, {"input": {"id": handler_id, "role": "SERVICE_AGENT"}})
                assert changed["updateStaff"]["errors"] == []
                await admin.file(customer["id"], summary="第二个投诉")
                after = (await sub.next())["data"]["complaintUpdated"]["customer"]["phone"]
                assert "****" in after and after != before


async def test_a_new_subscription_on_an_old_connection_checks_the_token_again(settings):
    async with live_server(settings) as (_, address):
        people = await _people(settings)
        async with websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {people['handler_token']}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await _revoke(people["handler"])
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ALL}}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "next" and reply["payload"]["data"] is None
            assert [e["extensions"]["code"] for e in reply["payload"]["errors"]] == ["UNAUTHENTICATED"]


async def test_queries_over_an_old_connection_check_the_token_again(settings, monkeypatch):
    monkeypatch.setattr(context_module, "WEBSOCKET_RECHECK_SECONDS", 0.0)
    async with live_server(settings) as (_, address):
        people = await _people(settings)
        async with websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {people['handler_token']}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = {"query": "{ complaints { totalCount } }"}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": query}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == "next" and first["payload"]["data"]["complaints"]["totalCount"] == 0
            await _revoke(people["handler"])
            await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": query}))
            replies = []
            while not replies or replies[-1]["type"] not in ("complete", "error"):
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if reply.get("id") == "2":
                    replies.append(reply)
            errors = [e for r in replies for e in (r["payload"].get("errors", []) if r["type"] == "next" else [])]
            assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]
