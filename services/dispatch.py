"""How services send work to the workers without knowing the queue: `send_after_commit("actor", *ids)`.

The process's task queue binds itself here when it starts (tasks/broker.TaskQueue). A message is only
ever a nudge: the database row it names is the truth (an outbox row, a job), so a message lost with a
crash, or never sent because no queue is bound (the command line), is made up for by the sweeps that
each domain schedules. So is a message the broker refused because it is out of reach (Redis down or hung): the
mutation that committed the row answers as usual, one WARNING line says what was left to the sweep."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.db import on_commit
from core.pubsub import broker_unreachable

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
    on_commit(lambda: _send_or_leave(send, actor_name, args))


def _send_or_leave(send: Send, actor_name: str, args: tuple) -> None:
    try:
        send(actor_name, *args)
    except Exception as error:
        if not broker_unreachable(error):
            raise  # core.db logs it with its traceback: a bug, not an outage
        log.warning(
            "broker unreachable (%s): %s%r is left to its sweep", type(error).__name__, actor_name, _brief(args)
        )


def _brief(args: tuple) -> tuple:
    """The message's ids, a long list shortened (an outbox batch names up to 100)."""
    return tuple(f"[{len(a)} ids]" if isinstance(a, list) and len(a) > 5 else a for a in args)
