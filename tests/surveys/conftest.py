"""Fixtures of the survey tests: an outbox that holds its messages until a test delivers them, and the clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services import clock, dispatch, notifications
from services.notifications import NotificationSettings


@pytest.fixture(autouse=True)
def _real_time() -> Iterator[None]:
    clock.reset()
    try:
        yield
    finally:
        clock.reset()


@pytest.fixture
def outbox(app) -> Iterator[list[tuple]]:
    """The messages services send to the workers, kept here instead: notifications stay QUEUED (with the link
    in their body) until the test delivers them with `deliver`."""
    messages: list[tuple] = []
    dispatch.bind(lambda name, *args: messages.append((name, *args)))
    yield messages
    dispatch.bind(app.runtime.queue.send)


@pytest.fixture
def deliver(tmp_path):
    """`await deliver(notification_id)`: one delivery attempt into a mail drop (SENT); `failing=True`: to an SMTP
    server that refuses the connection, with one attempt allowed (FAILED)."""

    async def attempt(notification_id: int, *, failing: bool = False) -> None:
        settings = NotificationSettings(mail_drop_dir=str(tmp_path / "outbox"))
        if failing:
            settings = NotificationSettings(smtp_url="smtp://127.0.0.1:1", notification_attempts=1)
        await notifications.deliver([notification_id], settings)

    return attempt
