"""The one source of the current time, so that tests can move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def travel(by: timedelta) -> None:
    """Tests only: move the clock forward (or back) by `by`."""
    global _offset
    _offset += by


def reset() -> None:
    global _offset
    _offset = timedelta(0)
