"""services.clock: the one source of "now"; freeze() pins it, travel() moves it, reset() puts it back."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services import clock
from services.complaint_rules import BANK_TIME

AT = datetime(2026, 3, 1, 15, 58, 0, 123456, tzinfo=UTC)  # 23:58 in Shanghai


@pytest.fixture(autouse=True)
def _real_time():
    clock.reset()
    try:
        yield
    finally:
        clock.reset()


def test_now_is_the_real_time_in_utc():
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_freeze_pins_now_and_restores_the_real_time():
    with clock.freeze(AT) as frozen:
        assert frozen == AT
        assert clock.now() == AT
        assert clock.now() == AT  # it does not move by itself
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_freeze_takes_any_offset_and_gives_utc():
    with clock.freeze(AT.astimezone(ZoneInfo("Asia/Shanghai"))):
        assert clock.now() == AT and clock.now().tzinfo == UTC


def test_freeze_refuses_a_naive_datetime():
    with pytest.raises(ValueError), clock.freeze(datetime(2026, 3, 1, 12, 0)):
        pass
    assert clock.now().year >= 2026  # nothing was left frozen


def test_travel_moves_a_frozen_clock_and_freeze_starts_without_travel():
    clock.travel(timedelta(days=400))
    with clock.freeze(AT):
        assert clock.now() == AT  # the travel before the freeze does not count inside it
        clock.travel(timedelta(minutes=3))
        assert clock.now() == AT + timedelta(minutes=3)
        clock.travel(-timedelta(hours=1))
        assert clock.now() == AT + timedelta(minutes=3) - timedelta(hours=1)
    # Back to the state before: real time plus the 400 days.
    assert abs(clock.now() - (datetime.now(UTC) + timedelta(days=400))) < timedelta(seconds=5)


def test_travel_moves_the_real_clock_and_reset_undoes_it():
    clock.travel(timedelta(days=2))
    assert abs(clock.now() - (datetime.now(UTC) + timedelta(days=2))) < timedelta(seconds=5)
    clock.reset()
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_freezes_nest_and_each_restores_the_one_outside():
    later = AT + timedelta(days=1)
    with clock.freeze(AT):
        clock.travel(timedelta(seconds=10))
        with clock.freeze(later):
            assert clock.now() == later
        assert clock.now() == AT + timedelta(seconds=10)


def test_freeze_restores_the_clock_when_the_block_raises():
    with pytest.raises(RuntimeError), clock.freeze(AT):
        raise RuntimeError("boom")
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


async def test_freeze_works_across_awaits_in_async_tests():
    with clock.freeze(AT):
        await asyncio.sleep(0.01)
        assert clock.now() == AT
        assert await asyncio.to_thread(clock.now) == AT  # the worker threads see it too


def test_today_is_the_utc_date_unless_a_zone_is_asked_for():
    with clock.freeze(AT):
        assert clock.today() == date(2026, 3, 1)
        assert clock.today(BANK_TIME) == date(2026, 3, 1)
        clock.travel(timedelta(minutes=3))  # 00:01 in Shanghai: the bank's next day, still 1 March in UTC
        assert clock.today() == date(2026, 3, 1)
        assert clock.today(BANK_TIME) == date(2026, 3, 2)
        assert clock.today(timezone(timedelta(hours=-5))) == date(2026, 3, 1)
        clock.travel(timedelta(hours=8))
        assert clock.today() == date(2026, 3, 2)
