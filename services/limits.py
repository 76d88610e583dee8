"""Rate limits shared by every API process: hits of a key counted per fixed window in the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from core.db import atomic
from models.limits import RateWindow
from services import clock
from services.errors import DomainError, ErrorCode


def _window_start(at: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=at.tzinfo)


async def hit(key: str, limit: int, window: timedelta) -> bool:
    """Count one hit of `key` in the current window; False once the window holds more than `limit` hits.
    Atomic across processes (a conditional increment, or the insert that opens the window)."""
    start = _window_start(clock.now(), window)
    key = key[:160]
    for _ in range(2):
        try:
            # The increment locks the row until commit, so the count read after it is this hit's own.
            async with atomic():
                if not await RateWindow.filter(key=key, window_start=start).update(hits=F("hits") + 1):
                    await RateWindow.create(key=key, window_start=start, hits=1)
                hits = await RateWindow.filter(key=key, window_start=start).values_list("hits", flat=True)
            return hits[0] <= limit
        except IntegrityError:  # another process opened the window first: count again
            continue
    raise RuntimeError(f"could not count a hit of {key}")


async def check(key: str, limit: int, window: timedelta, what: str) -> None:
    """`hit`, raising LIMIT_EXCEEDED with a message that says when to try again."""
    if not await hit(key, limit, window):
        minutes = max(1, int(window.total_seconds() // 60))
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"Too many {what}; try again in {minutes} minute(s)")


async def purge(older_than: timedelta = timedelta(days=1)) -> int:
    """Windows long past are deleted (the scheduler calls this)."""
    return await RateWindow.filter(window_start__lt=clock.now() - older_than).delete()
