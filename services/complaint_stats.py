"""Complaint statistics (`complaintStats`) and the regulator's CSV report (`exportComplaintReport`).

Everything is counted by the database: one GROUP BY statement per call, whatever the number of complaints.
The caller's scope and the period come from the ORM (services.complaints.visible + a received_at filter,
with their parameters bound by Tortoise); the grouping and the aggregates are SQL written here for the
two dialects we run on, SQLite (3.30+, for FILTER) and PostgreSQL, around that query as a derived table
(which both planners flatten into a plain scan of `complaint`). Nothing a caller sends reaches the SQL
text: keys and statuses are our own constants, and the period and scope are bound parameters.

Definitions (per bucket):
- count: complaints received in [start, end);
- open_count: status RECEIVED, ACKNOWLEDGED, IN_PROGRESS, ESCALATED or REOPENED (complaint_rules.OPEN);
- resolved_count: status RESOLVED or CLOSED (a reopened complaint is open again until re-resolved);
- sla_met_rate: resolved-or-closed by their due time, among those resolved or closed plus those still open
  and past due now (withdrawn complaints and open ones not yet due are in neither); None when none;
- avg_resolution_hours: mean of resolved_at - received_at over the resolved-or-closed ones; None if none;
- reopen_rate: share with reopen_count > 0; None when the bucket is empty;
- avg_satisfaction: the mean CSAT score of the answered post-complaint surveys (at most one per complaint,
  kept on the complaint as `satisfaction` when the customer answers: no join); None when none was;
- compensation_total: the sum of compensation_amount, 0 when none.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache

from tortoise.connection import get_connection

from core import csv_safe
from models.complaints import ComplaintCategory, ComplaintReason, ComplaintStatus
from models.jobs import Job
from services import access, clock, complaint_rules as rules, complaints, jobs
from services.access import Caller, require_role
from services.errors import DomainError, ErrorCode, invalid

# docs/DOMAIN.md role table: complaints "all" (ADMIN, MANAGER), the full workflow (COMPLAINT_HANDLER),
# "read, stats" (ANALYST), "read" (AUDITOR: a compliance auditor inspects the figures too).
MAX_YEARS = 3
UNASSIGNED = "UNASSIGNED"
CENT = Decimal("0.01")

# The bank's calendar (Asia/Shanghai) has had no daylight saving time since 1991: a fixed shift from UTC.
BANK_OFFSET_HOURS = int(rules.BANK_TIME.utcoffset(datetime(2000, 1, 1)).total_seconds() // 3600)
REPORT_JOB = "COMPLAINT_REPORT"  # the job kind of exportComplaintReport


def _quote(values) -> str:
    # Enum values of our own models, never user input.
    return ", ".join(f"'{v.value}'" for v in sorted(values, key=lambda v: v.value))


OPEN_SQL = _quote(rules.OPEN)
RESOLVED = frozenset({ComplaintStatus.RESOLVED, ComplaintStatus.CLOSED})
RESOLVED_SQL = _quote(RESOLVED)


# ---------------------------------------------------------------- groupings


@dataclass(frozen=True)
class Grouping:
    """The bucket key of a group-by as SQL over the scoped rows `c`, per dialect.

    On PostgreSQL a period (`unit`: day, ISO week or month) is not computed from `received_at` with time-zone
    arithmetic and to_char() on each row: the row's bank day (or bank week) is found with `date_bin` (integer
    arithmetic on the timestamp, from a bank midnight that is a Monday) and joined to a VALUES list of the
    period's bins, each with the number of its bucket; the keys ("2026-03-01", "2026-W09", "2026-03") are
    formatted here in Python. The join also tells the planner how few groups there are: grouping on an
    expression of `received_at`, it expects one group per row, and sorts them all in one process instead of
    aggregating in parallel with a hash table."""

    sqlite: str
    postgres: str = ""
    unit: str | None = None  # day, week or month for the periods


def _column(name: str, nullable: bool = False) -> Grouping:
    expr = f"COALESCE(c.{name}, '{UNASSIGNED}')" if nullable else f"c.{name}"
    return Grouping(expr, expr)


# A timestamp column in bank time: SQLite's date functions read the stored ISO text (any UTC offset) and
# apply the modifier; PostgreSQL shifts the timestamptz's UTC wall time. SQLite rounds fractional seconds to
# the millisecond (23:59:59.9999 would become the next day), so they are cut off first, keeping the offset:
# a bucket boundary is always on a whole second. (services/survey_stats.py uses these too.)
def sqlite_bank_time(column: str) -> str:
    """The arguments of an SQLite date function (`strftime('%Y-%m', <this>)`) for `column` in bank time."""
    whole_seconds = (
        f"(substr({column}, 1, 19) || CASE WHEN substr({column}, -6, 1) IN ('+', '-') "
        f"THEN substr({column}, -6) WHEN substr({column}, -1) = 'Z' THEN 'Z' ELSE '' END)"
    )
    return f"{whole_seconds}, '{BANK_OFFSET_HOURS:+d} hours'"


def pg_bank_time(column: str) -> str:
    """A PostgreSQL timestamptz `column` as the bank's wall time (a timestamp without time zone)."""
    return f"(({column} AT TIME ZONE 'UTC') + INTERVAL '{BANK_OFFSET_HOURS} hours')"


_SQLITE_LOCAL = sqlite_bank_time("c.received_at")
# ISO week: the week (Monday..Sunday) belongs to the year of its Thursday, and is numbered by it.
_SQLITE_THURSDAY = f"date({_SQLITE_LOCAL}, '-3 days', 'weekday 4')"

# A bank midnight that is a Monday: the origin of the day and week bins (a fixed shift from UTC, see above).
_BANK_MONDAY = date(2000, 1, 3)
_STRIDE = {"day": 1, "week": 7, "month": 1}  # days per bin: a month's bins are its days


def _bank_midnight(day: date) -> str:
    return f"TIMESTAMPTZ '{day.isoformat()} 00:00:00{BANK_OFFSET_HOURS:+03d}:00'"


def _label(unit: str, day: date) -> str:
    """The bucket key of the bin starting on bank day `day` (a Monday for weeks)."""
    if unit == "day":
        return day.isoformat()
    if unit == "month":
        return f"{day.year:04d}-{day.month:02d}"
    year, week, _ = day.isocalendar()  # ISO: the year of the week's Thursday
    return f"{year:04d}-W{week:02d}"


def _bins(unit: str, first: date, last: date) -> list[tuple[date, str]]:
    """(first bank day, bucket key) of every bin from bank day `first` to `last`, and one more each side."""
    stride = _STRIDE[unit]
    if unit == "week":
        first -= timedelta(days=first.weekday())
    days = range(first.toordinal() - stride, last.toordinal() + stride + 1, stride)
    return [(day, _label(unit, day)) for day in map(date.fromordinal, days)]


@lru_cache(maxsize=64)
def _pg_bins_join(i: int, unit: str, first: date, last: date) -> tuple[str, tuple[str, ...]]:
    """JOIN the bins of bank days `first` to `last` as `p{i}` (bin, bucket): a row's bin is the one its received_at
    falls in, and the bucket the number of its key in the returned tuple (an integer: cheaper to hash and group on
    than text). Cached: a dashboard asks for the same periods again and again."""
    keys: list[str] = []
    values = []
    for day, label in _bins(unit, first, last):
        if not keys or keys[-1] != label:
            keys.append(label)
        values.append(f"({_bank_midnight(day)}, {len(keys) - 1})")
    binned = f"date_bin(INTERVAL '{_STRIDE[unit]} days', c.received_at, {_bank_midnight(_BANK_MONDAY)})"
    return f"JOIN (VALUES {', '.join(values)}) AS p{i} (bin, bucket) ON p{i}.bin = {binned}\n", tuple(keys)


GROUPINGS: dict[str, Grouping] = {
    "CATEGORY": _column("category"),
    "REASON": _column("reason"),
    "CHANNEL": _column("channel"),
    "BRANCH": _column("branch", nullable=True),
    "DEPARTMENT": _column("department", nullable=True),
    "PRIORITY": _column("priority"),
    "DAY": Grouping(f"strftime('%Y-%m-%d', {_SQLITE_LOCAL})", unit="day"),
    "WEEK": Grouping(
        f"(strftime('%Y', {_SQLITE_THURSDAY}) || '-W' || "
        f"printf('%02d', (CAST(strftime('%j', {_SQLITE_THURSDAY}) AS INTEGER) - 1) / 7 + 1))",
        unit="week",
    ),
    "MONTH": Grouping(f"strftime('%Y-%m', {_SQLITE_LOCAL})", unit="month"),
}


def _now_literal(now: datetime) -> str:
    """`now` (for "open and past due") is written into the statement as a literal that we format ourselves
    (digits and separators only). It also keeps every call's text distinct, which matters on PostgreSQL: asyncpg
    prepares statements, and after five runs of the same text with bound parameters PostgreSQL may switch to a
    generic plan made for an unknown period (an index scan meant for a few hundred rows), which made a year's
    statistics ~60 % slower from the sixth call on (bench/complaint_stats.py)."""
    return now.astimezone(UTC).isoformat(" ")


def _sqlite_measures(now: datetime) -> str:
    """The aggregates, in one pass over the rows (SQLite)."""
    resolved = f"c.status IN ({RESOLVED_SQL})"
    overdue = f"julianday(c.due_at) < julianday('{_now_literal(now)}')"  # julianday() reads any UTC offset
    met = "julianday(c.resolved_at) <= julianday(c.due_at)"
    hours = "(julianday(c.resolved_at) - julianday(c.received_at)) * 24.0"
    # SQLite keeps decimals as text: sum whole cents as integers (exact below ~9e13).
    compensation = "SUM(CAST(ROUND(CAST(c.compensation_amount AS REAL) * 100) AS INTEGER))"
    return ",\n".join(
        [
            "COUNT(*) AS n",
            f"COUNT(*) FILTER (WHERE c.status IN ({OPEN_SQL})) AS open_n",
            f"COUNT(*) FILTER (WHERE {resolved}) AS resolved_n",
            f"COUNT(*) FILTER (WHERE c.status = '{ComplaintStatus.WITHDRAWN.value}') AS withdrawn_n",
            f"COUNT(*) FILTER (WHERE {resolved} AND {met}) AS met_n",
            f"COUNT(*) FILTER (WHERE c.status IN ({OPEN_SQL}) AND {overdue}) AS overdue_n",
            f"SUM({hours}) FILTER (WHERE {resolved}) AS hours_sum",
            f"COUNT(c.resolved_at) FILTER (WHERE {resolved}) AS hours_n",
            "COUNT(*) FILTER (WHERE c.reopen_count > 0) AS reopened_n",
            f"{compensation} AS compensation",
            "SUM(c.satisfaction) AS csat_sum",
            "COUNT(c.satisfaction) AS csat_n",
        ]
    )


def _pg_per_status(now: datetime) -> str:
    """PostgreSQL, first level: per key and status, the aggregates that need no status test. Grouping on the
    status as well replaces the seven `status IN (...)` tests per row of a one-level statement (the status
    decides which of these count, in `_PG_BY_KEY`), and the rows' hours are summed as an interval (integer
    arithmetic; their epoch as float8 per row cost more)."""
    return ",\n".join(
        [
            "COUNT(*) AS n",
            "COUNT(*) FILTER (WHERE c.resolved_at <= c.due_at) AS met_n",
            f"COUNT(*) FILTER (WHERE c.due_at < CAST('{_now_literal(now)}' AS TIMESTAMPTZ)) AS overdue_n",
            "SUM(c.resolved_at - c.received_at) AS hours",
            "COUNT(c.resolved_at) AS hours_n",
            "COUNT(*) FILTER (WHERE c.reopen_count > 0) AS reopened_n",
            "SUM(c.compensation_amount) AS compensation",
            "SUM(c.satisfaction) AS csat_sum",
            "COUNT(c.satisfaction) AS csat_n",
        ]
    )


# PostgreSQL, second level: the figures of each key from its few (key, status) groups.
_PG_OPEN, _PG_RESOLVED = f"g.status IN ({OPEN_SQL})", f"g.status IN ({RESOLVED_SQL})"
_PG_BY_KEY = ",\n".join(
    [
        "CAST(SUM(g.n) AS BIGINT) AS n",
        f"CAST(SUM(g.n) FILTER (WHERE {_PG_OPEN}) AS BIGINT) AS open_n",
        f"CAST(SUM(g.n) FILTER (WHERE {_PG_RESOLVED}) AS BIGINT) AS resolved_n",
        f"CAST(SUM(g.n) FILTER (WHERE g.status = '{ComplaintStatus.WITHDRAWN.value}') AS BIGINT) AS withdrawn_n",
        f"CAST(SUM(g.met_n) FILTER (WHERE {_PG_RESOLVED}) AS BIGINT) AS met_n",
        f"CAST(SUM(g.overdue_n) FILTER (WHERE {_PG_OPEN}) AS BIGINT) AS overdue_n",
        f"date_part('epoch', SUM(g.hours) FILTER (WHERE {_PG_RESOLVED})) / 3600.0 AS hours_sum",
        f"CAST(SUM(g.hours_n) FILTER (WHERE {_PG_RESOLVED}) AS BIGINT) AS hours_n",
        "CAST(SUM(g.reopened_n) AS BIGINT) AS reopened_n",
        # numeric: exact; as text so that the value needs no driver-specific handling
        "CAST(SUM(g.compensation) AS TEXT) AS compensation",
        "SUM(g.csat_sum) AS csat_sum",
        "CAST(SUM(g.csat_n) AS BIGINT) AS csat_n",
    ]
)


def _pg_statement(
    inner_sql: str, keys: list[Grouping], start: datetime, end: datetime, now: datetime
) -> tuple[str, dict[int, tuple[str, ...]]]:
    """The statement, and for each period key (by position) the keys its bucket numbers stand for."""
    selected, joins, buckets = [], [], {}
    for i, key in enumerate(keys):
        if key.unit is None:
            selected.append(f"{key.postgres} AS k{i}")
        else:
            first, last = (moment.astimezone(rules.BANK_TIME).date() for moment in (start, end))
            join, buckets[i] = _pg_bins_join(i, key.unit, first, last)
            joins.append(join)
            selected.append(f"p{i}.bucket AS k{i}")
    key_names = ", ".join(f"g.k{i}" for i in range(len(keys)))
    positions = ", ".join(str(i + 1) for i in range(len(keys) + 1))
    sql = (
        f"SELECT {key_names},\n{_PG_BY_KEY}\nFROM (\n"
        f"SELECT {', '.join(selected)}, c.status AS status,\n{_pg_per_status(now)}\n"
        f"FROM ({inner_sql}) c\n{''.join(joins)}GROUP BY {positions}\n) g\nGROUP BY {key_names}"
    )
    return sql, buckets


def _sqlite_statement(inner_sql: str, keys: list[Grouping], now: datetime) -> str:
    grouped = [key.sqlite for key in keys]
    return (
        f"SELECT {', '.join(f'{k} AS k{i}' for i, k in enumerate(grouped))},\n{_sqlite_measures(now)}\n"
        f"FROM ({inner_sql}) c\nGROUP BY {', '.join(grouped)}"
    )


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Bucket:
    key: str
    count: int
    open_count: int
    resolved_count: int
    sla_met_rate: float | None
    avg_resolution_hours: float | None
    reopen_rate: float | None
    avg_satisfaction: float | None
    compensation_total: Decimal


@dataclass
class Figures:
    """The raw sums of one group; they add up across groups (the report's totals row)."""

    count: int = 0
    open_count: int = 0
    resolved_count: int = 0
    withdrawn_count: int = 0
    sla_met: int = 0
    overdue_open: int = 0
    hours_sum: float = 0.0
    hours_n: int = 0
    reopened: int = 0
    compensation: Decimal = Decimal("0.00")
    csat_sum: float = 0.0  # CSAT scores of the answered post-complaint surveys
    csat_n: int = 0

    @property
    def sla_missed(self) -> int:
        """Resolved or closed after their due time, and still open past it."""
        return self.resolved_count - self.sla_met + self.overdue_open

    @property
    def sla_met_rate(self) -> float | None:
        judged = self.sla_met + self.sla_missed
        return self.sla_met / judged if judged else None

    @property
    def avg_resolution_hours(self) -> float | None:
        return self.hours_sum / self.hours_n if self.hours_n else None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.count if self.count else None

    @property
    def avg_satisfaction(self) -> float | None:
        return self.csat_sum / self.csat_n if self.csat_n else None

    def __iadd__(self, other: Figures) -> Figures:
        for name in (
            "count",
            "open_count",
            "resolved_count",
            "withdrawn_count",
            "sla_met",
            "overdue_open",
            "hours_sum",
            "hours_n",
            "reopened",
            "compensation",
            "csat_sum",
            "csat_n",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def bucket(self, key: str) -> Bucket:
        return Bucket(
            key=key,
            count=self.count,
            open_count=self.open_count,
            resolved_count=self.resolved_count,
            sla_met_rate=self.sla_met_rate,
            avg_resolution_hours=self.avg_resolution_hours,
            reopen_rate=self.reopen_rate,
            avg_satisfaction=self.avg_satisfaction,
            compensation_total=self.compensation,
        )

    @classmethod
    def from_row(cls, row, dialect: str) -> Figures:
        raw = row["compensation"]
        if raw is None:
            compensation = Decimal("0.00")
        elif dialect == "postgres":
            compensation = Decimal(str(raw)).quantize(CENT)
        else:
            compensation = (Decimal(int(raw)) / 100).quantize(CENT)
        return cls(
            count=int(row["n"]),
            open_count=int(row["open_n"] or 0),
            resolved_count=int(row["resolved_n"] or 0),
            withdrawn_count=int(row["withdrawn_n"] or 0),
            sla_met=int(row["met_n"] or 0),
            overdue_open=int(row["overdue_n"] or 0),
            hours_sum=float(row["hours_sum"] or 0),
            hours_n=int(row["hours_n"] or 0),
            reopened=int(row["reopened_n"] or 0),
            compensation=compensation,
            csat_sum=float(row["csat_sum"] or 0),
            csat_n=int(row["csat_n"] or 0),
        )


def _aware(value: datetime) -> datetime:
    """In UTC, as the rows are stored (a naive value is taken to be UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _years_later(value: datetime, years: int) -> datetime:
    try:
        return value.replace(year=value.year + years)
    except ValueError:  # 29 February
        return value.replace(year=value.year + years, day=28)


def check_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = _aware(start), _aware(end)
    if start > end:
        raise invalid(["period", "from"], "The period's start must not be after its end")
    if end > _years_later(start.astimezone(rules.BANK_TIME), MAX_YEARS):  # calendar years of the bank
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"A period may span at most {MAX_YEARS} years", ["period"])
    return start, end


def _grouping(group_by) -> Grouping:
    name = getattr(group_by, "value", group_by)  # a plain string or an enum (the GraphQL one)
    grouping = GROUPINGS.get(str(name).upper())
    if grouping is None:
        raise invalid("groupBy", f"groupBy must be one of {', '.join(GROUPINGS)}")
    return grouping


async def _aggregate(
    caller: Caller, start: datetime, end: datetime, keys: list[Grouping]
) -> list[tuple[tuple[str, ...], Figures]]:
    """One statement: the caller's complaints received in [start, end), grouped by `keys`."""
    connection = get_connection("default")
    dialect = connection.capabilities.dialect
    scoped = (
        complaints.visible(caller)
        .filter(received_at__gte=start, received_at__lt=end)
        .values(
            "category",
            "reason",
            "channel",
            "branch",
            "department",
            "priority",
            "status",
            "received_at",
            "due_at",
            "resolved_at",
            "reopen_count",
            "compensation_amount",
            "satisfaction",  # the CSAT score of the complaint's post-complaint survey (NULL: none)
        )
    )
    # QuerySet.sql() (public) binds the query to its connection and builds it; `scoped.query` is then the
    # pypika query whose text and bound parameters Tortoise itself would send.
    scoped.sql()
    inner_sql, params = scoped.query.get_parameterized_sql()
    buckets: dict[int, tuple[str, ...]] = {}
    if dialect == "postgres":
        sql, buckets = _pg_statement(inner_sql, keys, start, end, clock.now())
    else:
        sql = _sqlite_statement(inner_sql, keys, clock.now())
    _, rows = await connection.execute_query(sql, params)

    def key(row) -> tuple[str, ...]:
        return tuple(buckets[i][row[f"k{i}"]] if i in buckets else row[f"k{i}"] for i in range(len(keys)))

    return [(key(row), Figures.from_row(row, dialect)) for row in rows]


async def stats(caller: Caller, start: datetime, end: datetime, group_by: str) -> list[Bucket]:
    """complaintStats: one bucket per key present in the period, sorted by key."""
    require_role(caller, access.COMPLAINT_STATS_READERS)
    start, end = check_period(start, end)
    grouping = _grouping(group_by)
    rows = await _aggregate(caller, start, end, [grouping])
    return sorted((figures.bucket(str(key[0])) for key, figures in rows), key=lambda b: b.key)


# ---------------------------------------------------------------- the regulator's report

# Business type (JR/T 0169-2018, part B) and cause (part C), as the regulator's forms name them.
CATEGORY_NAMES = {
    ComplaintCategory.DEPOSIT: "存款",
    ComplaintCategory.LOAN: "贷款",
    ComplaintCategory.BANK_CARD: "借记卡",
    ComplaintCategory.CREDIT_CARD: "信用卡",
    ComplaintCategory.PAYMENT_SETTLEMENT: "支付结算",
    ComplaintCategory.WEALTH_MANAGEMENT: "理财",
    ComplaintCategory.AGENCY_SALES: "代理业务",
    ComplaintCategory.RMB_CASH: "人民币管理",
    ComplaintCategory.PERSONAL_INFORMATION: "个人金融信息",
    ComplaintCategory.E_BANKING: "电子银行",
    ComplaintCategory.OTHER: "其他",
}
REASON_NAMES = {
    ComplaintReason.SERVICE_ATTITUDE: "服务态度及服务质量",
    ComplaintReason.SERVICE_FACILITIES: "服务设施、设备",
    ComplaintReason.RULES_AND_PROCESS: "制度、业务规则与流程",
    ComplaintReason.MARKETING_PRACTICE: "营销方式和手段",
    ComplaintReason.INFORMATION_DISCLOSURE: "信息披露",
    ComplaintReason.FEES_AND_PRICING: "定价收费",
    ComplaintReason.CONTRACT_TERMS: "合同条款",
    ComplaintReason.FREE_CHOICE: "消费者自主选择权",
    ComplaintReason.FUNDS_SECURITY: "资金安全",
    ComplaintReason.INFORMATION_SECURITY: "消费者信息安全",
    ComplaintReason.DEBT_COLLECTION: "债务催收方式和手段",
    ComplaintReason.SYSTEM_FAILURE: "业务系统故障",
    ComplaintReason.OTHER: "其他",
}
REPORT_COLUMNS = [
    "业务类别 Business type",
    "业务类别名称 Business type name",
    "投诉原因 Cause",
    "投诉原因名称 Cause name",
    "受理数 Received",
    "未办结数 Open",
    "已办结数 Resolved",
    "撤回数 Withdrawn",
    "按时办结数 SLA met",
    "超时数 SLA missed",
    "按时办结率 SLA met rate",
    "平均处理时长(小时) Avg resolution hours",
    "补偿金额 Compensation total",
]
TOTAL_LABEL = "合计 Total"
BOM = "\ufeff"


def _order(enum: type[Enum], value: str) -> tuple[int, str]:
    """JR/T order (the enums' declaration order); anything unknown after it, alphabetically."""
    members = [m.value for m in enum]
    return (members.index(value), "") if value in members else (len(members), value)


def _report_row(first: list[str], f: Figures) -> list[str]:
    rate = f.sla_met_rate
    hours = f.avg_resolution_hours
    return [
        *first,
        str(f.count),
        str(f.open_count),
        str(f.resolved_count),
        str(f.withdrawn_count),
        str(f.sla_met),
        str(f.sla_missed),
        "" if rate is None else f"{rate:.4f}",
        "" if hours is None else f"{hours:.2f}",
        f"{f.compensation.quantize(CENT)}",
    ]


def report_filename(start: datetime, end: datetime) -> str:
    """complaints-FIRSTDAY-LASTDAY.csv, in bank days; the end is exclusive, so its last day is the one before."""
    first = start.astimezone(rules.BANK_TIME).date()
    last = max(start, end - timedelta(microseconds=1)).astimezone(rules.BANK_TIME).date()
    return f"complaints-{first:%Y%m%d}-{last:%Y%m%d}.csv"


def render_report(rows: list[tuple[tuple[str, ...], Figures]]) -> tuple[str, int]:
    """The CSV text (UTF-8 BOM for Excel, CRLF lines) and its number of data rows (totals row excluded)."""
    rows = sorted(rows, key=lambda r: (_order(ComplaintCategory, r[0][0]), _order(ComplaintReason, r[0][1])))
    out = io.StringIO()
    writer = csv_safe.writer(out)
    writer.writerow(REPORT_COLUMNS)
    total = Figures()
    for (category, reason), figures in rows:
        names = [category, CATEGORY_NAMES.get(category, ""), reason, REASON_NAMES.get(reason, "")]
        writer.writerow(_report_row(names, figures))
        total += figures
    writer.writerow(_report_row([TOTAL_LABEL, "", "", ""], total))
    return BOM + out.getvalue(), len(rows)


async def complaint_report(params: dict, progress) -> dict:
    """Job handler (COMPLAINT_REPORT): the period's complaints per (business type, cause) as a CSV.

    Idempotent: it only reads, so a re-delivered job simply computes the report again."""
    job = progress.job
    caller = await jobs.requester(job, access.COMPLAINT_STATS_READERS, "this report")
    start, end = check_period(datetime.fromisoformat(params["start"]), datetime.fromisoformat(params["end"]))
    rows = await _aggregate(caller, start, end, [GROUPINGS["CATEGORY"], GROUPINGS["REASON"]])
    await progress.set_total(len(rows))
    text, count = render_report(rows)
    await progress.advance(count)
    return {
        "filename": report_filename(start, end),
        "contentType": "text/csv",
        "rows": count,
        "csv": text,
        "downloadPath": f"/jobs/{job.id}/download",
    }


async def start_report(caller: Caller, start: datetime, end: datetime, enqueue: jobs.Enqueue) -> Job:
    """exportComplaintReport: the same roles and period rules as `stats`; a worker builds the CSV."""
    require_role(caller, access.COMPLAINT_STATS_READERS)
    start, end = check_period(start, end)
    params = {"start": start.isoformat(), "end": end.isoformat()}
    return await jobs.create(caller, REPORT_JOB, params, enqueue)
