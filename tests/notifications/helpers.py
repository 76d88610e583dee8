"""Shared pieces of the outbox tests."""

from __future__ import annotations

from dataclasses import replace

from core.db import atomic
from models.customers import Channel, Customer, CustomerKind
from models.notifications import Notification
from services import clock, customers as customer_service, notifications
from services.access import COMMAND_LINE
from services.notifications import NotificationSettings

BRANCH, OTHER_BRANCH = "北京朝阳支行", "上海浦东支行"
EMAIL, PHONE, ADDRESS = "zhang.wei@example.com", "13812345678", "北京市朝阳区建国路88号"
BODY = "尊敬的客户，您好：您的账户信息已更新。"


async def new_customer(branch: str = BRANCH, **fields) -> Customer:
    data = {
        "kind": CustomerKind.INDIVIDUAL,
        "name": "张伟",
        "branch": branch,
        "phone": PHONE,
        "email": EMAIL,
        "address": ADDRESS,
    }
    return await customer_service.create(COMMAND_LINE, {**data, **fields})


async def queue_message(customer: Customer, channel: Channel = Channel.EMAIL, **fields) -> Notification:
    """A notification enqueued in a transaction, as a cause writes it; its message goes out on commit."""
    recipient = {Channel.EMAIL: customer.email, Channel.SMS: customer.phone}.get(channel, customer.address)
    values = {"subject": "您的账户通知", "body": BODY, **fields}
    async with atomic():
        return await notifications.enqueue(channel, recipient, customer_id=customer.id, **values)


async def lost_message(customer: Customer, channel: Channel = Channel.EMAIL) -> Notification:
    """An outbox row whose message never reached the queue (the process died after the commit)."""
    recipient = customer.email if channel == Channel.EMAIL else customer.phone
    return await Notification.create(
        customer=customer, channel=channel, recipient=recipient, body=BODY, created_at=clock.now()
    )


def without_servers(outbox: NotificationSettings) -> NotificationSettings:
    return replace(outbox, smtp_url=None, sms_gateway_url=None, sms_gateway_secret=None)
