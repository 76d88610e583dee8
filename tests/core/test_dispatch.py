"""services/dispatch: services name an actor; the message leaves only once the transaction commits."""

from __future__ import annotations

import pytest

from core.db import atomic
from services import dispatch


@pytest.fixture
def sent():
    messages: list[tuple] = []
    dispatch.bind(lambda name, *args: messages.append((name, *args)))
    yield messages
    dispatch.bind(None)


async def test_a_message_leaves_after_the_commit(app, sent):
    async with atomic():
        dispatch.send_after_commit("send_notifications", 7)
        assert sent == []
    assert sent == [("send_notifications", 7)]


async def test_a_rolled_back_transaction_sends_nothing(app, sent):
    with pytest.raises(RuntimeError):
        async with atomic():
            dispatch.send_after_commit("send_notifications", 7)
            raise RuntimeError("the cause failed")
    assert sent == []


async def test_outside_a_transaction_it_leaves_at_once(app, sent):
    dispatch.send_after_commit("run_job", 1)
    assert sent == [("run_job", 1)]


async def test_without_a_queue_nothing_is_sent_and_nothing_fails(caplog):
    dispatch.bind(None)
    with caplog.at_level("INFO"):
        dispatch.send_after_commit("send_notifications", 9)
    assert "left to its sweep" in caplog.text


async def test_the_app_binds_its_queue(app):
    assert dispatch._send is not None and dispatch._send == app.runtime.queue.send
