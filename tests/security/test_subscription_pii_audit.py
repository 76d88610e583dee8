"""PII over subscriptions is audited: each `complaintUpdated` message that carries a customer's personal data
unmasked leaves one `customer.pii_read` entry per customer, while the subscription is still open."""

from __future__ import annotations

import asyncio

from models.audit import AuditEntry
from models.staff import Role
from services import complaints as complaint_service
from tests.complaints.helpers import pk
from tests.complaints.test_subscription import Subscription, api, wait_listening
from tests.conftest import make_staff, token_for
from tests.jobs.live import live_server

WITH_PII = "subscription { complaintUpdated { id customer { id name phone idNumber } } }"
WITHOUT_PII = "subscription { complaintUpdated { id status } }"


async def _pii_reads(expected: int, timeout: float = 5.0, **filters) -> list[AuditEntry]:
    """The customer.pii_read entries, once there are `expected` of them (the entry is written as the message
    leaves); a few moments more to catch any extra one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entries = await AuditEntry.filter(action="customer.pii_read", **filters).order_by("id")
        if len(entries) >= expected or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    return await AuditEntry.filter(action="customer.pii_read", **filters).order_by("id")


async def test_each_message_with_unmasked_pii_is_audited_per_customer(settings):
    async with live_server(settings) as (application, address):
        admin = await make_staff(Role.ADMIN)
        handler = await make_staff(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
        async with api(address, await token_for(admin, settings)) as admin_api:
            first = await admin_api.customer(401)
            second = await admin_api.customer(402)
            async with Subscription(address, await token_for(handler, settings), WITH_PII) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all())
                await admin_api.file(first["id"])
                message = (await sub.next())["data"]["complaintUpdated"]
                assert "*" not in message["customer"]["phone"]  # a handler sees it unmasked

                [entry] = await _pii_reads(1, actor_id=handler.id)
                assert (entry.subject_type, entry.subject_id) == ("Customer", str(pk(first["id"])))
                assert {"phone", "idNumber"} <= set(entry.detail["fields"])
                assert entry.actor_name == handler.username

                # One entry per message: the same customer again, then another customer.
                await admin_api.file(first["id"], summary="第二个投诉")
                await sub.next()
                await admin_api.file(second["id"], summary="另一位客户的投诉")
                await sub.next()
                entries = await _pii_reads(3, actor_id=handler.id)
                assert [e.subject_id for e in entries] == [str(pk(first["id"]))] * 2 + [str(pk(second["id"]))]


async def test_masked_viewers_and_messages_without_pii_leave_no_entry(settings):
    async with live_server(settings) as (application, address):
        admin = await make_staff(Role.ADMIN)
        agent = await make_staff(Role.SERVICE_AGENT)
        handler = await make_staff(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
        async with api(address, await token_for(admin, settings)) as admin_api:
            customer = await admin_api.customer(403)
            async with (
                Subscription(address, await token_for(agent, settings), WITH_PII) as masked,
                Subscription(address, await token_for(handler, settings), WITHOUT_PII) as plain,
            ):
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for_all(), 2)
                await admin_api.file(customer["id"])
                assert "****" in (await masked.next())["data"]["complaintUpdated"]["customer"]["phone"]
                assert (await plain.next())["data"]["complaintUpdated"]["status"] == "RECEIVED"
                assert await _pii_reads(0, timeout=0.5, actor_id__in=[agent.id, handler.id]) == []
