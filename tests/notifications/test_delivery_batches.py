"""Delivery in batches: a message names up to DELIVERY_BATCH notifications, claimed together, sent over one SMTP
connection and recorded together; each row still has its own outcome, and none goes out twice."""

from __future__ import annotations

from core.db import atomic
from models.customers import Channel
from models.notifications import Notification, NotificationStatus
from services import dispatch, notifications
from tests.notifications.helpers import BODY, lost_message, new_customer

SENT, FAILED = NotificationStatus.SENT, NotificationStatus.FAILED


async def _queue_batch(customer, addresses: list[str]) -> list[Notification]:
    async with atomic():
        drafts = [
            notifications.draft(Channel.EMAIL, address, BODY, subject="账户通知", customer_id=customer.id)
            for address in addresses
        ]
        return list(await notifications.enqueue_many(drafts))


def _addresses(n: int) -> list[str]:
    return [f"customer{i}@example.com" for i in range(n)]


async def test_a_batch_goes_out_over_one_smtp_connection(app, smtp, settle, outcomes):
    customer = await new_customer()
    queued = await _queue_batch(customer, _addresses(5))
    await settle()

    assert sorted(email["To"] for email in smtp.messages) == sorted(_addresses(5))
    assert smtp.connections == 1
    rows = await Notification.filter(id__in=[n.id for n in queued])
    assert {(n.status, n.attempts, n.claimed_until) for n in rows} == {(SENT, 1, None)}
    assert sorted(heard[0] for heard in outcomes) == sorted(n.id for n in queued)


async def test_a_refused_recipient_fails_alone_and_the_rest_of_the_batch_goes_out(app, smtp, settle, outcomes):
    customer = await new_customer()
    smtp.replies = ["550 5.1.1 no such mailbox"]
    first, *others = await _queue_batch(customer, _addresses(3))
    await settle()

    refused = await Notification.get(id=first.id)
    assert refused.status == FAILED and refused.last_error.startswith("SMTP refused the recipient: 550")
    assert {n.status for n in await Notification.filter(id__in=[n.id for n in others])} == {SENT}
    assert len(smtp.messages) == 2 and smtp.connections == 1
    assert sorted(status for _, status, _, _ in outcomes) == ["FAILED", "SENT", "SENT"]


async def test_a_server_closing_the_connection_defers_the_rest_of_the_batch_and_each_goes_once(
    app, smtp, settle, outcomes
):
    customer = await new_customer()
    smtp.replies = ["421 4.3.2 service shutting down"]
    queued = await _queue_batch(customer, _addresses(4))
    await settle()

    assert sorted(email["To"] for email in smtp.messages) == sorted(_addresses(4))  # each exactly once
    rows = await Notification.filter(id__in=[n.id for n in queued])
    assert {(n.status, n.attempts) for n in rows} == {(SENT, 2)}  # the whole batch was tried a second time
    assert len(outcomes) == 4  # one outcome each, no FAILED on the way


async def test_an_unreachable_server_fails_the_batch_at_once_after_the_last_attempt(app, smtp, settle, outcomes):
    customer = await new_customer()
    await smtp.stop()
    queued = await _queue_batch(customer, _addresses(3))
    await settle()

    rows = await Notification.filter(id__in=[n.id for n in queued])
    assert {(n.status, n.attempts) for n in rows} == {(FAILED, 3)}
    assert all("unreachable" in n.last_error for n in rows)
    assert len(outcomes) == 3


async def test_workers_claiming_overlapping_batches_each_get_what_nobody_holds(app):
    customer = await new_customer()
    a, b, c = [await lost_message(customer) for _ in range(3)]

    first = await notifications.claim([a.id, b.id])
    second = await notifications.claim([a.id, b.id, c.id])

    assert [n.id for n in first] == [a.id, b.id]
    assert [n.id for n in second] == [c.id]
    assert await notifications.claim([a.id, b.id, c.id]) == []


async def test_a_large_cause_is_announced_a_batch_to_a_message(app):
    customer = await new_customer()
    told: list[tuple] = []
    dispatch.bind(lambda name, *args: told.append((name, *args)))
    try:
        queued = await _queue_batch(customer, _addresses(2 * notifications.DELIVERY_BATCH + 3))
    finally:
        dispatch.bind(app.runtime.queue.send)

    assert [name for name, _ in told] == [notifications.SEND_ACTOR] * 3
    assert [len(ids) for _, ids in told] == [notifications.DELIVERY_BATCH, notifications.DELIVERY_BATCH, 3]
    assert [i for _, ids in told for i in ids] == [n.id for n in queued]
    stored = await Notification.filter(id__in=[n.id for n in queued]).order_by("id").values_list("recipient", flat=True)
    assert stored == [n.recipient for n in queued]  # each id is its own row's
