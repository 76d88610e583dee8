"""The one source of the current time, so that tests can move time instead of sleeping.

Everything that needs "now" or "today" asks this module. Tests pin the clock with `freeze(at)` and move it
with `travel(by)`; `reset()` puts it back on the real time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return (datetime.now(UTC) if _frozen is None else _frozen) + _offset


def today(tz: tzinfo = UTC) -> date:
    """The date of now() in `tz`: UTC by default. The bank's own calendar day is
    `today(complaint_rules.BANK_TIME)` (Asia/Shanghai, 8 hours ahead of UTC)."""
    return now().astimezone(tz).date()


def parse(text: str) -> datetime:
    """An ISO-8601 date and time that carries its UTC offset ("Z" or "+08:00"), as UTC: every time that
    comes in (API input, stored parameters) goes through here, so services and the database (SQLite
    compares times as text) only ever see UTC. ValueError, in words meant for the client, otherwise."""
    if not isinstance(text, str):
        raise ValueError("expected an ISO-8601 date and time such as 2026-11-28T09:30:00+08:00")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset: add one, e.g. +08:00 or Z")
    return parsed.astimezone(UTC)


def travel(by: timedelta) -> None:
    """Tests only: move the clock forward (or back) by `by`, frozen or not."""
    global _offset
    _offset += by


def reset() -> None:
    """Tests only: back to the real time (no travel, not frozen)."""
    global _offset, _frozen
    _offset, _frozen = timedelta(0), None


@contextmanager
def freeze(at: datetime) -> Iterator[datetime]:
    """Tests only: now() is `at` (timezone-aware) until the block ends; travel() still moves it. On exit the
    clock is as it was before (frozen or not, with its travel). A plain context manager: `with` it in
    sync and async tests alike."""
    global _offset, _frozen
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("freeze() needs a timezone-aware datetime")
    saved = _frozen, _offset
    _frozen, _offset = at.astimezone(UTC), timedelta(0)
    try:
        yield _frozen
    finally:
        _frozen, _offset = saved
