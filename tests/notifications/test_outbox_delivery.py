"""Delivery through the embedded queue to real servers: EMAIL over SMTP, SMS through the signed gateway, retries
with backoff, permanent failures, and never a message sent twice (claims, re-delivered messages, the sweep)."""

from __future__ import annotations

from datetime import timedelta

from core.db import atomic
from models.customers import Channel
from models.notifications import Notification, NotificationStatus
from services import clock, notifications
from tests.notifications.helpers import BODY, EMAIL, PHONE, lost_message, new_customer, queue_message

SENT, FAILED, QUEUED = NotificationStatus.SENT, NotificationStatus.FAILED, NotificationStatus.QUEUED


async def test_an_email_goes_out_over_smtp_once_the_cause_commits(app, smtp, settle, outcomes):
    customer = await new_customer()
    queued = await queue_message(customer, subject="账户变动提醒")
    await settle()

    [email] = smtp.messages
    assert (email["To"], email["From"], email["Subject"]) == (EMAIL, "service@bank.example", "账户变动提醒")
    assert email.get_content().strip() == BODY
    assert email["Message-ID"] == f"<notification-{queued.id}@bank.example>"
    sent = await Notification.get(id=queued.id)
    assert (sent.status, sent.attempts, sent.last_error, sent.claimed_until) == (SENT, 1, None, None)
    assert sent.sent_at is not None and sent.sent_at >= sent.created_at
    assert outcomes == [(queued.id, "SENT", 1, None)]


async def test_a_notification_whose_cause_rolls_back_is_neither_kept_nor_sent(app, smtp, settle):
    customer = await new_customer()

    class CauseFailed(Exception):
        pass

    try:
        async with atomic():
            await notifications.enqueue(Channel.EMAIL, EMAIL, BODY, customer_id=customer.id)
            raise CauseFailed
    except CauseFailed:
        pass
    await settle()
    assert await Notification.all().count() == 0 and smtp.messages == []


async def test_an_sms_goes_through_the_gateway_signed(app, gateway, settle, outcomes):
    customer = await new_customer()
    queued = await queue_message(customer, Channel.SMS)
    await settle()

    assert gateway.bad_signatures == 0
    assert gateway.accepted == [{"to": PHONE, "text": BODY, "reference": f"notification-{queued.id}"}]
    sent = await Notification.get(id=queued.id)
    assert (sent.status, sent.attempts) == (SENT, 1) and sent.sent_at is not None
    assert outcomes == [(queued.id, "SENT", 1, None)]


async def test_a_transient_smtp_failure_is_retried_and_sends_exactly_one_email(app, smtp, settle, outcomes):
    smtp.replies = ["451 4.3.0 Mailbox busy, try again later"]
    customer = await new_customer()
    queued = await queue_message(customer)
    await settle()

    assert len(smtp.messages) == 1
    sent = await Notification.get(id=queued.id)
    assert (sent.status, sent.attempts) == (SENT, 2)
    assert "451" in sent.last_error  # what the failed attempt met
    assert [(status, attempts) for _, status, attempts, _ in outcomes] == [("SENT", 2)]


async def test_a_gateway_that_is_down_for_a_moment_gets_the_sms_once(app, gateway, settle):
    gateway.statuses = [503, 429]
    customer = await new_customer()
    queued = await queue_message(customer, Channel.SMS)
    await settle()

    assert len(gateway.accepted) == 1
    sent = await Notification.get(id=queued.id)
    assert (sent.status, sent.attempts) == (SENT, 3) and "HTTP 429" in sent.last_error


async def test_a_permanent_smtp_failure_is_failed_at_once_with_its_error(app, smtp, settle, outcomes):
    smtp.replies = [f"550 5.1.1 <{EMAIL}>: Recipient address rejected: User unknown"]
    customer = await new_customer()
    queued = await queue_message(customer)
    await settle()

    assert smtp.messages == []
    failed = await Notification.get(id=queued.id)
    assert (failed.status, failed.attempts, failed.sent_at, failed.claimed_until) == (FAILED, 1, None, None)
    assert "550 5.1.1" in failed.last_error and "User unknown" in failed.last_error
    # The server quoted the address; the error keeps it masked, as the API shows it.
    assert EMAIL not in failed.last_error and "z***@example.com" in failed.last_error
    assert outcomes == [(queued.id, "FAILED", 1, failed.last_error)]


async def test_a_rejected_sms_is_failed_at_once(app, gateway, settle, outcomes):
    gateway.statuses = [400]
    customer = await new_customer()
    queued = await queue_message(customer, Channel.SMS)
    await settle()

    failed = await Notification.get(id=queued.id)
    assert (failed.status, failed.attempts) == (FAILED, 1) and "HTTP 400" in failed.last_error
    assert gateway.accepted == [] and [status for _, status, _, _ in outcomes] == ["FAILED"]


async def test_transient_failures_fail_the_notification_after_the_last_attempt(app, smtp, settle, outcomes):
    smtp.replies = ["421 4.4.5 Too busy"] * 3  # the tests allow 3 attempts
    customer = await new_customer()
    queued = await queue_message(customer)
    await settle()

    failed = await Notification.get(id=queued.id)
    assert (failed.status, failed.attempts) == (FAILED, 3) and "421" in failed.last_error
    assert smtp.messages == [] and smtp.replies == []
    assert outcomes == [(queued.id, "FAILED", 3, failed.last_error)]


async def test_a_channel_without_a_sender_is_failed_with_what_to_do(app, smtp, settle, outcomes):
    customer = await new_customer()
    queued = await queue_message(customer, Channel.LETTER)
    await settle()

    failed = await Notification.get(id=queued.id)
    assert failed.status == FAILED and failed.last_error == "no sender for LETTER: print and post it by hand"
    assert smtp.messages == [] and [status for _, status, _, _ in outcomes] == ["FAILED"]


async def test_a_sent_notification_delivered_again_is_not_sent_again(app, smtp, settle, outcomes):
    customer = await new_customer()
    queued = await queue_message(customer)
    await settle()
    app.runtime.queue.send(notifications.SEND_ACTOR, [queued.id])  # the broker delivers the message again
    await settle()

    assert len(smtp.messages) == 1
    assert (await Notification.get(id=queued.id)).attempts == 1
    assert len(outcomes) == 1


async def test_two_workers_with_the_same_message_send_one_email(app, smtp, settle):
    customer = await new_customer()
    row = await lost_message(customer)
    for _ in range(3):
        app.runtime.queue.send(notifications.SEND_ACTOR, [row.id])
    await settle()

    assert len(smtp.messages) == 1
    assert (await Notification.get(id=row.id)).attempts == 1  # only one of them claimed it


async def test_a_worker_killed_between_claiming_and_sending_loses_nothing(app, smtp, settle, outcomes):
    customer = await new_customer()
    row = await lost_message(customer)
    assert await notifications.claim([row.id])  # a worker claims it, then dies before sending

    app.runtime.queue.send("requeue_lost_notifications")
    await settle()
    assert smtp.messages == []  # its claim still holds: it may yet be sending

    clock.travel(notifications.CLAIM_LEASE + timedelta(seconds=1))
    app.runtime.queue.send("requeue_lost_notifications")
    await settle()
    assert len(smtp.messages) == 1
    sent = await Notification.get(id=row.id)
    assert (sent.status, sent.attempts) == (SENT, 2)

    clock.travel(notifications.CLAIM_LEASE + timedelta(seconds=1))  # later sweeps find nothing to send
    app.runtime.queue.send("requeue_lost_notifications")
    await settle()
    assert len(smtp.messages) == 1 and len(outcomes) == 1


async def test_the_sweep_sends_what_lost_its_message_and_leaves_fresh_rows_to_theirs(app, smtp, gateway, settle):
    customer = await new_customer()
    stale_email, stale_sms = await lost_message(customer), await lost_message(customer, Channel.SMS)
    clock.travel(notifications.LOST_AFTER + timedelta(seconds=1))
    fresh = await lost_message(customer)

    assert await notifications.lost() == [stale_email.id, stale_sms.id]
    app.runtime.queue.send("requeue_lost_notifications")
    await settle()

    assert len(smtp.messages) == 1 and len(gateway.accepted) == 1
    assert (await Notification.get(id=fresh.id)).status == QUEUED
    assert {n.status for n in await Notification.filter(id__in=[stale_email.id, stale_sms.id])} == {SENT}


async def test_a_worker_lost_on_the_last_attempt_ends_failed_not_queued_forever(app, smtp, settle, outcomes):
    customer = await new_customer()
    row = await lost_message(customer)
    for _ in range(3):  # every attempt the tests allow, each claimed by a worker that died
        assert await notifications.claim([row.id])
        clock.travel(notifications.CLAIM_LEASE + timedelta(seconds=1))
    app.runtime.queue.send("requeue_lost_notifications")
    await settle()

    failed = await Notification.get(id=row.id)
    assert (failed.status, failed.attempts) == (FAILED, 3) and "gave up after 3 attempts" in failed.last_error
    assert smtp.messages == [] and [status for _, status, _, _ in outcomes] == ["FAILED"]
    assert await notifications.lost() == []


async def test_a_failing_outcome_listener_never_makes_the_email_go_twice(app, smtp, settle, outcomes):
    async def broken(recorded: list[Notification]) -> None:
        await Notification.filter(id__in=[n.id for n in recorded]).update(subject="written by the broken listener")
        raise RuntimeError("listener bug")

    remove = notifications.on_outcome(broken)
    try:
        customer = await new_customer()
        queued = await queue_message(customer, subject="原标题")
        await settle()
    finally:
        remove()

    sent = await Notification.get(id=queued.id)
    assert (sent.status, sent.subject) == (SENT, "原标题")  # the listener's write was undone, the outcome kept
    assert len(smtp.messages) == 1 and outcomes == [(queued.id, "SENT", 1, None)]
    clock.travel(notifications.CLAIM_LEASE + timedelta(seconds=1))
    assert await notifications.lost() == []
