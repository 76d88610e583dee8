"""services/limits: fixed windows counted in the database, shared by every process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from models.limits import RateWindow
from services import clock, limits
from services.errors import DomainError, ErrorCode

WINDOW = timedelta(minutes=10)
AT = datetime(2026, 12, 1, 9, 3, tzinfo=UTC)


async def test_hits_within_the_limit_pass_and_the_next_is_refused(app):
    with clock.freeze(AT):
        assert [await limits.hit("k", 3, WINDOW) for _ in range(4)] == [True, True, True, False]


async def test_a_new_window_starts_from_zero(app):
    with clock.freeze(AT):
        for _ in range(3):
            await limits.hit("k", 3, WINDOW)
        assert not await limits.hit("k", 3, WINDOW)
        clock.travel(WINDOW)
        assert await limits.hit("k", 3, WINDOW)


async def test_keys_are_counted_apart(app):
    with clock.freeze(AT):
        assert await limits.hit("a", 1, WINDOW)
        assert await limits.hit("b", 1, WINDOW)
        assert not await limits.hit("a", 1, WINDOW)


async def test_concurrent_hits_are_all_counted(app):
    with clock.freeze(AT):
        results = await asyncio.gather(*[limits.hit("burst", 5, WINDOW) for _ in range(12)])
    assert sorted(results) == [False] * 7 + [True] * 5
    assert await RateWindow.filter(key="burst").values_list("hits", flat=True) == [12]


async def test_check_says_when_to_try_again(app):
    with clock.freeze(AT):
        await limits.check("c", 1, WINDOW, "survey submissions")
        with pytest.raises(DomainError) as error:
            await limits.check("c", 1, WINDOW, "survey submissions")
    assert error.value.errors[0].code == ErrorCode.LIMIT_EXCEEDED
    assert "try again in 10 minute(s)" in error.value.errors[0].message


async def test_old_windows_are_purged(app):
    with clock.freeze(AT):
        await limits.hit("old", 1, WINDOW)
        clock.travel(timedelta(days=2))
        await limits.hit("new", 1, WINDOW)
        assert await limits.purge() == 1
    assert await RateWindow.all().values_list("key", flat=True) == ["new"]
