"""Development: with no SMTP server or SMS gateway configured, each message is a file in the mail drop, and the
log says where it is without ever holding its body (a body may carry a survey link's token)."""

from __future__ import annotations

import logging
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from models.customers import Channel
from models.notifications import Notification, NotificationStatus
from services.notifications import NotificationSettings
from tests.notifications.helpers import EMAIL, PHONE, new_customer, queue_message, without_servers

SECRET_LINK = "https://bank.example/s/Zq3xT0kenNeverInLogs"


@pytest.fixture
def outbox_settings(outbox_settings: NotificationSettings) -> NotificationSettings:
    return without_servers(outbox_settings)


@pytest.fixture
def drop(outbox_settings: NotificationSettings) -> Path:
    return Path(outbox_settings.mail_drop_dir)


async def test_an_email_is_dropped_as_a_file_and_only_its_whereabouts_are_logged(app, smtp, drop, settle, caplog):
    customer = await new_customer()
    with caplog.at_level(logging.INFO):
        queued = await queue_message(customer, subject="满意度调查", body=f"请点击 {SECRET_LINK} 完成调查")
        await settle()

    dropped = drop / f"notification-{queued.id}.eml"
    email = message_from_bytes(dropped.read_bytes(), policy=policy.default)
    assert (email["To"], email["Subject"]) == (EMAIL, "满意度调查")
    assert SECRET_LINK in email.get_content()
    assert [p.name for p in drop.iterdir()] == [dropped.name]  # nothing half-written is left behind
    assert smtp.messages == []  # the configured-looking server of these tests is not used
    assert (await Notification.get(id=queued.id)).status == NotificationStatus.SENT

    [line] = [r.getMessage() for r in caplog.records if dropped.name in r.getMessage()]
    assert str(queued.id) in line and "EMAIL" in line and "z***@example.com" in line
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET_LINK not in logged and "Zq3xT0ken" not in logged and EMAIL not in logged


async def test_an_sms_is_dropped_as_a_text_file(app, gateway, drop, settle, caplog):
    customer = await new_customer()
    with caplog.at_level(logging.INFO):
        queued = await queue_message(customer, Channel.SMS, body=f"验证链接 {SECRET_LINK}")
        await settle()

    text = (drop / f"notification-{queued.id}.txt").read_text()
    assert f"To: {PHONE}" in text and SECRET_LINK in text
    assert gateway.accepted == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "138****5678" in logged and PHONE not in logged and SECRET_LINK not in logged
