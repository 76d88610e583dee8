"""complaintStats and the regulator's report (issue 5, item 6): the figures the database computes equal the
figures computed here, in plain Python, from the rows the test seeded."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.db import atomic
from models.complaints import Complaint, ComplaintCategory, ComplaintReason, ComplaintStatus
from models.customers import Channel, Customer, CustomerKind
from models.follow_ups import Priority
from models.jobs import Job, JobStatus
from models.staff import Department, Role
from models.surveys import InvitationStatus, SurveyInvitation, SurveyKind, SurveyResponse, SurveyTemplate
from services import access, clock, complaint_stats, complaints, jobs
from services.access import COMMAND_LINE, Caller
from services.errors import DomainError, ErrorCode
from tests.conftest import QueryCounter, make_staff

UTC = UTC
BANK = timezone(timedelta(hours=8))  # Asia/Shanghai: UTC+8, no daylight saving time
START = datetime(2025, 3, 1, tzinfo=BANK)  # a bank midnight
END = datetime(2025, 5, 1, tzinfo=BANK)
BRANCHES = ["北京朝阳支行", "上海浦东支行", None]
S = ComplaintStatus
OPEN = {S.RECEIVED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.ESCALATED, S.REOPENED}
RESOLVED = {S.RESOLVED, S.CLOSED}
RANK = {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 3, Priority.URGENT: 4}
AMOUNTS = [
    None,
    None,
    None,
    Decimal("0.00"),
    Decimal("0.01"),
    Decimal("100.50"),
    Decimal("1234.56"),
    Decimal("99999.99"),
    Decimal("0.10"),
]
ALLOWED = [Role.ADMIN, Role.MANAGER, Role.COMPLAINT_HANDLER, Role.ANALYST, Role.AUDITOR]
REFUSED = [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT]


@dataclass
class Row:
    """What the test inserted, kept on the Python side to compute the expected figures from."""

    customer_branch: str | None
    received_at: datetime
    due_at: datetime
    status: ComplaintStatus
    resolved_at: datetime | None
    category: ComplaintCategory
    reason: ComplaintReason
    channel: Channel
    priority: Priority
    branch: str | None
    department: Department | None
    reopen_count: int
    compensation_amount: Decimal | None
    # Its post-complaint survey: none, sent (`surveyed`), answered, with a CSAT score or without one.
    surveyed: bool = False
    answered: bool = False
    csat: float | None = None


_numbers = iter(range(1, 10**6))


async def _customer(branch: str | None) -> Customer:
    n = next(_numbers)
    return await Customer.create(customer_no=f"C{n:010d}", kind=CustomerKind.INDIVIDUAL, name=f"客户{n}", branch=branch)


async def _survey(template: SurveyTemplate, customer: Customer, complaint: Complaint | None, r: Row) -> None:
    invitation = await SurveyInvitation.create(
        template=template,
        customer=customer,
        complaint=complaint,
        channel=Channel.SMS,
        status=InvitationStatus.RESPONDED if r.answered else InvitationStatus.SENT,
        expires_at=r.received_at + timedelta(days=30),
        created_at=r.received_at + timedelta(days=16),
    )
    if r.answered:
        await SurveyResponse.create(
            invitation=invitation,
            customer=customer,
            answers=[],
            csat_score=r.csat,
            submitted_at=r.received_at + timedelta(days=17),
        )
        if complaint is not None and r.csat is not None:  # as services.surveys.submit records it
            await complaints.record_satisfaction(complaint.id, r.csat)


async def _insert(rows: list[Row]) -> None:
    """The rows as complaints, with their post-complaint surveys. Where there are surveys, every customer also
    answered a survey about no complaint with the lowest score, which no complaint bucket may count."""
    by_branch = {b: await _customer(b) for b in {r.customer_branch for r in rows}}
    async with atomic():
        template = None
        if any(r.surveyed for r in rows):
            template = await SurveyTemplate.create(name="投诉回访满意度", kind=SurveyKind.CSAT, questions=[])
            for customer in by_branch.values():
                other = Row(**{**vars(rows[0]), "answered": True, "csat": 1.0})
                await _survey(template, customer, None, other)
        for r in rows:
            n = next(_numbers)
            complaint = await Complaint.create(
                reference_no=f"CMP-TEST-{n:08d}",
                customer=by_branch[r.customer_branch],
                branch=r.branch,
                channel=r.channel,
                category=r.category,
                reason=r.reason,
                priority=r.priority,
                priority_rank=RANK[r.priority],
                status=r.status,
                summary="测试投诉",
                description="测试",
                received_at=r.received_at.astimezone(UTC),
                due_at=r.due_at.astimezone(UTC),
                resolved_at=r.resolved_at.astimezone(UTC) if r.resolved_at else None,
                closed_at=r.resolved_at + timedelta(days=1) if r.status == S.CLOSED else None,
                withdrawn_at=r.received_at + timedelta(days=2) if r.status == S.WITHDRAWN else None,
                department=r.department,
                reopen_count=r.reopen_count,
                compensation_amount=r.compensation_amount,
            )
            if r.surveyed:
                await _survey(template, by_branch[r.customer_branch], complaint, r)


def _row(rng: random.Random, received: datetime, now: datetime, **fixed) -> Row:
    status = rng.choice(list(S))
    due = received + timedelta(days=rng.choice([15, 15, 15, 30, 60]))
    if status in OPEN and rng.random() < 0.35:
        due = now + timedelta(days=rng.randint(2, 20))  # open and not yet due: not judged by the SLA
    resolved_at = None
    if status in RESOLVED:
        resolved_at = received + timedelta(minutes=rng.randint(30, 70 * 24 * 60))  # some by due, some late
        if rng.random() < 0.1:
            resolved_at = due  # exactly at the deadline: met
    branch = rng.choice(BRANCHES)
    values = dict(
        customer_branch=branch,
        received_at=received,
        due_at=due,
        status=status,
        resolved_at=resolved_at,
        category=rng.choice(list(ComplaintCategory)),
        reason=rng.choice(list(ComplaintReason)),
        channel=rng.choice(list(Channel)),
        priority=rng.choice(list(Priority)),
        branch=branch,
        department=rng.choice([*Department, None]),
        reopen_count=rng.choice([0, 0, 0, 1, 2]),
        compensation_amount=rng.choice(AMOUNTS),
    )
    values.update(fixed)
    return Row(**values)


def _with_surveys(rows: list[Row], seed_value: int) -> None:
    """Post-complaint surveys for about two thirds of the rows: some unanswered, some answered without a CSAT
    score, the rest with one (a separate random stream, so that the rows themselves stay as they were)."""
    rng = random.Random(seed_value + 1000)
    for r in rows:
        r.surveyed = rng.random() < 0.65
        r.answered = r.surveyed and rng.random() < 0.7
        r.csat = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 4.5, None]) if r.answered else None


async def seed(count: int = 160, seed_value: int = 5, surveys: bool = False) -> list[Row]:
    """`count` complaints spread over the period, plus some just outside it and on its edges; with `surveys`,
    post-complaint surveys for many of them."""
    rng = random.Random(seed_value)
    now = clock.now()
    span = int((END - START).total_seconds())
    received = [START + timedelta(seconds=rng.randrange(span)) for _ in range(count)]
    received += [
        START,
        END - timedelta(microseconds=1),  # in
        START - timedelta(microseconds=1),
        END,
        END + timedelta(days=3),
        START - timedelta(days=40),  # out
        datetime(2025, 3, 9, 15, 59, 59, tzinfo=UTC),
        datetime(2025, 3, 9, 16, 0, tzinfo=UTC),  # a bank midnight
        datetime(2025, 3, 31, 16, 0, tzinfo=UTC),
        datetime(2025, 3, 31, 15, 59, 59, 999999, tzinfo=UTC),
    ]
    rows = [_row(rng, when, now) for when in received]
    if surveys:
        _with_surveys(rows, seed_value)
    await _insert(rows)
    return rows


# ---------------------------------------------------------------- the expected figures, in Python


def _local(r: Row) -> datetime:
    return r.received_at.astimezone(BANK)


def _week(r: Row) -> str:
    year, week, _ = _local(r).isocalendar()
    return f"{year}-W{week:02d}"


KEYS = {
    "CATEGORY": lambda r: r.category.value,
    "REASON": lambda r: r.reason.value,
    "CHANNEL": lambda r: r.channel.value,
    "BRANCH": lambda r: r.branch or "UNASSIGNED",
    "DEPARTMENT": lambda r: r.department.value if r.department else "UNASSIGNED",
    "PRIORITY": lambda r: r.priority.value,
    "DAY": lambda r: _local(r).strftime("%Y-%m-%d"),
    "WEEK": _week,
    "MONTH": lambda r: _local(r).strftime("%Y-%m"),
}


@dataclass
class Expected:
    count: int
    open_count: int
    resolved_count: int
    withdrawn_count: int
    sla_met: int
    sla_missed: int
    sla_met_rate: float | None
    avg_resolution_hours: float | None
    reopen_rate: float | None
    avg_satisfaction: float | None
    compensation_total: Decimal


def figures(rows: list[Row], now: datetime) -> Expected:
    resolved = [r for r in rows if r.status in RESOLVED]
    met = [r for r in resolved if r.resolved_at <= r.due_at]
    overdue = [r for r in rows if r.status in OPEN and r.due_at < now]
    judged = len(resolved) + len(overdue)
    hours = [(r.resolved_at - r.received_at).total_seconds() / 3600 for r in resolved]
    csat = [r.csat for r in rows if r.surveyed and r.answered and r.csat is not None]
    return Expected(
        count=len(rows),
        open_count=sum(r.status in OPEN for r in rows),
        resolved_count=len(resolved),
        withdrawn_count=sum(r.status == S.WITHDRAWN for r in rows),
        sla_met=len(met),
        sla_missed=judged - len(met),
        sla_met_rate=len(met) / judged if judged else None,
        avg_resolution_hours=sum(hours) / len(hours) if hours else None,
        reopen_rate=sum(r.reopen_count > 0 for r in rows) / len(rows) if rows else None,
        avg_satisfaction=sum(csat) / len(csat) if csat else None,
        compensation_total=sum((r.compensation_amount or Decimal(0) for r in rows), Decimal("0.00")),
    )


def expected_buckets(rows: list[Row], group_by: str, start=START, end=END) -> dict[str, Expected]:
    now = clock.now()
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if start <= r.received_at < end:
            groups[KEYS[group_by](r)].append(r)
    return {key: figures(members, now) for key, members in groups.items()}


def _approx(value: float | None):
    return None if value is None else pytest.approx(value, rel=1e-9, abs=1e-6)


def assert_matches(buckets, expected: dict[str, Expected]) -> None:
    assert [b.key for b in buckets] == sorted(expected)
    for b in buckets:
        e = expected[b.key]
        assert (b.count, b.open_count, b.resolved_count) == (e.count, e.open_count, e.resolved_count), b.key
        assert b.sla_met_rate == _approx(e.sla_met_rate), b.key
        assert b.avg_resolution_hours == _approx(e.avg_resolution_hours), b.key
        assert b.reopen_rate == _approx(e.reopen_rate), b.key
        assert b.avg_satisfaction == _approx(e.avg_satisfaction), b.key
        assert isinstance(b.compensation_total, Decimal)
        assert b.compensation_total == e.compensation_total, b.key
        assert b.compensation_total.as_tuple().exponent == -2


async def _caller(role: Role = Role.ANALYST, branch: str | None = None) -> Caller:
    return Caller(staff=await make_staff(role, branch=branch))


# ---------------------------------------------------------------- every group-by


@pytest.mark.parametrize("group_by", list(complaint_stats.GROUPINGS))
async def test_every_group_by_matches_figures_computed_from_the_seeded_rows(app, group_by):
    rows = await seed()
    expected = expected_buckets(rows, group_by)
    assert sum(e.count for e in expected.values()) == 166  # 160 spread over it, 2 on its edges, 4 at midnights
    analyst = await _caller()
    with QueryCounter() as counter:
        buckets = await complaint_stats.stats(analyst, START, END, group_by)
    assert counter.count == 1, counter.statements  # one GROUP BY, never a loop over complaints
    assert_matches(buckets, expected)
    if group_by in ("BRANCH", "DEPARTMENT"):
        assert "UNASSIGNED" in {b.key for b in buckets}


async def test_the_figures_are_not_trivial(app):
    """The seed exercises every measure: met and missed, open overdue, reopened, compensated, withdrawn."""
    rows = await seed()
    total = figures([r for r in rows if START <= r.received_at < END], clock.now())
    assert total.sla_met > 10 and total.sla_missed > 10 and total.withdrawn_count > 5
    assert 0 < total.reopen_rate < 1 and total.compensation_total > 0
    buckets = await complaint_stats.stats(COMMAND_LINE, START, END, "MONTH")
    assert [b.key for b in buckets] == ["2025-03", "2025-04"]
    assert sum(b.count for b in buckets) == total.count
    assert sum((b.compensation_total for b in buckets), Decimal(0)) == total.compensation_total


async def test_the_group_by_may_be_an_enum_member_or_any_case(app):
    await seed(count=20)
    from enum import Enum

    class GroupBy(Enum):
        PRIORITY = "PRIORITY"

    caller = await _caller()
    by_string = await complaint_stats.stats(caller, START, END, "PRIORITY")
    assert await complaint_stats.stats(caller, START, END, GroupBy.PRIORITY) == by_string
    assert await complaint_stats.stats(caller, START, END, "priority") == by_string


async def test_hand_computed_figures(app):
    """One small bucket worked out by hand, so that the definitions themselves are pinned down."""
    now = clock.now()
    day = datetime(2025, 3, 10, 9, 0, tzinfo=BANK)
    base = dict(
        customer_branch=None,
        category=ComplaintCategory.LOAN,
        reason=ComplaintReason.FEES_AND_PRICING,
        channel=Channel.PHONE,
        priority=Priority.NORMAL,
        branch=None,
        department=None,
        reopen_count=0,
        compensation_amount=None,
    )
    due = day + timedelta(days=15)
    await _insert(
        [
            # resolved after 10 hours, by due (met), 100.10 paid
            Row(
                received_at=day,
                due_at=due,
                status=S.RESOLVED,
                resolved_at=day + timedelta(hours=10),
                **{**base, "compensation_amount": Decimal("100.10")},
            ),
            # closed after 20 days: missed; reopened once before
            Row(
                received_at=day,
                due_at=due,
                status=S.CLOSED,
                resolved_at=day + timedelta(days=20),
                **{**base, "reopen_count": 1, "compensation_amount": Decimal("0.20")},
            ),
            # open and past due: missed
            Row(received_at=day, due_at=due, status=S.IN_PROGRESS, resolved_at=None, **base),
            # open, not yet due: not judged
            Row(
                received_at=day,
                due_at=now + timedelta(days=5),
                status=S.REOPENED,
                resolved_at=None,
                **{**base, "reopen_count": 2},
            ),
            # withdrawn: not judged
            Row(received_at=day, due_at=due, status=S.WITHDRAWN, resolved_at=None, **base),
        ]
    )
    [b] = await complaint_stats.stats(await _caller(Role.AUDITOR), START, END, "CATEGORY")
    assert b.key == "LOAN"
    assert (b.count, b.open_count, b.resolved_count) == (5, 2, 2)
    assert b.sla_met_rate == pytest.approx(1 / 3)
    assert b.avg_resolution_hours == pytest.approx((10 + 20 * 24) / 2)
    assert b.reopen_rate == pytest.approx(2 / 5)
    assert b.compensation_total == Decimal("100.30")
    assert b.avg_satisfaction is None


async def test_rates_are_none_when_nothing_is_judged(app):
    day = datetime(2025, 4, 2, 9, 0, tzinfo=BANK)
    await _insert(
        [
            Row(
                customer_branch=None,
                received_at=day,
                due_at=clock.now() + timedelta(days=9),
                status=S.RECEIVED,
                resolved_at=None,
                category=ComplaintCategory.DEPOSIT,
                reason=ComplaintReason.OTHER,
                channel=Channel.BRANCH,
                priority=Priority.LOW,
                branch=None,
                department=None,
                reopen_count=0,
                compensation_amount=None,
            )
        ]
    )
    [b] = await complaint_stats.stats(COMMAND_LINE, START, END, "DAY")
    assert (b.key, b.count, b.open_count, b.resolved_count) == ("2025-04-02", 1, 1, 0)
    assert b.sla_met_rate is None and b.avg_resolution_hours is None
    assert b.reopen_rate == 0.0 and b.compensation_total == Decimal("0.00")


# ---------------------------------------------------------------- satisfaction: post-complaint surveys


@pytest.mark.parametrize("group_by", list(complaint_stats.GROUPINGS))
async def test_avg_satisfaction_is_the_mean_csat_of_the_buckets_complaint_surveys(app, group_by):
    rows = await seed(surveys=True)
    expected = expected_buckets(rows, group_by)
    assert sum(e.count for e in expected.values()) == 166  # a survey never counts its complaint twice
    analyst = await _caller()
    with QueryCounter() as counter:
        buckets = await complaint_stats.stats(analyst, START, END, group_by)
    assert counter.count == 1, counter.statements  # still one statement, surveys included
    assert_matches(buckets, expected)
    assert any(b.avg_satisfaction is not None for b in buckets)


async def test_the_satisfaction_seed_is_not_trivial(app):
    rows = await seed(surveys=True)
    in_period = [r for r in rows if START <= r.received_at < END]
    assert sum(not r.surveyed for r in in_period) > 20 and sum(r.surveyed and not r.answered for r in in_period) > 10
    assert sum(r.answered and r.csat is None for r in in_period) > 5 and sum(r.csat is not None for r in in_period) > 40
    buckets = await complaint_stats.stats(COMMAND_LINE, START, END, "DAY")
    assert any(b.avg_satisfaction is None for b in buckets)  # days with no CSAT answer at all
    assert await SurveyResponse.filter(invitation__complaint_id__isnull=True, csat_score=1.0).exists()


async def test_hand_computed_satisfaction(app):
    """Scores 5 and 2 answered, one answer without a CSAT score, one survey unanswered, one complaint without a
    survey; the customer's survey about no complaint (scored 1) is not a complaint's: (5 + 2) / 2."""
    day = datetime(2025, 3, 12, 9, 0, tzinfo=BANK)
    base = dict(
        customer_branch=None,
        received_at=day,
        due_at=day + timedelta(days=15),
        status=S.CLOSED,
        resolved_at=day + timedelta(days=2),
        category=ComplaintCategory.DEPOSIT,
        reason=ComplaintReason.OTHER,
        channel=Channel.PHONE,
        priority=Priority.NORMAL,
        branch=None,
        department=None,
        reopen_count=0,
        compensation_amount=None,
    )
    await _insert(
        [
            Row(**base, surveyed=True, answered=True, csat=5.0),
            Row(**base, surveyed=True, answered=True, csat=2.0),
            Row(**base, surveyed=True, answered=True, csat=None),
            Row(**base, surveyed=True),
            Row(**base),
            Row(**{**base, "category": ComplaintCategory.LOAN}, surveyed=True),
            Row(**{**base, "category": ComplaintCategory.OTHER}, surveyed=True, answered=True, csat=4.0),
            # received before the period: its survey counts in no bucket of it
            Row(**{**base, "received_at": START - timedelta(days=1)}, surveyed=True, answered=True, csat=1.0),
        ]
    )
    assert await SurveyResponse.all().count() == 6
    deposit, loan, other = await complaint_stats.stats(COMMAND_LINE, START, END, "CATEGORY")
    assert (deposit.key, deposit.count, deposit.avg_satisfaction) == ("DEPOSIT", 5, 3.5)
    assert (loan.key, loan.count, loan.avg_satisfaction) == ("LOAN", 1, None)
    assert (other.key, other.count, other.avg_satisfaction) == ("OTHER", 1, 4.0)
    [month] = await complaint_stats.stats(COMMAND_LINE, START, END, "MONTH")
    assert (month.count, month.avg_satisfaction) == (7, pytest.approx(11 / 3))


# ---------------------------------------------------------------- bank time: days, ISO weeks, months


@pytest.mark.parametrize(
    ("instant", "day", "week", "month"),
    [
        (datetime(2024, 12, 29, 15, 59, 59, tzinfo=UTC), "2024-12-29", "2024-W52", "2024-12"),  # Sunday 23:59:59
        (datetime(2024, 12, 29, 16, 0, tzinfo=UTC), "2024-12-30", "2025-W01", "2024-12"),  # Monday 00:00
        (datetime(2021, 1, 3, 2, 0, tzinfo=UTC), "2021-01-03", "2020-W53", "2021-01"),  # a Sunday of 2020's week 53
        (datetime(2026, 12, 31, 20, 0, tzinfo=UTC), "2027-01-01", "2026-W53", "2027-01"),  # Friday in bank time
        (datetime(2026, 1, 31, 16, 30, tzinfo=UTC), "2026-02-01", "2026-W05", "2026-02"),  # UTC still in January
        (datetime(2025, 6, 30, 12, 0, tzinfo=UTC), "2025-06-30", "2025-W27", "2025-06"),
    ],
)
async def test_period_keys_are_bank_days_iso_weeks_and_months(app, instant, day, week, month):
    local = instant.astimezone(BANK)  # the expectation agrees with Python's own calendar
    assert (local.strftime("%Y-%m-%d"), f"{local.isocalendar()[0]}-W{local.isocalendar()[1]:02d}") == (day, week)
    rng = random.Random(1)
    await _insert([_row(rng, instant, clock.now()), _row(rng, instant + timedelta(days=400), clock.now())])
    start, end = instant - timedelta(hours=1), instant + timedelta(hours=1)
    for group_by, key in (("DAY", day), ("WEEK", week), ("MONTH", month)):
        buckets = await complaint_stats.stats(COMMAND_LINE, start, end, group_by)
        assert [(b.key, b.count) for b in buckets] == [(key, 1)], group_by


# ---------------------------------------------------------------- roles and scope


@pytest.mark.parametrize("role", ALLOWED)
async def test_roles_that_may_read_statistics(app, role):
    rows = await seed(count=30)
    buckets = await complaint_stats.stats(await _caller(role), START, END, "CHANNEL")
    assert_matches(buckets, expected_buckets(rows, "CHANNEL"))


@pytest.mark.parametrize("role", REFUSED)
async def test_branch_staff_may_not_read_statistics(app, role):
    await seed(count=10)
    caller = await _caller(role, branch=BRANCHES[0])
    with pytest.raises(DomainError) as err:
        await complaint_stats.stats(caller, START, END, "CATEGORY")
    assert err.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(DomainError) as err:
        await complaint_stats.start_report(caller, START, END, lambda job_id: None)
    assert err.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(DomainError) as err:
        await complaint_stats.stats(Caller(), START, END, "CATEGORY")  # nobody
    assert err.value.code == ErrorCode.FORBIDDEN


async def test_an_analyst_with_a_branch_still_sees_the_whole_bank(app):
    rows = await seed(count=60)
    analyst = await _caller(Role.ANALYST, branch=BRANCHES[0])
    buckets = await complaint_stats.stats(analyst, START, END, "BRANCH")
    assert_matches(buckets, expected_buckets(rows, "BRANCH"))
    assert {b.key for b in buckets} == {BRANCHES[0], BRANCHES[1], "UNASSIGNED"}


async def test_the_figures_follow_the_callers_scope(app, monkeypatch):
    """Statistics go through complaints.visible: were analysts branch-bound, they would count their branch only
    (by the customer's branch, like every other read)."""
    rows = await seed(count=60)
    monkeypatch.setattr(access, "BRANCH_BOUND", access.BRANCH_BOUND | {Role.ANALYST})
    analyst = await _caller(Role.ANALYST, branch=BRANCHES[1])
    mine = [r for r in rows if r.customer_branch == BRANCHES[1]]
    buckets = await complaint_stats.stats(analyst, START, END, "CATEGORY")
    assert_matches(buckets, expected_buckets(mine, "CATEGORY"))
    assert sum(b.count for b in buckets) < sum(START <= r.received_at < END for r in rows)


# ---------------------------------------------------------------- periods


async def test_period_edges_start_included_end_excluded(app):
    rows = await seed(count=0)
    buckets = await complaint_stats.stats(COMMAND_LINE, START, END, "DAY")
    assert [(b.key, b.count) for b in buckets] == [
        ("2025-03-01", 1),
        ("2025-03-09", 1),
        ("2025-03-10", 1),
        ("2025-03-31", 1),
        ("2025-04-01", 1),
        ("2025-04-30", 1),
    ]
    assert_matches(buckets, expected_buckets(rows, "DAY"))
    # the same instants given in another offset are the same period
    assert await complaint_stats.stats(COMMAND_LINE, START.astimezone(UTC), END.astimezone(UTC), "DAY") == buckets
    # naive datetimes are UTC
    naive = await complaint_stats.stats(
        COMMAND_LINE, START.astimezone(UTC).replace(tzinfo=None), END.astimezone(UTC).replace(tzinfo=None), "DAY"
    )
    assert naive == buckets
    assert await complaint_stats.stats(COMMAND_LINE, START, START, "DAY") == []
    one = await complaint_stats.stats(COMMAND_LINE, START, START + timedelta(microseconds=1), "DAY")
    assert [(b.key, b.count) for b in one] == [("2025-03-01", 1)]
    assert (
        await complaint_stats.stats(
            COMMAND_LINE, datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC), "MONTH"
        )
        == []
    )


async def test_bad_periods_and_groupings(app):
    caller = await _caller()
    with pytest.raises(DomainError) as err:
        await complaint_stats.stats(caller, END, START, "DAY")
    assert err.value.code == ErrorCode.INVALID and err.value.field[0] == "period"
    three_years = datetime(2028, 3, 1, tzinfo=BANK)
    assert await complaint_stats.stats(caller, START, three_years, "MONTH") == []  # exactly 3 years: allowed
    with pytest.raises(DomainError) as err:
        await complaint_stats.stats(caller, START, three_years + timedelta(microseconds=1), "MONTH")
    assert err.value.code == ErrorCode.LIMIT_EXCEEDED
    leap = datetime(2024, 2, 29, tzinfo=UTC)
    assert await complaint_stats.stats(caller, leap, datetime(2027, 2, 28, tzinfo=UTC), "DAY") == []
    with pytest.raises(DomainError) as err:
        await complaint_stats.stats(caller, leap, datetime(2027, 3, 1, tzinfo=UTC), "DAY")
    assert err.value.code == ErrorCode.LIMIT_EXCEEDED
    with pytest.raises(DomainError) as err:
        await complaint_stats.stats(caller, START, END, "YEAR")
    assert err.value.code == ErrorCode.INVALID and err.value.field == ["groupBy"]
    for start, end, code in (
        (END, START, ErrorCode.INVALID),
        (START, START + timedelta(days=3 * 366), ErrorCode.LIMIT_EXCEEDED),
    ):
        with pytest.raises(DomainError) as err:
            await complaint_stats.start_report(caller, start, end, lambda job_id: None)
        assert err.value.code == code
    assert not await Job.exists()


# ---------------------------------------------------------------- the regulator's report


async def _no_publish(channel: str, message: dict) -> None:
    return None


def _parse(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")  # Excel opens UTF-8 with a BOM as UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


async def test_the_report_job_end_to_end(app):
    rows = await seed(surveys=True)  # the surveys joined in must not count a complaint twice
    analyst = await _caller(Role.ANALYST)
    sent: list[int] = []
    job = await complaint_stats.start_report(analyst, START, END, sent.append)
    assert sent == [job.id]
    assert job.kind == "COMPLAINT_REPORT" and job.status == JobStatus.QUEUED
    assert job.created_by_id == analyst.staff.id

    await jobs.run(job.id, _no_publish)
    job = await Job.get(id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    result = job.result
    assert result["filename"] == "complaints-20250301-20250430.csv"
    assert result["contentType"] == "text/csv"
    assert result["downloadPath"] == f"/jobs/{job.id}/download"

    table = _parse(result["csv"])
    header, *data, totals = table
    assert header[:4] == [
        "业务类别 Business type",
        "业务类别名称 Business type name",
        "投诉原因 Cause",
        "投诉原因名称 Cause name",
    ]
    assert header[4:8] == ["受理数 Received", "未办结数 Open", "已办结数 Resolved", "撤回数 Withdrawn"]
    assert len(header) == 13 and all(any("\u4e00" <= ch <= "\u9fff" for ch in h) for h in header)

    now = clock.now()
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    in_period = [r for r in rows if START <= r.received_at < END]
    for r in in_period:
        groups[(r.category.value, r.reason.value)].append(r)
    assert result["rows"] == len(data) == len(groups)
    categories, reasons = [c.value for c in ComplaintCategory], [r.value for r in ComplaintReason]
    order = [(categories.index(line[0]), reasons.index(line[2])) for line in data]
    assert order == sorted(order)  # JR/T order: business type, then cause
    assert {line[0]: line[1] for line in data}.get("CREDIT_CARD", "信用卡") == "信用卡"

    def check(line: list[str], e: Expected) -> None:
        assert [int(x) for x in line[4:10]] == [
            e.count,
            e.open_count,
            e.resolved_count,
            e.withdrawn_count,
            e.sla_met,
            e.sla_missed,
        ]
        assert line[10] == ("" if e.sla_met_rate is None else f"{e.sla_met_rate:.4f}")
        if e.avg_resolution_hours is None:
            assert line[11] == ""
        else:
            assert float(line[11]) == pytest.approx(e.avg_resolution_hours, abs=0.006)
        assert Decimal(line[12]) == e.compensation_total and line[12] == f"{e.compensation_total:.2f}"

    for line in data:
        check(line, figures(groups[(line[0], line[2])], now))
    assert totals[:4] == ["合计 Total", "", "", ""]
    check(totals, figures(in_period, now))
    assert int(totals[4]) == 166


async def test_an_empty_report_has_its_header_and_a_zero_total(app):
    job = await complaint_stats.start_report(
        COMMAND_LINE, datetime(2024, 1, 1, tzinfo=BANK), datetime(2024, 1, 1, tzinfo=BANK), lambda job_id: None
    )
    await jobs.run(job.id, _no_publish)
    job = await Job.get(id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result["rows"] == 0 and job.result["filename"] == "complaints-20240101-20240101.csv"
    _header, totals = _parse(job.result["csv"])
    assert totals == ["合计 Total", "", "", "", "0", "0", "0", "0", "0", "0", "", "", "0.00"]


async def test_the_report_runs_as_its_requester_is_now(app):
    """A requester deactivated (or moved to a role without statistics) before the worker runs: the job fails."""
    await seed(count=5)
    staff = await make_staff(Role.MANAGER)
    job = await complaint_stats.start_report(Caller(staff=staff), START, END, lambda job_id: None)
    staff.active = False
    await staff.save(update_fields=["active"])
    await jobs.run(job.id, _no_publish)
    job = await Job.get(id=job.id)
    assert job.status == JobStatus.FAILED
    assert "no longer active" in job.errors[-1]["message"]

    staff.active, staff.role = True, Role.RELATIONSHIP_MANAGER
    await staff.save(update_fields=["active", "role"])
    job = await complaint_stats.start_report(COMMAND_LINE, START, END, lambda job_id: None)
    job.created_by_id = staff.id
    await job.save(update_fields=["created_by_id"])
    await jobs.run(job.id, _no_publish)
    assert (await Job.get(id=job.id)).status == JobStatus.FAILED
