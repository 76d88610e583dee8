"""complaintStats buckets where the PostgreSQL statement could go wrong (bank-day bins joined from a list of the
period's bins, a first grouping by key and status folded into the key's figures): bucket edges in bank time over
long periods, periods that start and end off a bank midnight, buckets holding a single status or none that is
known, and the caller's scope combined with every group-by. Every figure is compared with the one computed in
plain Python from the seeded rows (tests/complaints/test_stats.py), on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from tortoise import Tortoise

from models.complaints import Complaint
from models.staff import Role
from services import access, clock, complaint_stats
from services.access import COMMAND_LINE
from tests.complaints.test_stats import (
    BANK,
    BRANCHES,
    END,
    START,
    UTC,
    S,
    _caller,
    _insert,
    _row,
    assert_matches,
    expected_buckets,
    seed,
)
from tests.conftest import QueryCounter

PERIODS = ["DAY", "WEEK", "MONTH"]


def _edges(first: datetime, last: datetime) -> list[datetime]:
    """Instants on both sides of every bank midnight, Monday and first of the month in [first, last], in UTC."""
    out = []
    day = first.astimezone(BANK).replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= last:
        if day.weekday() == 0 or day.day == 1 or random.Random(day.toordinal()).random() < 0.05:
            for delta in (timedelta(0), timedelta(microseconds=-1), timedelta(seconds=-1), timedelta(hours=-8)):
                out.append((day + delta).astimezone(UTC))
        day += timedelta(days=1)
    return out


@pytest.mark.parametrize("group_by", PERIODS)
async def test_period_buckets_over_two_years_with_edges_off_a_bank_midnight(app, group_by):
    """Two years and a bit (ISO week 53 of 2026, a leap day), complaints on both sides of bank midnights, Mondays
    and months; the period starts and ends mid-day, so its first and last buckets are partial."""
    rng = random.Random(11)
    now = clock.now()
    first, last = datetime(2024, 12, 20, tzinfo=UTC), datetime(2027, 1, 12, tzinfo=UTC)
    span = int((last - first).total_seconds())
    instants = [first + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6)) for _ in range(150)]
    instants += _edges(first, last)
    start = datetime(2024, 12, 29, 17, 30, 0, 500000, tzinfo=UTC)  # Monday 30 December 01:30:00.5, bank time
    end = datetime(2027, 1, 3, 15, 59, 59, tzinfo=UTC)  # Sunday 3 January 2027 23:59:59, bank time
    rows = [_row(rng, when, now) for when in instants]
    await _insert(rows)
    expected = expected_buckets(rows, group_by, start, end)
    assert len(expected) > {"DAY": 150, "WEEK": 100, "MONTH": 24}[group_by]
    with QueryCounter() as counter:
        buckets = await complaint_stats.stats(COMMAND_LINE, start, end, group_by)
    assert counter.count == 1
    assert_matches(buckets, expected)
    assert sum(b.count for b in buckets) == sum(start <= r.received_at < end for r in rows)
    if group_by == "WEEK":
        assert {"2025-W01", "2026-W53"} <= {b.key for b in buckets}


@pytest.mark.parametrize("group_by", PERIODS)
async def test_a_period_of_one_bank_day_edge(app, group_by):
    """A period of two seconds around a bank midnight that is also a Monday and the first of a month: two buckets,
    nothing from either side."""
    midnight = datetime(2025, 9, 1, tzinfo=BANK)  # Monday 1 September 2025
    rng = random.Random(3)
    now = clock.now()
    instants = [midnight + timedelta(seconds=s) for s in (-2, -1, 0, 1)] + [midnight - timedelta(microseconds=1)]
    rows = [_row(rng, when, now) for when in instants]
    await _insert(rows)
    start, end = midnight - timedelta(seconds=1), midnight + timedelta(seconds=1)
    buckets = await complaint_stats.stats(COMMAND_LINE, start, end, group_by)
    assert_matches(buckets, expected_buckets(rows, group_by, start, end))
    assert [b.count for b in buckets] == [2, 1]  # 23:59:59 and 23:59:59.999999; 00:00:00


@pytest.mark.parametrize("group_by", list(complaint_stats.GROUPINGS))
async def test_empty_and_sparse_buckets(app, group_by):
    """Only the buckets that hold complaints appear (no zero buckets for the days, weeks or months in between),
    and a bucket of a single status has the figures of that status alone (the other sums are empty, not 0)."""
    now = clock.now()
    rng = random.Random(5)
    rows = [
        _row(rng, datetime(2025, 3, 2, 10, tzinfo=BANK), now, status=S.WITHDRAWN, resolved_at=None),
        _row(rng, datetime(2025, 3, 20, 10, tzinfo=BANK), now, status=S.RECEIVED, resolved_at=None),
        _row(rng, datetime(2025, 4, 28, 10, tzinfo=BANK), now, status=S.CLOSED),
    ]
    if rows[2].resolved_at is None:
        rows[2].resolved_at = rows[2].received_at + timedelta(hours=5)
    await _insert(rows)
    buckets = await complaint_stats.stats(COMMAND_LINE, START, END, group_by)
    assert_matches(buckets, expected_buckets(rows, group_by))
    assert all(b.count > 0 for b in buckets)
    if group_by == "DAY":
        assert [b.key for b in buckets] == ["2025-03-02", "2025-03-20", "2025-04-28"]
        withdrawn, received, closed = buckets
        assert (withdrawn.open_count, withdrawn.resolved_count, withdrawn.sla_met_rate) == (0, 0, None)
        assert withdrawn.avg_resolution_hours is None
        assert (received.open_count, received.resolved_count, received.avg_resolution_hours) == (1, 0, None)
        assert (closed.open_count, closed.resolved_count) == (0, 1)
    assert (
        await complaint_stats.stats(
            COMMAND_LINE, datetime(2025, 3, 3, tzinfo=BANK), datetime(2025, 3, 20, tzinfo=BANK), group_by
        )
        == []
    )


async def test_a_status_outside_the_workflow_counts_in_the_total_only(app):
    """A row whose status is none of the workflow's (written by hand, say) counts in `count` and in nothing that
    depends on the status, as before."""
    rows = await seed(count=40)
    victim = await Complaint.filter(status=S.RESOLVED).order_by("id").first()
    assert victim is not None
    conn = Tortoise.get_connection("default")
    await conn.execute_query(f"UPDATE complaint SET status = 'LEGACY' WHERE id = {int(victim.id)}")
    legacy = [r for r in rows if r.received_at.astimezone(UTC) == victim.received_at.astimezone(UTC)]
    assert len(legacy) == 1
    legacy[0].status = "LEGACY"  # neither open, resolved nor withdrawn for the Python side either
    for group_by in ("CATEGORY", "DAY", "MONTH"):
        buckets = await complaint_stats.stats(COMMAND_LINE, START, END, group_by)
        assert_matches(buckets, expected_buckets(rows, group_by))
        assert sum(b.count for b in buckets) == sum(START <= r.received_at < END for r in rows)


@pytest.mark.parametrize("group_by", list(complaint_stats.GROUPINGS))
async def test_the_callers_scope_with_every_group_by(app, monkeypatch, group_by):
    """The scope (a subquery on the customer's branch) combined with each group-by, periods included."""
    rows = await seed(count=80, seed_value=9)
    monkeypatch.setattr(access, "BRANCH_BOUND", access.BRANCH_BOUND | {Role.ANALYST})
    analyst = await _caller(Role.ANALYST, branch=BRANCHES[0])
    mine = [r for r in rows if r.customer_branch == BRANCHES[0]]
    start, end = START + timedelta(days=3, hours=5), END - timedelta(days=2, minutes=7)
    buckets = await complaint_stats.stats(analyst, start, end, group_by)
    assert_matches(buckets, expected_buckets(mine, group_by, start, end))
    assert 0 < sum(b.count for b in buckets) < sum(start <= r.received_at < end for r in rows)
