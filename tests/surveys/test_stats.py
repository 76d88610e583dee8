"""surveyStats: the figures the database computes (one statement per call) equal the figures computed here, in
plain Python, from the invitations and responses the test seeded through the models."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest

from core.db import atomic
from models.customers import Channel, Customer, CustomerKind
from models.staff import Role
from models.surveys import (
    InvitationStatus,
    NpsCategory,
    SurveyInvitation,
    SurveyKind,
    SurveyResponse,
    SurveyTemplate,
)
from schema.base import to_global_id
from services import access, survey_stats
from services.access import COMMAND_LINE, Caller
from services.errors import DomainError, ErrorCode
from tests.conftest import QueryCounter, make_staff

BANK = timezone(timedelta(hours=8))  # Asia/Shanghai: UTC+8, no daylight saving time
START = datetime(2026, 1, 1, tzinfo=BANK)  # a bank midnight
END = datetime(2026, 5, 1, tzinfo=BANK)
BRANCHES = ["北京朝阳支行", "上海浦东支行", None]
# AUM -> value tier (docs/DOMAIN.md), written out here rather than computed: both sides of every floor.
AUMS = [
    (Decimal("0.00"), "MASS"),
    (Decimal("49999.99"), "MASS"),
    (Decimal("50000.00"), "AFFLUENT"),
    (Decimal("499999.99"), "AFFLUENT"),
    (Decimal("500000.00"), "WEALTH"),
    (Decimal("5999999.99"), "WEALTH"),
    (Decimal("6000000.00"), "PRIVATE_BANKING"),
    (Decimal("123456789.01"), "PRIVATE_BANKING"),
]
CHANNELS = [Channel.SMS, Channel.EMAIL, Channel.WECHAT, Channel.MOBILE_APP]
S = InvitationStatus
UNANSWERED = [S.PENDING, S.SENT, S.DELIVERY_FAILED, S.EXPIRED]
ALLOWED = sorted(access.SURVEY_READERS, key=lambda r: r.value)
REFUSED = sorted(set(Role) - access.SURVEY_READERS, key=lambda r: r.value)
# Instants around the end of March 2026 in bank time (16:00 UTC is the bank's midnight).
MARCH_LAST = datetime(2026, 3, 31, 15, 59, 59, 999999, tzinfo=UTC)  # 23:59:59.999999 on 31 March
APRIL_FIRST = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)  # 00:00 on 1 April
APRIL_LATER = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)  # still March in UTC, April in Shanghai


@dataclass
class Row:
    """One invitation as the test inserted it, kept on the Python side to compute the expected figures from."""

    template: int  # index into the seeded templates
    branch: str | None
    aum: Decimal
    tier: str
    channel: Channel
    status: InvitationStatus
    created_at: datetime
    answered: bool = False
    nps_score: int | None = None
    csat: float | None = None

    @property
    def nps_category(self) -> NpsCategory | None:
        if self.nps_score is None:
            return None
        if self.nps_score >= 9:
            return NpsCategory.PROMOTER
        return NpsCategory.PASSIVE if self.nps_score >= 7 else NpsCategory.DETRACTOR


@dataclass
class Seeded:
    rows: list[Row]
    templates: list[SurveyTemplate]

    def template_key(self, index: int) -> str:
        t = self.templates[index]
        return f"{t.name} #{t.id}"


_numbers = iter(range(1, 10**6))
TEMPLATE_NAMES = [
    ("客户满意度回访", SurveyKind.CSAT),
    ("季度净推荐值调查", SurveyKind.NPS),
    ("客户满意度回访", SurveyKind.CSAT),
]


async def _insert(rows: list[Row]) -> list[SurveyTemplate]:
    """The rows as invitations (and responses) of one customer per (branch, AUM) and three templates, two of
    them with the same name."""
    async with atomic():
        templates = [await SurveyTemplate.create(name=name, kind=kind, questions=[]) for name, kind in TEMPLATE_NAMES]
        customers: dict[tuple[str | None, Decimal], Customer] = {}
        for r in rows:
            if (r.branch, r.aum) not in customers:
                n = next(_numbers)
                customers[(r.branch, r.aum)] = await Customer.create(
                    customer_no=f"C{n:010d}", kind=CustomerKind.INDIVIDUAL, name=f"客户{n}", branch=r.branch, aum=r.aum
                )
        for r in rows:
            customer = customers[(r.branch, r.aum)]
            invitation = await SurveyInvitation.create(
                template=templates[r.template],
                customer=customer,
                channel=r.channel,
                status=r.status,
                expires_at=r.created_at + timedelta(days=14),
                created_at=r.created_at.astimezone(UTC),
                responded_at=r.created_at + timedelta(days=1) if r.answered else None,
            )
            if r.answered:
                await SurveyResponse.create(
                    invitation=invitation,
                    customer=customer,
                    answers=[],
                    nps_score=r.nps_score,
                    nps_category=r.nps_category,
                    csat_score=r.csat,
                    submitted_at=r.created_at + timedelta(days=1),
                )
    return templates


def _row(rng: random.Random, created_at: datetime) -> Row:
    aum, tier = rng.choice(AUMS)
    status = rng.choices([S.RESPONDED, S.SUPPRESSED, *UNANSWERED], weights=[50, 12, 10, 10, 4, 14])[0]
    row = Row(
        template=rng.randrange(len(TEMPLATE_NAMES)),
        branch=rng.choice(BRANCHES),
        aum=aum,
        tier=tier,
        channel=rng.choice(CHANNELS),
        status=status,
        created_at=created_at,
    )
    if status == S.RESPONDED:
        row.answered = True
        row.nps_score = rng.randint(0, 10) if rng.random() < 0.75 else None
        row.csat = float(rng.randint(1, 5)) if rng.random() < 0.6 else None
    return row


async def seed(count: int = 240, seed_value: int = 7) -> Seeded:
    """`count` invitations over the period and a little around it, plus some on its edges and on the bank's
    month boundary."""
    rng = random.Random(seed_value)
    span = int((END - START + timedelta(days=20)).total_seconds())
    instants = [START - timedelta(days=10) + timedelta(seconds=rng.randrange(span)) for _ in range(count)]
    instants += [
        START,
        END - timedelta(microseconds=1),  # in
        START - timedelta(microseconds=1),
        END,  # out
        MARCH_LAST,
        APRIL_FIRST,
        APRIL_LATER,
    ]
    rows = [_row(rng, when) for when in instants]
    templates = await _insert(rows)
    return Seeded(rows, templates)


# ---------------------------------------------------------------- the expected figures, in Python


@dataclass(frozen=True)
class Expected:
    invited: int
    responses: int
    response_rate: float
    nps: float | None
    promoters: int
    passives: int
    detractors: int
    csat_average: float | None


def figures(rows: list[Row]) -> Expected:
    answered = [r for r in rows if r.answered]
    categories = [r.nps_category for r in answered if r.nps_category is not None]
    p, pa, d = (sum(c == k for c in categories) for k in NpsCategory)
    csat = [r.csat for r in answered if r.csat is not None]
    return Expected(
        invited=len(rows),
        responses=len(answered),
        response_rate=len(answered) / len(rows) if rows else 0.0,
        nps=round(100 * (p - d) / (p + pa + d), 1) if categories else None,
        promoters=p,
        passives=pa,
        detractors=d,
        csat_average=sum(csat) / len(csat) if csat else None,
    )


def keys(seeded: Seeded) -> dict:
    return {
        "TEMPLATE": lambda r: seeded.template_key(r.template),
        "CHANNEL": lambda r: r.channel.value,
        "BRANCH": lambda r: r.branch or "UNASSIGNED",
        "VALUE_TIER": lambda r: r.tier,
        "MONTH": lambda r: r.created_at.astimezone(BANK).strftime("%Y-%m"),
    }


def expected_buckets(
    seeded: Seeded,
    group_by: str,
    start=START,
    end=END,
    template: int | None = None,
    branch: str | None = None,
) -> dict[str, Expected]:
    key = keys(seeded)[group_by]
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in seeded.rows:
        if not start <= r.created_at < end or r.status == S.SUPPRESSED:
            continue
        if (template is not None and r.template != template) or (branch is not None and r.branch != branch):
            continue
        groups[key(r)].append(r)
    return {k: figures(members) for k, members in groups.items()}


def _approx(value: float | None):
    return None if value is None else pytest.approx(value, rel=1e-9, abs=1e-9)


def assert_matches(buckets, expected: dict[str, Expected], seeded: Seeded | None = None) -> None:
    if seeded is not None and any(k.endswith(f" #{t.id}") for k in expected for t in seeded.templates):
        names = {seeded.template_key(i): (t.name, t.id) for i, t in enumerate(seeded.templates)}
        assert [b.key for b in buckets] == sorted(expected, key=names.__getitem__)
    else:
        assert [b.key for b in buckets] == sorted(expected)
    for b in buckets:
        e = expected[b.key]
        assert (b.invited, b.responses, b.promoters, b.passives, b.detractors) == (
            e.invited,
            e.responses,
            e.promoters,
            e.passives,
            e.detractors,
        ), b.key
        assert b.response_rate == _approx(e.response_rate), b.key
        assert b.nps == e.nps, b.key  # both rounded to one decimal from whole counts
        assert b.csat_average == _approx(e.csat_average), b.key


async def _caller(role: Role = Role.ANALYST, branch: str | None = None) -> Caller:
    return Caller(staff=await make_staff(role, branch=branch))


# ---------------------------------------------------------------- every group-by


@pytest.mark.parametrize("group_by", list(survey_stats.GROUPINGS))
async def test_every_group_by_matches_figures_computed_from_the_seeded_rows(app, group_by):
    seeded = await seed()
    expected = expected_buckets(seeded, group_by)
    analyst = await _caller()
    with QueryCounter() as counter:
        buckets = await survey_stats.stats(analyst, START, END, group_by)
    assert counter.count == 1, counter.statements  # one GROUP BY, never a loop over invitations
    assert_matches(buckets, expected, seeded)
    if group_by == "BRANCH":
        assert {b.key for b in buckets} == {*BRANCHES[:2], "UNASSIGNED"}
    if group_by == "VALUE_TIER":
        assert [b.key for b in buckets] == ["AFFLUENT", "MASS", "PRIVATE_BANKING", "WEALTH"]
    if group_by == "MONTH":
        assert [b.key for b in buckets] == ["2026-01", "2026-02", "2026-03", "2026-04"]


async def test_the_seed_is_not_trivial(app):
    """Every figure is exercised: suppressed and unanswered invitations, responses without an NPS or a CSAT
    answer, every NPS category, templates of the same name."""
    seeded = await seed()
    in_period = [r for r in seeded.rows if START <= r.created_at < END]
    assert sum(r.status == S.SUPPRESSED for r in in_period) > 10
    assert sum(r.status in UNANSWERED for r in in_period) > 30
    answered = [r for r in in_period if r.answered]
    assert sum(r.nps_score is None for r in answered) > 5 and sum(r.csat is None for r in answered) > 10
    assert {r.nps_category for r in answered} == {*NpsCategory, None}
    total = figures([r for r in in_period if r.status != S.SUPPRESSED])
    buckets = await survey_stats.stats(COMMAND_LINE, START, END, "TEMPLATE")
    names = [b.key.split(" #")[0] for b in buckets]
    assert names == sorted(names) and names.count("客户满意度回访") == 2 and len(names) == 3
    assert sum(b.invited for b in buckets) == total.invited
    assert sum(b.responses for b in buckets) == total.responses
    assert -100 < total.nps < 100 and 1 < total.csat_average < 5
    # created_at as given, not overwritten on insert (auto_now_add only fills in a missing value)
    stored = await SurveyInvitation.filter(created_at=APRIL_LATER).count()
    assert stored == 1


async def test_the_template_filter(app):
    seeded = await seed(count=150)
    analyst = await _caller()
    for index, template in enumerate(seeded.templates):
        for group_by in ("MONTH", "CHANNEL", "TEMPLATE"):
            with QueryCounter() as counter:
                buckets = await survey_stats.stats(analyst, START, END, group_by, template_id=template.id)
            assert counter.count == 1
            assert_matches(buckets, expected_buckets(seeded, group_by, template=index), seeded)
        [only] = await survey_stats.stats(analyst, START, END, "TEMPLATE", template_id=template.id)
        assert only.key == f"{template.name} #{template.id}"
    assert await survey_stats.stats(analyst, START, END, "MONTH", template_id=999_999) == []


async def test_the_group_by_may_be_an_enum_member_or_any_case(app):
    await seed(count=30)

    class GroupBy(Enum):
        VALUE_TIER = "VALUE_TIER"

    by_string = await survey_stats.stats(COMMAND_LINE, START, END, "VALUE_TIER")
    assert by_string
    assert await survey_stats.stats(COMMAND_LINE, START, END, GroupBy.VALUE_TIER) == by_string
    assert await survey_stats.stats(COMMAND_LINE, START, END, "value_tier") == by_string


async def test_hand_computed_figures(app):
    """Two small buckets worked out by hand, so that the definitions themselves are pinned down."""
    day = datetime(2026, 2, 10, 9, 0, tzinfo=BANK)
    base = dict(template=0, branch=None, aum=Decimal("0.00"), tier="MASS", created_at=day)
    sms = [
        Row(channel=Channel.SMS, status=S.RESPONDED, answered=True, nps_score=10, csat=5.0, **base),
        Row(channel=Channel.SMS, status=S.RESPONDED, answered=True, nps_score=9, csat=4.0, **base),
        Row(channel=Channel.SMS, status=S.RESPONDED, answered=True, nps_score=6, csat=None, **base),
        Row(channel=Channel.SMS, status=S.RESPONDED, answered=True, nps_score=None, csat=2.0, **base),
        Row(channel=Channel.SMS, status=S.SENT, **base),
        Row(channel=Channel.SMS, status=S.EXPIRED, **base),
        Row(channel=Channel.SMS, status=S.SUPPRESSED, **base),  # not invited
    ]
    email = [
        Row(channel=Channel.EMAIL, status=S.RESPONDED, answered=True, nps_score=7, csat=None, **base),
        Row(channel=Channel.EMAIL, status=S.RESPONDED, answered=True, nps_score=8, csat=None, **base),
        Row(channel=Channel.EMAIL, status=S.RESPONDED, answered=True, nps_score=0, csat=None, **base),
    ]
    wechat = [Row(channel=Channel.WECHAT, status=S.DELIVERY_FAILED, **base)]
    await _insert([*sms, *email, *wechat, Row(channel=Channel.VIDEO, status=S.SUPPRESSED, **base)])
    email_b, sms_b, wechat_b = await survey_stats.stats(await _caller(Role.AUDITOR), START, END, "CHANNEL")
    assert (sms_b.key, sms_b.invited, sms_b.responses) == ("SMS", 6, 4)
    assert sms_b.response_rate == pytest.approx(4 / 6)
    assert (sms_b.promoters, sms_b.passives, sms_b.detractors) == (2, 0, 1)
    assert sms_b.nps == 33.3  # (2 - 1) / 3
    assert sms_b.csat_average == pytest.approx(11 / 3)
    assert (email_b.key, email_b.invited, email_b.responses, email_b.response_rate) == ("EMAIL", 3, 3, 1.0)
    assert (email_b.promoters, email_b.passives, email_b.detractors) == (0, 2, 1)
    assert email_b.nps == -33.3 and email_b.csat_average is None
    assert (wechat_b.key, wechat_b.invited, wechat_b.responses, wechat_b.response_rate) == ("WECHAT", 1, 0, 0.0)
    assert wechat_b.nps is None and wechat_b.csat_average is None
    assert (wechat_b.promoters, wechat_b.passives, wechat_b.detractors) == (0, 0, 0)  # VIDEO: only suppressed


# ---------------------------------------------------------------- bank time and the period


async def test_months_are_bank_months(app):
    """17:00 UTC on 31 March is 01:00 on 1 April in Shanghai: April, though UTC still says March."""
    seeded = await seed(count=0)
    buckets = await survey_stats.stats(COMMAND_LINE, datetime(2026, 3, 1, tzinfo=BANK), END, "MONTH")
    expected = expected_buckets(seeded, "MONTH", start=datetime(2026, 3, 1, tzinfo=BANK))
    assert_matches(buckets, expected)
    invited = {
        "2026-03": sum(r.status != S.SUPPRESSED for r in seeded.rows if r.created_at == MARCH_LAST),
        "2026-04": sum(
            r.status != S.SUPPRESSED
            for r in seeded.rows
            if r.created_at in (APRIL_FIRST, APRIL_LATER, END - timedelta(microseconds=1))
        ),
    }
    assert {b.key: b.invited for b in buckets} == {k: v for k, v in invited.items() if v}
    # a year's end, by a period given in UTC around it
    rng = random.Random(3)
    edge = [_row(rng, datetime(2026, 12, 31, 16, 0, tzinfo=UTC)), _row(rng, datetime(2026, 12, 31, 15, 59, tzinfo=UTC))]
    for r in edge:
        r.status = S.PENDING
    await _insert(edge)
    year_end = await survey_stats.stats(
        COMMAND_LINE, datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC), "MONTH"
    )
    assert [(b.key, b.invited) for b in year_end] == [("2026-12", 1), ("2027-01", 1)]


async def test_period_edges_start_included_end_excluded(app):
    seeded = await seed(count=0)
    buckets = await survey_stats.stats(COMMAND_LINE, START, END, "CHANNEL")
    assert_matches(buckets, expected_buckets(seeded, "CHANNEL"))
    assert sum(b.invited for b in buckets) == sum(
        r.status != S.SUPPRESSED
        for r in seeded.rows
        if r.created_at in (START, END - timedelta(microseconds=1), MARCH_LAST, APRIL_FIRST, APRIL_LATER)
    )
    # the same instants in another offset, or naive (UTC), are the same period
    assert await survey_stats.stats(COMMAND_LINE, START.astimezone(UTC), END.astimezone(UTC), "CHANNEL") == buckets
    naive = [START.astimezone(UTC).replace(tzinfo=None), END.astimezone(UTC).replace(tzinfo=None)]
    assert await survey_stats.stats(COMMAND_LINE, *naive, "CHANNEL") == buckets
    assert await survey_stats.stats(COMMAND_LINE, START, START, "CHANNEL") == []
    tick = START + timedelta(microseconds=1)
    only_start = await survey_stats.stats(COMMAND_LINE, START, tick, "MONTH")
    assert_matches(only_start, expected_buckets(seeded, "MONTH", start=START, end=tick))


async def test_bad_periods_and_groupings(app):
    caller = await _caller()
    with pytest.raises(DomainError) as err:
        await survey_stats.stats(caller, END, START, "MONTH")
    assert err.value.code == ErrorCode.INVALID and err.value.field == ["period", "from"]
    three_years = datetime(2029, 1, 1, tzinfo=BANK)
    assert await survey_stats.stats(caller, START, three_years, "MONTH") == []  # exactly 3 years: allowed
    with pytest.raises(DomainError) as err:
        await survey_stats.stats(caller, START, three_years + timedelta(microseconds=1), "MONTH")
    assert err.value.code == ErrorCode.LIMIT_EXCEEDED and err.value.field == ["period"]
    with pytest.raises(DomainError) as err:
        await survey_stats.stats(caller, START, END, "DAY")
    assert err.value.code == ErrorCode.INVALID and err.value.field == ["groupBy"]


# ---------------------------------------------------------------- roles and scope


@pytest.mark.parametrize("role", ALLOWED)
async def test_roles_that_may_read_survey_statistics(app, role):
    seeded = await seed(count=40)
    buckets = await survey_stats.stats(await _caller(role), START, END, "TEMPLATE")
    assert_matches(buckets, expected_buckets(seeded, "TEMPLATE"), seeded)


@pytest.mark.parametrize("role", REFUSED)
async def test_roles_that_may_not(app, role):
    assert Role.COMPLAINT_HANDLER in REFUSED
    await seed(count=10)
    with pytest.raises(DomainError) as err:
        await survey_stats.stats(await _caller(role), START, END, "MONTH")
    assert err.value.code == ErrorCode.FORBIDDEN
    assert "ANALYST" in err.value.message  # it names the roles that may
    with pytest.raises(DomainError) as err:
        await survey_stats.stats(Caller(), START, END, "MONTH")  # nobody
    assert err.value.code == ErrorCode.FORBIDDEN


@pytest.mark.parametrize("role", sorted(access.BRANCH_BOUND & access.SURVEY_READERS, key=lambda r: r.value))
@pytest.mark.parametrize("group_by", ["BRANCH", "MONTH", "VALUE_TIER"])
async def test_branch_staff_count_their_branch_only(app, role, group_by):
    seeded = await seed(count=120)
    staff = await _caller(role, branch=BRANCHES[1])
    with QueryCounter() as counter:
        buckets = await survey_stats.stats(staff, START, END, group_by)
    assert counter.count == 1
    assert_matches(buckets, expected_buckets(seeded, group_by, branch=BRANCHES[1]))
    everyone = expected_buckets(seeded, group_by)
    assert sum(b.invited for b in buckets) < sum(e.invited for e in everyone.values())
    if group_by == "BRANCH":
        assert [b.key for b in buckets] == [BRANCHES[1]]
    # without a branch of their own they are not limited (services.customers.home_branch)
    unbound = await survey_stats.stats(await _caller(role), START, END, group_by)
    assert_matches(unbound, everyone)


async def test_bank_wide_staff_with_a_branch_see_the_whole_bank(app):
    seeded = await seed(count=60)
    analyst = await _caller(Role.ANALYST, branch=BRANCHES[0])
    assert_matches(await survey_stats.stats(analyst, START, END, "BRANCH"), expected_buckets(seeded, "BRANCH"))


# ---------------------------------------------------------------- through GraphQL

STATS = """query($period: DateRange!, $groupBy: SurveyGroupBy!, $templateId: ID) {
  surveyStats(period: $period, groupBy: $groupBy, templateId: $templateId) {
    key invited responses responseRate nps promoters passives detractors csatAverage
  }
}"""
PERIOD = {"from": START.isoformat(), "to": END.isoformat()}


async def test_survey_stats_through_graphql(gql, staff_factory):
    seeded = await seed(count=80)
    _, token = await staff_factory(Role.ANALYST)
    result = (await gql(STATS, {"period": PERIOD, "groupBy": "TEMPLATE"}, token=token))["surveyStats"]
    expected = expected_buckets(seeded, "TEMPLATE")
    assert {b["key"] for b in result} == set(expected)
    for b in result:
        e = expected[b["key"]]
        assert (b["invited"], b["responses"], b["promoters"], b["passives"], b["detractors"]) == (
            e.invited,
            e.responses,
            e.promoters,
            e.passives,
            e.detractors,
        )
        assert b["responseRate"] == pytest.approx(e.response_rate) and b["nps"] == e.nps
        assert b["csatAverage"] == _approx(e.csat_average)

    template = seeded.templates[1]
    variables = {"period": PERIOD, "groupBy": "MONTH", "templateId": to_global_id("SurveyTemplate", template.id)}
    by_month = (await gql(STATS, variables, token=token))["surveyStats"]
    assert {b["key"]: b["invited"] for b in by_month} == {
        k: e.invited for k, e in expected_buckets(seeded, "MONTH", template=1).items()
    }

    for wrong in (to_global_id("Customer", template.id), "not-an-id"):
        errors = await gql.errors(STATS, {**variables, "templateId": wrong}, token=token)
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
        assert errors[0]["extensions"]["field"] == ["templateId"]
    backwards = {"from": PERIOD["to"], "to": PERIOD["from"]}
    errors = await gql.errors(STATS, {"period": backwards, "groupBy": "MONTH"}, token=token)
    assert errors[0]["extensions"]["code"] == "INVALID"

    _, handler = await staff_factory(Role.COMPLAINT_HANDLER)
    errors = await gql.errors(STATS, {"period": PERIOD, "groupBy": "MONTH"}, token=handler)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    errors = await gql.errors(STATS, {"period": PERIOD, "groupBy": "MONTH"})
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_branch_staff_through_graphql(gql, staff_factory):
    seeded = await seed(count=60)
    _, token = await staff_factory(Role.SERVICE_AGENT, branch=BRANCHES[0])
    result = (await gql(STATS, {"period": PERIOD, "groupBy": "BRANCH"}, token=token))["surveyStats"]
    [mine] = expected_buckets(seeded, "BRANCH", branch=BRANCHES[0]).values()
    assert [(b["key"], b["invited"], b["responses"]) for b in result] == [(BRANCHES[0], mine.invited, mine.responses)]
