"""Survey statistics (`surveyStats`): invitations, responses, NPS and CSAT per template, channel, branch, value
tier or bank month.

Everything is counted by the database: one GROUP BY statement per call, whatever the number of invitations.
As in services/complaint_stats.py, the rows come from the ORM (the caller's scope, the period, the template
and the exclusion of suppressed invitations as filters, the template, the customer and the response as LEFT
OUTER JOINs, all with their parameters bound by Tortoise), and the grouping and the aggregates are SQL written
here for SQLite and PostgreSQL around that query as a derived table. Nothing a caller sends reaches the SQL
text: keys, tier floors and categories are our own constants; the period, template and scope are bound.

Definitions (per bucket):
- invited: invitations created in [start, end) that were not SUPPRESSED (a suppressed invitation was never
  sent); `responses`: the responses to those invitations (at most one each), whenever they were submitted;
- response_rate: responses / invited (0.0 when nobody was invited; a bucket always has invitations);
- promoters, passives, detractors: responses by nps_category (docs/DOMAIN.md: 9-10, 7-8, 0-6);
- nps: round(100 * (promoters - detractors) / (promoters + passives + detractors), 1), -100..100; None when
  no response has an NPS answer;
- csat_average: the mean csat_score of the responses that have one (1..5); None when none has.

Keys (strings, as the contract's SurveyStatBucket.key):
- TEMPLATE: "<template name> #<template id>" (its primary key): names are neither unique nor fixed
  (updateSurveyTemplate renames), so the id keeps two templates of the same name apart; sorted by name, then id;
- CHANNEL: the invitation's channel (Channel value);
- BRANCH: the customer's branch, "UNASSIGNED" when the customer has none (as complaint statistics);
- VALUE_TIER: the customer's value tier by AUM now (customer_rules.TIER_FLOORS: PRIVATE_BANKING, WEALTH,
  AFFLUENT, MASS);
- MONTH: "YYYY-MM" of the invitation's creation in bank time (Asia/Shanghai).
Buckets are sorted by key (TEMPLATE: by name, then id); only keys with invitations appear.

Who: access.SURVEY_READERS; branch-bound staff (services.customers.home_branch) count only the invitations of
their branch's customers (services.customers.visible), bank-wide staff every one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tortoise.connection import get_connection
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from models.surveys import InvitationStatus, NpsCategory, SurveyInvitation
from services import access, customer_rules, customers
from services.access import Caller, require_role
from services.complaint_stats import UNASSIGNED, check_period, pg_bank_time, sqlite_bank_time
from services.errors import invalid


@dataclass(frozen=True)
class SurveyBucket:
    key: str
    invited: int
    responses: int
    response_rate: float
    nps: float | None
    promoters: int
    passives: int
    detractors: int
    csat_average: float | None


# ---------------------------------------------------------------- groupings


@dataclass(frozen=True)
class Grouping:
    """The key columns of a group-by as SQL over the scoped rows `c` (per dialect), and how a row's key columns
    become the bucket's key and its place in the order. PostgreSQL may group on a value and format only the
    resulting groups (`postgres_label`, "{}" standing for the grouped value), as complaint statistics do."""

    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]
    postgres_label: str = "{}"
    key: Callable[[tuple], str] = lambda values: str(values[0])
    order: Callable[[tuple], tuple] = lambda values: (str(values[0]),)


def _same(*columns: str) -> Grouping:
    return Grouping(columns, columns)


def _tier_case(aum: str) -> str:
    """The value tier of an AUM expression; the floors are our own Decimal constants, highest first."""
    whens = " ".join(f"WHEN {aum} >= {floor} THEN '{tier}'" for tier, floor in customer_rules.TIER_FLOORS[:-1])
    return f"CASE {whens} ELSE '{customer_rules.TIER_FLOORS[-1][0]}' END"


GROUPINGS: dict[str, Grouping] = {
    "TEMPLATE": Grouping(
        ("c.template_id", "c.template_name"),
        ("c.template_id", "c.template_name"),
        key=lambda values: f"{values[1]} #{values[0]}",
        order=lambda values: (str(values[1]), int(values[0])),
    ),
    "CHANNEL": _same("c.channel"),
    "BRANCH": _same(f"COALESCE(c.branch, '{UNASSIGNED}')"),
    # SQLite keeps decimals as text (VARCHAR affinity: compared with a number, it would compare as text).
    "VALUE_TIER": Grouping((_tier_case("CAST(c.aum AS REAL)"),), (_tier_case("c.aum"),)),
    # PostgreSQL groups on the month's first bank instant and formats only the groups.
    "MONTH": Grouping(
        (f"strftime('%Y-%m', {sqlite_bank_time('c.created_at')})",),
        (f"date_trunc('month', {pg_bank_time('c.created_at')})",),
        postgres_label="to_char({}, 'YYYY-MM')",
    ),
}


def _grouping(group_by) -> Grouping:
    name = str(getattr(group_by, "value", group_by)).upper()  # a plain string or an enum (the GraphQL one)
    grouping = GROUPINGS.get(name)
    if grouping is None:
        raise invalid("groupBy", f"groupBy must be one of {', '.join(GROUPINGS)}")
    return grouping


# ---------------------------------------------------------------- the statement


def _scoped(caller: Caller) -> QuerySet[SurveyInvitation]:
    """The caller's invitations: a branch-bound caller's are those of the customers they may see."""
    if customers.home_branch(caller) is None:
        return SurveyInvitation.all()
    return SurveyInvitation.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


def _measures() -> str:
    categories = {c: f"'{c.value}'" for c in NpsCategory}  # enum values of our own model
    return ",\n".join(
        [
            "COUNT(*) AS invited",
            "COUNT(c.response_id) AS responses",
            f"COUNT(*) FILTER (WHERE c.nps_category = {categories[NpsCategory.PROMOTER]}) AS promoters",
            f"COUNT(*) FILTER (WHERE c.nps_category = {categories[NpsCategory.PASSIVE]}) AS passives",
            f"COUNT(*) FILTER (WHERE c.nps_category = {categories[NpsCategory.DETRACTOR]}) AS detractors",
            "AVG(c.csat_score) AS csat_average",
        ]
    )


def nps(promoters: int, passives: int, detractors: int) -> float | None:
    answered = promoters + passives + detractors
    return round(100 * (promoters - detractors) / answered, 1) if answered else None


def _bucket(key: str, row) -> SurveyBucket:
    invited, responses = int(row["invited"]), int(row["responses"] or 0)
    promoters, passives, detractors = (int(row[n] or 0) for n in ("promoters", "passives", "detractors"))
    csat = row["csat_average"]
    return SurveyBucket(
        key=key,
        invited=invited,
        responses=responses,
        response_rate=responses / invited if invited else 0.0,
        nps=nps(promoters, passives, detractors),
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        csat_average=None if csat is None else float(csat),
    )


async def stats(
    caller: Caller, start: datetime, end: datetime, group_by: str, template_id: int | None = None
) -> list[SurveyBucket]:
    """surveyStats: one bucket per key with invitations in the period, sorted by key; one statement."""
    require_role(caller, access.SURVEY_READERS)
    start, end = check_period(start, end)  # the rules of complaint statistics: INVALID, LIMIT_EXCEEDED
    grouping = _grouping(group_by)
    scoped = (
        _scoped(caller).filter(created_at__gte=start, created_at__lt=end).exclude(status=InvitationStatus.SUPPRESSED)
    )
    if template_id is not None:
        scoped = scoped.filter(template_id=template_id)
    scoped = scoped.values(
        "template_id",
        "channel",
        "created_at",
        template_name="template__name",
        branch="customer__branch",
        aum="customer__aum",
        response_id="response__id",
        nps_category="response__nps_category",
        csat_score="response__csat_score",
    )
    # QuerySet.sql() (public) binds the query to its connection and builds it; `scoped.query` is then the
    # pypika query whose text and bound parameters Tortoise itself would send.
    connection = get_connection("default")
    dialect = connection.capabilities.dialect
    scoped.sql()
    inner_sql, params = scoped.query.get_parameterized_sql()
    columns = grouping.postgres if dialect == "postgres" else grouping.sqlite
    label = grouping.postgres_label if dialect == "postgres" else "{}"
    selected = ", ".join(f"{label.format(column)} AS k{i}" for i, column in enumerate(columns))
    sql = f"SELECT {selected},\n{_measures()}\nFROM ({inner_sql}) c\nGROUP BY {', '.join(columns)}"
    _, rows = await connection.execute_query(sql, params)
    keyed = []
    for row in rows:
        values = tuple(row[f"k{i}"] for i in range(len(columns)))
        keyed.append((grouping.order(values), _bucket(grouping.key(values), row)))
    return [bucket for _, bucket in sorted(keyed, key=lambda pair: pair[0])]
