"""The outbox's settings, its channel adapters on their own (what is transient, what is permanent), and erasure."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from core.settings import Settings, SettingsError
from models.customers import Channel
from models.notifications import Notification, NotificationStatus
from services import customer_erasure, notifications
from services.access import COMMAND_LINE
from services.errors import DomainError, ErrorCode
from services.notification_channels import Message, SendFailed, SmsGateway, SmtpSender, parse_smtp_url
from services.notifications import NotificationSettings
from tests.notifications.helpers import BODY, EMAIL, PHONE, lost_message, new_customer, queue_message

# ---------------------------------------------------------------- settings


def test_the_settings_are_read_from_the_environment_and_keep_secrets_out_of_repr():
    settings = Settings.from_env(
        {
            "CRM_SMTP_URL": "smtps://crm:p%40ss-word@mail.bank.internal:465",
            "CRM_MAIL_FROM": "service@bank.example",
            "CRM_SMS_GATEWAY_URL": "https://sms.bank.internal/messages",
            "CRM_SMS_GATEWAY_SECRET": "s3cret-s3cret-s3cret",
            "CRM_NOTIFICATION_ATTEMPTS": "7",
            "CRM_NOTIFICATION_BACKOFF_MS": "250",
        }
    ).of(NotificationSettings)
    assert (settings.notification_attempts, settings.notification_backoff_ms) == (7, 250)
    assert "p%40ss-word" not in repr(settings) and "s3cret" not in repr(settings)
    server = parse_smtp_url(settings.smtp_url)
    assert (server.host, server.port, server.implicit_tls, server.starttls) == ("mail.bank.internal", 465, True, False)
    assert (server.username, server.password) == ("crm", "p@ss-word")
    assert Settings.from_env({}).of(NotificationSettings) == NotificationSettings()


def test_smtp_urls_default_their_port_and_may_ask_for_starttls():
    plain = parse_smtp_url("smtp://relay.bank.internal")
    assert (plain.port, plain.username, plain.implicit_tls, plain.starttls) == (25, None, False, False)
    assert parse_smtp_url("smtp://relay:587?starttls=true").starttls


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CRM_SMTP_URL": "http://mail.bank.internal"}, "CRM_SMTP_URL must be smtp://"),
        ({"CRM_SMTP_URL": "smtp://crm@mail:25"}, "CRM_SMTP_URL needs both a user and a password"),
        ({"CRM_SMTP_URL": "smtps://mail:465?starttls=true"}, "starttls=true applies to smtp:// only"),
        ({"CRM_SMTP_URL": "smtp://mail:25?tls=yes"}, "unknown options: tls"),
        ({"CRM_MAIL_FROM": "no-reply"}, "CRM_MAIL_FROM must be an e-mail address"),
        ({"CRM_SMS_GATEWAY_URL": "https://sms.bank.internal"}, "must be set together"),
        ({"CRM_SMS_GATEWAY_SECRET": "s3cret-s3cret-s3cret"}, "must be set together"),
        ({"CRM_SMS_GATEWAY_URL": "ftp://sms", "CRM_SMS_GATEWAY_SECRET": "s3cret-s3cret-s3cret"}, "http:// or https://"),
        ({"CRM_SMS_GATEWAY_URL": "https://sms", "CRM_SMS_GATEWAY_SECRET": "short"}, "at least 16 characters"),
        ({"CRM_MAIL_DROP_DIR": " "}, "CRM_MAIL_DROP_DIR must name a folder"),
        ({"CRM_NOTIFICATION_ATTEMPTS": "0"}, "CRM_NOTIFICATION_ATTEMPTS must be between 1 and 20"),
        ({"CRM_NOTIFICATION_BACKOFF_MS": "0"}, "CRM_NOTIFICATION_BACKOFF_MS must be between 1 and 3600000"),
    ],
)
def test_malformed_settings_stop_start_up_with_one_line(environment, message):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environment)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_the_backoff_doubles_after_each_attempt_up_to_an_hour():
    settings = NotificationSettings(notification_backoff_ms=10_000)
    assert [settings.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert settings.backoff(20) == timedelta(hours=1)


# ---------------------------------------------------------------- the adapters on their own


def message(channel: Channel = Channel.EMAIL) -> Message:
    recipient = EMAIL if channel == Channel.EMAIL else PHONE
    return Message(1, channel, recipient, "masked", "subject", BODY)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


async def test_an_smtp_server_that_refuses_connections_is_a_transient_failure():
    with pytest.raises(SendFailed) as failed:
        await SmtpSender(f"smtp://127.0.0.1:{closed_port()}", "service@bank.example").send(message())
    assert failed.value.transient and "unreachable" in failed.value.reason


@pytest.mark.parametrize(("reply", "transient"), [("452 4.2.2 Mailbox full", True), ("553 5.1.3 Bad address", False)])
async def test_smtp_4xx_replies_are_transient_and_5xx_permanent(smtp, reply, transient):
    smtp.replies = [reply]
    with pytest.raises(SendFailed) as failed:
        await SmtpSender(smtp.url, "service@bank.example").send(message())
    assert failed.value.transient is transient and reply in failed.value.reason


async def test_a_gateway_that_cannot_be_reached_is_a_transient_failure():
    with pytest.raises(SendFailed) as failed:
        await SmsGateway(f"http://127.0.0.1:{closed_port()}/messages", "gateway-secret-for-the-tests").send(
            message(Channel.SMS)
        )
    assert failed.value.transient and "unreachable" in failed.value.reason


async def test_the_gateway_refuses_a_request_signed_with_another_secret_for_good(gateway):
    with pytest.raises(SendFailed) as failed:
        await SmsGateway(gateway.url, "not-the-gateways-secret").send(message(Channel.SMS))
    assert not failed.value.transient and "HTTP 401" in failed.value.reason
    assert gateway.bad_signatures == 1 and gateway.accepted == []


@pytest.mark.parametrize(("status", "transient"), [(500, True), (502, True), (429, True), (403, False), (422, False)])
async def test_gateway_5xx_and_429_are_transient_other_4xx_permanent(gateway, status, transient):
    gateway.statuses = [status]
    with pytest.raises(SendFailed) as failed:
        await SmsGateway(gateway.url, gateway.secret).send(message(Channel.SMS))
    assert failed.value.transient is transient and f"HTTP {status}" in failed.value.reason


# ---------------------------------------------------------------- enqueueing and erasure


async def test_a_notification_needs_a_recipient_and_a_body(app):
    customer = await new_customer()
    for recipient, body, field in ((" ", BODY, "recipient"), (EMAIL, "  ", "body")):
        with pytest.raises(DomainError) as refused:
            await notifications.enqueue(Channel.EMAIL, recipient, body, customer_id=customer.id)
        assert (refused.value.code, refused.value.field) == (ErrorCode.REQUIRED, [field])
    assert await Notification.all().count() == 0


async def test_erasure_redacts_the_outbox_and_sends_nothing_more_to_the_person(app, smtp, settle, outcomes):
    customer = await new_customer()
    sent = await queue_message(customer, body="张伟您好，您的投诉已受理。")
    await settle()
    waiting = await lost_message(customer)  # still in the outbox when the erasure comes

    await customer_erasure.erase(COMMAND_LINE, customer.id, "PIPL art. 47 request, ticket 2024-201")

    for row in await Notification.filter(customer_id=customer.id):
        assert (row.recipient, row.body) == ("***", "***")
    stopped = await Notification.get(id=waiting.id)
    assert (stopped.status, stopped.last_error) == (NotificationStatus.FAILED, "not sent: the customer was erased")
    assert (await Notification.get(id=sent.id)).status == NotificationStatus.SENT
    assert [(n, status) for n, status, _, _ in outcomes] == [(sent.id, "SENT"), (waiting.id, "FAILED")]
    with pytest.raises(DomainError) as refused:
        await notifications.retry(COMMAND_LINE, waiting.id)
    assert refused.value.code == ErrorCode.INVALID and "erased" in refused.value.message
    await settle()
    assert len(smtp.messages) == 1
