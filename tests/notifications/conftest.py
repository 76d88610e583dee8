"""The app of these tests sends through real servers started here: an SMTP server and a signed SMS gateway, both
on 127.0.0.1. Retries wait a few milliseconds; the mail drop is a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from core.settings import Settings
from models.notifications import Notification
from services import clock, notifications
from services.notifications import NotificationSettings
from tests.conftest import with_overrides
from tests.jobs.helpers import drain
from tests.notifications.servers import SmsGateway, SmtpServer


@pytest.fixture(autouse=True)
def _real_time() -> Iterator[None]:
    clock.reset()
    try:
        yield
    finally:
        clock.reset()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    server = SmsGateway()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outbox_settings(smtp: SmtpServer, gateway: SmsGateway, tmp_path) -> NotificationSettings:
    return NotificationSettings(
        smtp_url=smtp.url,
        mail_from="service@bank.example",
        sms_gateway_url=gateway.url,
        sms_gateway_secret=gateway.secret,
        mail_drop_dir=str(tmp_path / "outbox"),
        notification_attempts=3,
        notification_backoff_ms=5,
    )


@pytest.fixture
def settings(settings: Settings, outbox_settings: NotificationSettings) -> Settings:
    return with_overrides(settings, sections={**settings.sections, NotificationSettings: outbox_settings})


@pytest.fixture
def outcomes() -> Iterator[list[tuple[int, str, int, str | None]]]:
    """(id, status, attempts, last_error) of every outcome the outbox reports, as another domain would hear it."""
    heard: list[tuple[int, str, int, str | None]] = []

    async def listen(recorded: list[Notification]) -> None:
        heard.extend((n.id, n.status.value, n.attempts, n.last_error) for n in recorded)

    remove = notifications.on_outcome(listen)
    yield heard
    remove()


@pytest.fixture
def settle(app):
    """`await settle()`: until the embedded queue has nothing left to do."""

    async def wait() -> None:
        await drain(app.runtime.queue)

    return wait
