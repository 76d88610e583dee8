"""Benchmark of complaint statistics (issue 5: "complaintStats latency over 100,000 complaints, under 200 ms
per group-by on PostgreSQL").

    .venv/bin/python bench/complaint_stats.py --rows 100000 \
        --database-url postgres://postgres@127.0.0.1:5432/stats_bench

What it does, in one process:
 1. drops and recreates the `public` schema of the database and migrates it (core.db.migrate); refuses a
    database named `test`, the one the test suite uses, unless --force;
 2. writes 20,000 customers over every branch (services.demo_data.BRANCHES) and N complaints with asyncpg
    COPY: received over the last 12 months, every business type, cause, channel and branch, priorities
    by the docs/DOMAIN.md rules, and a realistic life: old complaints mostly resolved and closed (resolution
    times from hours to past the deadline, some extended to 30 or 60 days, some reopened, some with
    compensation), a few withdrawn or still open and breached, recent ones still in the workflow; then
    ANALYZE, as autovacuum would;
 3. times services.complaint_stats.stats() for every group-by over the whole 12 months (every row in the
    period: the worst case), through the ORM's connection pool as the API does: 1 warm-up, then the
    median (and min/max) of --runs runs;
 4. measures, in turn with each of those runs (so that a load coming and going on a shared machine slows
    them alike), on a raw asyncpg connection whose statements are always planned for their own parameters:
    - the FLOOR: `SELECT category, count(*) FROM complaint WHERE received_at >= $1 AND received_at < $2
      GROUP BY category`. It scans the same rows but does not compute the same answer: it reads 15 of the
      37 columns (complaintStats needs the 37th, `satisfaction`) and counts, with no bank-time bucket;
    - PLAIN: the same answer written the plain way, one GROUP BY per group-by with a FILTER per figure and
      the time zone by name (bench.complaint_stats.plain_sql); its rows must equal complaintStats' buckets;
    and prints each group-by's ratio to both; exits non-zero when a group-by takes 200 ms or more, or more
    than twice its floor;
 5. times the COMPLAINT_REPORT job (start_report + services.jobs.run in-process) the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from tortoise import Tortoise

from bench import common
from core import db
from models.complaints import ComplaintCategory, ComplaintReason, ComplaintStatus
from models.customers import Channel
from models.follow_ups import Priority
from models.jobs import Job, JobStatus
from models.staff import Department
from services import clock, complaint_rules, complaint_stats, jobs
from services.access import COMMAND_LINE
from services.demo_data import BRANCHES
from tasks.broker import declare_all

TARGET_MS = 200.0
MAX_RATIO = 2.0  # each group-by's median within 2x of the floor measured alongside it
CUSTOMERS = 20_000
S = ComplaintStatus
COMPLAINT_COLUMNS = [
    "reference_no",
    "customer_id",
    "branch",
    "channel",
    "category",
    "reason",
    "suggested_category",
    "suggested_reason",
    "priority",
    "priority_rank",
    "status",
    "summary",
    "description",
    "amount_in_dispute",
    "received_at",
    "acknowledged_at",
    "due_at",
    "extension_count",
    "escalation_level",
    "department",
    "resolution",
    "compensation_amount",
    "customer_accepted",
    "resolved_at",
    "closed_at",
    "withdrawn_at",
    "reopen_count",
    "sla_at_risk_recorded",
    "sla_breached_recorded",
    "survey_sent",
    "version",
    "created_at",
    "updated_at",
]
CUSTOMER_COLUMNS = [
    "customer_no",
    "kind",
    "name",
    "kyc_status",
    "status",
    "branch",
    "completeness",
    "aum",
    "debt",
    "version",
    "created_at",
    "updated_at",
]
# Rough shares of a retail bank's complaints: cards and fees lead, cash and collection trail.
CATEGORY_WEIGHTS = {
    ComplaintCategory.CREDIT_CARD: 30,
    ComplaintCategory.BANK_CARD: 12,
    ComplaintCategory.LOAN: 12,
    ComplaintCategory.E_BANKING: 10,
    ComplaintCategory.WEALTH_MANAGEMENT: 8,
    ComplaintCategory.DEPOSIT: 7,
    ComplaintCategory.PAYMENT_SETTLEMENT: 7,
    ComplaintCategory.AGENCY_SALES: 5,
    ComplaintCategory.PERSONAL_INFORMATION: 4,
    ComplaintCategory.RMB_CASH: 2,
    ComplaintCategory.OTHER: 3,
}
REASON_WEIGHTS = {
    ComplaintReason.FEES_AND_PRICING: 18,
    ComplaintReason.SERVICE_ATTITUDE: 14,
    ComplaintReason.RULES_AND_PROCESS: 13,
    ComplaintReason.DEBT_COLLECTION: 9,
    ComplaintReason.MARKETING_PRACTICE: 8,
    ComplaintReason.SYSTEM_FAILURE: 8,
    ComplaintReason.INFORMATION_DISCLOSURE: 6,
    ComplaintReason.CONTRACT_TERMS: 5,
    ComplaintReason.FUNDS_SECURITY: 5,
    ComplaintReason.SERVICE_FACILITIES: 4,
    ComplaintReason.INFORMATION_SECURITY: 4,
    ComplaintReason.FREE_CHOICE: 2,
    ComplaintReason.OTHER: 4,
}
CHANNEL_WEIGHTS = {
    Channel.PHONE: 35,
    Channel.BRANCH: 20,
    Channel.MOBILE_APP: 12,
    Channel.ONLINE_BANKING: 6,
    Channel.WECHAT: 10,
    Channel.EMAIL: 4,
    Channel.LETTER: 2,
    Channel.REGULATOR: 6,
    Channel.SMS: 3,
    Channel.VIDEO: 2,
}
HANDLING_DEPARTMENTS = [Department.COMPLAINTS] * 6 + [
    Department.CALL_CENTER,
    Department.BRANCH,
    Department.RISK,
    Department.OPERATIONS,
    Department.COMPLIANCE,
]
OPEN_STATES = [S.RECEIVED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.ESCALATED]


def _weighted(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _complaint(
    rng: random.Random, number: int, customers: list[tuple[int, str]], now: datetime, first: datetime
) -> tuple:
    customer_id, branch = customers[rng.randrange(len(customers))]
    received = first + timedelta(seconds=rng.randrange(int((now - first).total_seconds())))
    category, reason, channel = (
        _weighted(rng, CATEGORY_WEIGHTS),
        _weighted(rng, REASON_WEIGHTS),
        _weighted(rng, CHANNEL_WEIGHTS),
    )
    amount = Decimal(rng.randint(1, 200_000)).quantize(Decimal("0.01")) if rng.random() < 0.3 else None
    if reason == ComplaintReason.FUNDS_SECURITY or channel == Channel.REGULATOR or (amount and amount >= 50_000):
        priority = Priority.URGENT
    else:
        priority = rng.choices([Priority.LOW, Priority.NORMAL, Priority.HIGH], weights=[10, 75, 15])[0]
    extensions = rng.choices([0, 1, 2], weights=[85, 12, 3])[0]
    due = complaint_rules.due_after(received, extensions)
    age = now - received
    acknowledged = received + timedelta(hours=rng.uniform(0.5, 48))
    resolved = closed = withdrawn = None
    reopens, escalation, compensation, accepted, resolution = 0, 0, None, None, None
    # Resolution time: most within days, a tail past the 15-day deadline.
    took = timedelta(hours=min(rng.lognormvariate(4.3, 1.0), 24 * 75))
    if rng.random() < 0.04 and age > timedelta(days=2):
        status, withdrawn = S.WITHDRAWN, received + min(age, timedelta(days=rng.uniform(1, 10)))
    elif received + took < now:
        resolved = received + took
        status = S.CLOSED if now - resolved > timedelta(days=rng.uniform(1, 14)) else S.RESOLVED
        resolution = "已向客户解释并处理完毕 / Explained and settled"
        if rng.random() < 0.12:
            compensation = (
                Decimal(rng.choice([20, 50, 88, 100, 200, 500, 1000, 5000])) + Decimal(rng.randint(0, 99)) / 100
            )
        if status == S.CLOSED:
            closed = resolved + timedelta(days=rng.uniform(0.5, 10))
            closed = min(closed, now)
            accepted = rng.random() < 0.9
        if rng.random() < 0.05:
            reopens = 1
            if rng.random() < 0.3:  # reopened and not yet re-resolved
                status, resolved, closed, accepted = S.REOPENED, None, None, None
    else:
        status = rng.choice(OPEN_STATES) if age > timedelta(hours=2) else S.RECEIVED
    if status not in (S.RECEIVED, S.WITHDRAWN) or rng.random() < 0.5:
        department = rng.choice(HANDLING_DEPARTMENTS)
    else:
        department = None
    breached = status in complaint_rules.OPEN and now > due
    if breached or status == S.ESCALATED:
        escalation = 1
    return (
        f"CMP-{received.astimezone(complaint_rules.BANK_TIME):%Y%m%d}-{number:06d}"[:24],
        customer_id,
        branch,
        channel.value,
        category.value,
        reason.value,
        category.value,
        reason.value,
        priority.value,
        complaint_rules.PRIORITY_RANK[priority],
        status.value,
        f"{category.value} / {reason.value}",
        "基准测试生成的投诉 / generated for the benchmark",
        amount,
        received,
        acknowledged if status != S.RECEIVED else None,
        due,
        extensions,
        escalation,
        department.value if department else None,
        resolution,
        compensation,
        accepted,
        resolved,
        closed,
        withdrawn,
        reopens,
        breached or (status in complaint_rules.OPEN and due - now <= timedelta(days=3)),
        breached,
        status == S.CLOSED,
        1 + reopens,
        received,
        max(filter(None, [received, resolved, closed, withdrawn])),
    )


async def populate(url: str, rows: int, seed: int, now: datetime, first: datetime) -> dict:
    rng = random.Random(seed)
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        started = time.perf_counter()
        branches = [b.name for b in BRANCHES]
        customer_rows = [
            (
                f"C{n:010d}",
                "INDIVIDUAL",
                f"客户{n}",
                "VERIFIED",
                "ACTIVE",
                branches[n % len(branches)],
                1.0,
                0,
                0,
                1,
                now,
                now,
            )
            for n in range(1, CUSTOMERS + 1)
        ]
        await conn.copy_records_to_table("customer", records=customer_rows, columns=CUSTOMER_COLUMNS)
        customers = [(r["id"], r["branch"]) for r in await conn.fetch("SELECT id, branch FROM customer")]
        batch: list[tuple] = []
        for number in range(1, rows + 1):
            batch.append(_complaint(rng, number, customers, now, first))
            if len(batch) == 10_000:
                await conn.copy_records_to_table("complaint", records=batch, columns=COMPLAINT_COLUMNS)
                batch = []
        if batch:
            await conn.copy_records_to_table("complaint", records=batch, columns=COMPLAINT_COLUMNS)
        await conn.execute("ANALYZE customer; ANALYZE complaint;")
        elapsed = time.perf_counter() - started
        summary = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT category) AS categories, count(DISTINCT reason) AS reasons, "
            "count(DISTINCT channel) AS channels, count(DISTINCT branch) AS branches, "
            "count(*) FILTER (WHERE status IN ('RESOLVED', 'CLOSED')) AS resolved, "
            "count(*) FILTER (WHERE status = 'WITHDRAWN') AS withdrawn, "
            "count(*) FILTER (WHERE reopen_count > 0) AS reopened, "
            "count(*) FILTER (WHERE compensation_amount IS NOT NULL) AS compensated, "
            "pg_size_pretty(pg_total_relation_size('complaint')) AS size FROM complaint"
        )
        return {**dict(summary), "seconds": elapsed}
    finally:
        await conn.close()


async def _timed(call, runs: int) -> tuple[list[float], object]:
    result = await call()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


async def _interleaved(calls: dict, runs: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    """One warm-up each, then `runs` rounds of one call of each in turn: on a shared machine a load that comes
    and goes slows them alike, so the ratios stay meaningful when the absolute times do not."""
    results = {name: await call() for name, call in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            results[name] = await call()
            times[name].append((time.perf_counter() - started) * 1000)
    return times, results


FLOOR_SQL = "SELECT category, count(*) FROM complaint WHERE received_at >= $1 AND received_at < $2 GROUP BY category"
_OPEN = ", ".join(f"'{s.value}'" for s in complaint_rules.OPEN)
_RESOLVED = "'RESOLVED', 'CLOSED'"
_LOCAL = "(received_at AT TIME ZONE 'Asia/Shanghai')"
PLAIN_KEYS = {
    "CATEGORY": "category",
    "REASON": "reason",
    "CHANNEL": "channel",
    "BRANCH": "COALESCE(branch, 'UNASSIGNED')",
    "DEPARTMENT": "COALESCE(department, 'UNASSIGNED')",
    "PRIORITY": "priority",
    "DAY": f"to_char({_LOCAL}, 'YYYY-MM-DD')",
    "WEEK": f"to_char({_LOCAL}, 'IYYY-\"W\"IW')",
    "MONTH": f"to_char({_LOCAL}, 'YYYY-MM')",
}


def plain_sql(group_by: str) -> str:
    """The same answer as complaintStats, written the plain way: one GROUP BY of the key, a FILTER per figure,
    the bank's time zone by name."""
    return (
        f"SELECT {PLAIN_KEYS[group_by]} AS key, count(*) AS n,\n"
        f"count(*) FILTER (WHERE status IN ({_OPEN})) AS open_n,\n"
        f"count(*) FILTER (WHERE status IN ({_RESOLVED})) AS resolved_n,\n"
        f"count(*) FILTER (WHERE status IN ({_RESOLVED}) AND resolved_at <= due_at) AS met_n,\n"
        f"count(*) FILTER (WHERE status IN ({_OPEN}) AND due_at < $3) AS overdue_n,\n"
        f"avg(date_part('epoch', resolved_at - received_at) / 3600) FILTER (WHERE status IN ({_RESOLVED})) AS hours,\n"
        "avg(CASE WHEN reopen_count > 0 THEN 1.0 ELSE 0.0 END) AS reopen_rate,\n"
        "avg(satisfaction) AS csat,\n"
        "COALESCE(sum(compensation_amount), 0) AS compensation\n"
        f"FROM complaint WHERE received_at >= $1 AND received_at < $2 GROUP BY 1"
    )


def same_answer(buckets: list, rows: list) -> str | None:
    """Why complaintStats' buckets differ from the plain statement's rows, or None."""
    plain = {r["key"]: r for r in rows}
    if [b.key for b in buckets] != sorted(plain):
        return f"keys {[b.key for b in buckets][:5]}... != {sorted(plain)[:5]}..."

    def close(a, b) -> bool:
        return (a is None and b is None) or (a is not None and b is not None and abs(a - float(b)) <= 1e-9 * abs(a))

    for b in buckets:
        r = plain[b.key]
        judged = r["resolved_n"] + r["overdue_n"]
        met_rate = r["met_n"] / judged if judged else None
        if (b.count, b.open_count, b.resolved_count) != (r["n"], r["open_n"], r["resolved_n"]):
            return f"{b.key}: counts"
        if b.compensation_total != r["compensation"]:
            return f"{b.key}: compensation {b.compensation_total} != {r['compensation']}"
        for name, ours, theirs in (
            ("sla_met_rate", b.sla_met_rate, met_rate),
            ("avg_resolution_hours", b.avg_resolution_hours, r["hours"]),
            ("reopen_rate", b.reopen_rate, r["reopen_rate"]),
            ("avg_satisfaction", b.avg_satisfaction, r["csat"]),
        ):
            if not close(ours, theirs):
                return f"{b.key}: {name} {ours} != {theirs}"
    return None


async def raw_connection(url: str) -> asyncpg.Connection:
    """A raw asyncpg connection whose statements are always planned for their own parameters (a prepared
    statement run the same way over and over may switch to a generic plan made for an unknown period: a slower
    index scan, which would flatter every ratio to it)."""
    return await asyncpg.connect(
        url.replace("postgres://", "postgresql://", 1), server_settings={"plan_cache_mode": "force_custom_plan"}
    )


async def main(args: argparse.Namespace) -> int:
    url = args.database_url
    if (refused := common.refuse_or_none(args)) is not None:
        return refused

    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(seconds=1)
    start = now - timedelta(days=365)
    await common.fresh_database(url)
    summary = await populate(url, args.rows, args.seed, now, start)
    print(
        f"populated  {summary['n']:,} complaints ({summary['size']}) and {CUSTOMERS:,} customers with COPY in "
        f"{summary['seconds']:.1f} s: {summary['categories']} business types, {summary['reasons']} causes, "
        f"{summary['channels']} channels, {summary['branches']} branches; {summary['resolved']:,} resolved or "
        f"closed, {summary['withdrawn']:,} withdrawn, {summary['reopened']:,} reopened, "
        f"{summary['compensated']:,} compensated"
    )
    print(
        f"period     {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC (12 months: every complaint); "
        f"1 warm-up + {args.runs} runs each"
    )
    print()

    await db.init_orm(url)
    declare_all()  # every domain's job kinds, as in a worker
    try:
        raw = await raw_connection(url)
        plan = "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN {FLOOR_SQL}", start, end))
        print(f"floor plan: {' / '.join(line.strip() for line in plan.splitlines() if '->' in line)}")
        results = []
        all_floors: list[float] = []
        for group_by in complaint_stats.GROUPINGS:

            async def ours(group_by=group_by):
                return await complaint_stats.stats(COMMAND_LINE, start, end, group_by)

            async def count_floor():
                return await raw.fetch(FLOOR_SQL, start, end)

            async def plain(group_by=group_by):
                return await raw.fetch(plain_sql(group_by), start, end, clock.now())

            times, answers = await _interleaved({"ours": ours, "floor": count_floor, "plain": plain}, args.runs)
            buckets = answers["ours"]
            assert sum(b.count for b in buckets) == summary["n"], "the buckets must add up to every complaint"
            assert len(answers["floor"]) == len(CATEGORY_WEIGHTS)
            differs = same_answer(buckets, answers["plain"])
            assert differs is None, f"{group_by}: complaintStats and the plain statement disagree: {differs}"
            all_floors += times["floor"]
            results.append((group_by, times, len(buckets)))

        async def report():
            job = await complaint_stats.start_report(COMMAND_LINE, start, end, lambda job_id: None)
            await jobs.run(job.id, common.no_publish)
            job = await Job.get(id=job.id)
            assert job.status == JobStatus.SUCCEEDED, job.errors
            return job.result

        report_times, report_result = await _timed(report, args.runs)
        await raw.close()

        print(
            f"{'group-by':<12}{'buckets':>8}{'ours ms':>9}{'min':>7}{'max':>7}{'floor ms':>10}{'ratio':>7}"
            f"{'plain ms':>10}{'ratio':>7}  target"
        )
        worst = worst_ratio = 0.0
        over = f", > {MAX_RATIO:g}x floor"
        for group_by, times, n in results:
            median, floor_ms, plain_ms = (statistics.median(times[k]) for k in ("ours", "floor", "plain"))
            worst = max(worst, median)
            worst_ratio = max(worst_ratio, median / floor_ms)
            print(
                f"{group_by:<12}{n:>8}{median:>9.1f}{min(times['ours']):>7.1f}{max(times['ours']):>7.1f}"
                f"{floor_ms:>10.1f}{median / floor_ms:>6.2f}x{plain_ms:>10.1f}{median / plain_ms:>6.2f}x"
                f"  {'met' if median < TARGET_MS else 'NOT MET'}{'' if median <= MAX_RATIO * floor_ms else over}"
            )
        median, floor_ms = statistics.median(report_times), statistics.median(all_floors)
        print(
            f"{'report job':<12}{report_result['rows']:>8}{median:>9.1f}{min(report_times):>7.1f}"
            f"{max(report_times):>7.1f}{floor_ms:>10.1f}{median / floor_ms:>6.2f}x"
            f"  (CSV of {len(report_result['csv']):,} chars; floor: the median of all the floor runs)"
        )
        print()
        print(
            "floor: raw asyncpg `SELECT category, count(*) ... GROUP BY category` (it reads 15 of the 37 columns and\n"
            "       counts: it does not compute the same answer); plain: raw asyncpg, one plain GROUP BY computing\n"
            "       the same answer (checked equal to ours). Each measured in turn with ours, run by run."
        )
        print(
            f"worst group-by median {worst:.1f} ms (target < {TARGET_MS:.0f} ms per group-by: "
            f"{'met' if worst < TARGET_MS else 'NOT MET'}); worst ratio to the floor {worst_ratio:.2f}x"
        )
        if args.explain:
            connection = Tortoise.get_connection("default")
            for group_by in args.explain:
                captured = []
                original = connection.execute_query

                async def capture(sql, values=None, _original=original, captured=captured):
                    captured.append((sql, values))
                    return await _original(sql, values)

                connection.execute_query = capture
                try:
                    await complaint_stats.stats(COMMAND_LINE, start, end, group_by)
                finally:
                    del connection.execute_query
                sql, values = captured[-1]
                conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
                try:
                    plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *values)
                finally:
                    await conn.close()
                print(f"\nEXPLAIN ANALYZE ({group_by}):\n{sql}\n" + "\n".join(r[0] for r in plan))
        return 0 if worst < TARGET_MS and worst_ratio <= MAX_RATIO else 1
    finally:
        await db.close_orm()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per group-by, after one warm-up")
    parser.add_argument(
        "--explain",
        nargs="*",
        metavar="GROUP_BY",
        default=None,
        help="print EXPLAIN ANALYZE of these group-bys' statements",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
