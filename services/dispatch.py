"""How services send work to the workers without knowing the queue: `send_after_commit("actor", *ids)`.

The process's task queue binds itself here when it starts (tasks/broker.TaskQueue). A message is only
ever a nudge: the database row it names is the truth (an outbox row, a job), so a message lost with a
crash, or never sent because no queue is bound (the command line), is made up for by the sweeps that
each domain schedules."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.db import on_commit

log = logging.getLogger(__name__)

Send = Callable[..., None]
_send: Send | None = None


def bind(send: Send | None) -> None:
    """The process's queue (`TaskQueue.send`), or None when it closes."""
    global _send
    _send = send


def send_after_commit(actor_name: str, *args: object) -> None:
    """Send `actor_name(*args)` once the surrounding transaction commits (at once outside one)."""
    send = _send
    if send is None:
        log.info("no task queue in this process: %s%r is left to its sweep", actor_name, args)
        return
    on_commit(lambda: send(actor_name, *args))
