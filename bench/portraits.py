"""Benchmark of a full portrait recompute (recomputePortraits all: true) through Redis and two worker processes,
next to its floor: the same aggregates as one bare SQL statement.

    .venv/bin/python bench/portraits.py --rows 100000 \
        --database-url postgres://postgres@127.0.0.1:5432/portraits_bench --redis-url redis://127.0.0.1:6379/11

What it does:
 1. drops and recreates the `public` schema of the database and migrates it (refuses a database named `test`,
    the test suite's, and Redis database 15 unless --force);
 2. seeds in bulk with asyncpg COPY (timed; target under two minutes): N customers and per customer about
    3 holdings (the demo product mix; 1 in 50 private-banking-sized, 1 in 10 wealth-sized), 10 interactions,
    0.2 complaints, 0.5 survey responses (each with its invitation), 0-2 tags and a PROFILING consent for
    most; then VACUUM ANALYZE (as autovacuum would: statistics and the visibility map);
 3. FLOOR: the aggregates the computation reads (holdings by product and status, interactions, complaints,
    survey answers, the latest NPS category, tags, PROFILING consent) for every customer as ONE statement,
    written to a temporary table, plus the co-holding statistics query once: the best of two runs;
 4. RECOMPUTE: two `crm worker --threads T` processes; the job is started as an ANALYST with
    `services.portrait_jobs.start(everyone=True)` (what the mutation calls); the time runs from the start until
    the job is SUCCEEDED (the batches are CRM_PORTRAIT_BATCH_SIZE customers each, --batch-size);
 5. checks that every customer has exactly one portrait, none is left stale, every value tier is there, and
    the job counted every batch;
 6. prints customers/s of the recompute, the floor's time, their ratio (target: within 4 x the floor) and
    whether the recompute took under two minutes. Exit status 0 when both targets are met, 3 when not, 1 when
    a check failed, 2 when refused.

Every process it starts is stopped at the end, also on failure or Ctrl-C. Redis: only the given database is
flushed, before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import redis

from bench import common, processes
from bench.processes import PYTHON, CpuMeter, Processes, worker_env
from core import db
from core.db import atomic
from core.settings import Settings
from models.jobs import Job, JobStatus
from models.portraits import Portrait
from models.staff import Department, Role
from services import customer_rules, portrait_jobs, portraits, staff as staff_service
from services.access import COMMAND_LINE, Caller
from services.seed import PRODUCT_MIX, TAGS
from tasks.broker import TaskQueue, declare_all

RATIO_TARGET, SECONDS_TARGET = 4.0, 120.0
HOLDING_SHARE = 0.77  # of the demo product mix (3.9 products a customer): about 3 holdings a customer
ASSETS = {p.value for p in customer_rules.ASSET_PRODUCTS}
DEBTS = {p.value for p in customer_rules.DEBT_PRODUCTS}
CHANNELS = ("PHONE", "BRANCH", "MOBILE_APP", "WECHAT", "EMAIL")  # models.customers.Channel values
OPEN_COMPLAINTS = ("RECEIVED", "ACKNOWLEDGED", "IN_PROGRESS", "ESCALATED", "REOPENED")
DONE_COMPLAINTS = ("RESOLVED", "CLOSED", "WITHDRAWN")


def _pg(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


# ---------------------------------------------------------------- seeding


async def seed(url: str, rows: int, rng: random.Random) -> dict[str, int]:
    """Every table written with COPY; returns the row counts."""
    now = datetime.now(UTC)
    today = now.date()
    conn = await asyncpg.connect(_pg(url))
    counts: dict[str, int] = {}
    try:
        customers, holdings, tags, consents = [], [], [], []
        account = 0
        for cid in range(1, rows + 1):
            opened_after = today - timedelta(days=rng.randrange(30, 6000))
            aum, debt = Decimal(0), Decimal(0)
            boost = 8_000_000 if cid % 50 == 0 else 1_200_000 if cid % 10 == 1 else 0
            mix = list(PRODUCT_MIX.items())
            picked = [(p, m, s) for p, (m, s, share) in mix if rng.random() < share * HOLDING_SHARE]
            if boost:
                picked.append((next(p for p, _ in mix if p.value == "WEALTH_MANAGEMENT"), boost, 0.3))
            for product, median, spread in picked:
                account += 1
                span = max(1, (today - opened_after).days)
                opened = opened_after + timedelta(days=rng.randrange(span))
                closed = opened + timedelta(days=rng.randrange(1, 400)) if rng.random() < 0.08 else None
                if closed and closed > today:
                    closed = None
                balance = Decimal(str(round(median * 2.718281828 ** rng.gauss(0, spread), 2)))
                status = "CLOSED" if closed else "ACTIVE"
                if status == "ACTIVE":
                    if product.value in ASSETS:
                        aum += balance
                    elif product.value in DEBTS:
                        debt += balance
                holdings.append(
                    (account, f"62{account:016d}", product.value, balance, "CNY", opened, closed, status, now, now, cid)
                )
            created = now - timedelta(days=rng.randrange(1, 4000))
            status = "DORMANT" if rng.random() < 0.05 else "ACTIVE"
            customers.append(
                (
                    cid,
                    f"C{cid:010d}",
                    "INDIVIDUAL",
                    f"客户{cid}",
                    "VERIFIED",
                    status,
                    0.6,
                    aum,
                    debt,
                    1,
                    created,
                    now,
                )
            )
            tags += [(cid, t) for t in rng.sample(TAGS, rng.randrange(0, 3))]
            if rng.random() < 0.9:
                consents.append((cid, "PROFILING", rng.random() < 0.95, "bench", now))
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "customer",
            records=customers,
            columns=[
                "id", "customer_no", "kind", "name", "kyc_status", "status", "completeness", "aum", "debt",
                "version", "created_at", "updated_at",
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "product_holding",
            records=holdings,
            columns=[
                "id", "account_no", "product", "balance", "currency", "opened_at", "closed_at", "status",
                "created_at", "updated_at", "customer_id",
            ],
        )  # fmt: skip
        await conn.copy_records_to_table("customer_tag", records=tags, columns=["customer_id", "tag"])
        await conn.copy_records_to_table(
            "consent", records=consents, columns=["customer_id", "purpose", "granted", "source", "updated_at"]
        )
        counts.update(customers=len(customers), holdings=len(holdings), tags=len(tags), consents=len(consents))
        del customers, holdings, tags, consents

        interactions = rows * 10
        await conn.copy_records_to_table(
            "interaction",
            records=(
                (
                    rng.randrange(1, rows + 1),
                    CHANNELS[n % 5],
                    "INBOUND" if n % 3 else "OUTBOUND",
                    "INQUIRY",
                    "RESOLVED",
                    "咨询",
                    now - timedelta(seconds=rng.randrange(0, 730 * 86400)),
                    now,
                )
                for n in range(interactions)
            ),
            columns=["customer_id", "channel", "direction", "kind", "status", "subject", "occurred_at", "created_at"],
        )
        counts["interactions"] = interactions

        complaints = []
        for n in range(rows // 5):
            received = now - timedelta(seconds=rng.randrange(0, 365 * 86400))
            status = rng.choice(OPEN_COMPLAINTS) if rng.random() < 0.3 else rng.choice(DONE_COMPLAINTS)
            complaints.append(
                (
                    f"CMP-BENCH-{n:08d}", rng.randrange(1, rows + 1), "PHONE", "DEPOSIT", "SERVICE_ATTITUDE", "NORMAL",
                    2, status, "服务投诉", "客户投诉服务态度", received, received + timedelta(days=15), 0, 0, 0,
                    False, False, False, 1, now, now,
                )
            )  # fmt: skip
        await conn.copy_records_to_table(
            "complaint",
            records=complaints,
            columns=[
                "reference_no", "customer_id", "channel", "category", "reason", "priority", "priority_rank", "status",
                "summary", "description", "received_at", "due_at", "extension_count", "escalation_level",
                "reopen_count", "sla_at_risk_recorded", "sla_breached_recorded", "survey_sent", "version",
                "created_at", "updated_at",
            ],
        )  # fmt: skip
        counts["complaints"] = len(complaints)

        template = await conn.fetchval("SELECT id FROM survey_template WHERE ready_made = 'nps'")
        responses = rows // 2
        answered = [now - timedelta(seconds=rng.randrange(0, 365 * 86400)) for _ in range(responses)]
        who = [rng.randrange(1, rows + 1) for _ in range(responses)]
        await conn.copy_records_to_table(
            "survey_invitation",
            records=(
                (n + 1, "EMAIL", "RESPONDED", 1, at + timedelta(days=14), at, at, who[n], template)
                for n, at in enumerate(answered)
            ),
            columns=[
                "id", "channel", "status", "attempts", "expires_at", "responded_at", "created_at", "customer_id",
                "template_id",
            ],
        )  # fmt: skip
        scores = [rng.choice((0, 3, 5, 6, 7, 8, 9, 9, 10, 10)) for _ in range(responses)]
        await conn.copy_records_to_table(
            "survey_response",
            records=(
                (
                    json.dumps([{"key": "nps", "number": score}]),
                    score,
                    "PROMOTER" if score >= 9 else "PASSIVE" if score >= 7 else "DETRACTOR",
                    float(rng.randrange(1, 6)),
                    answered[n],
                    who[n],
                    n + 1,
                )
                for n, score in enumerate(scores)
            ),
            columns=[
                "answers",
                "nps_score",
                "nps_category",
                "csat_score",
                "submitted_at",
                "customer_id",
                "invitation_id",
            ],
        )
        counts["survey responses"] = responses
        for table in ("customer", "product_holding", "survey_invitation"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        # What autovacuum does to a loaded table: statistics, and the visibility map (index-only scans).
        await conn.execute("VACUUM ANALYZE")
        counts["copy seconds"] = round(time.perf_counter() - started)
    finally:
        await conn.close()
    return counts


async def _forget_results(url: str) -> None:
    """--reuse: the seeded data stays; the previous run's portraits, jobs and staff go."""
    conn = await asyncpg.connect(_pg(url))
    try:
        await conn.execute(
            "TRUNCATE portrait, job_batch, job CASCADE;"
            "DELETE FROM staff WHERE username = 'bench-analyst';"
            "UPDATE customer SET portrait_stale_since = NULL"
        )
        await conn.execute("VACUUM ANALYZE customer")
    finally:
        await conn.close()
    print("reused     the data of the previous run (portraits and jobs deleted)")


# ---------------------------------------------------------------- the floor


def floor_sql() -> str:
    """Every aggregate the computation reads, for every customer, as one statement written to a table."""
    open_list = ", ".join(f"'{s}'" for s in OPEN_COMPLAINTS)
    return f"""
    CREATE TEMP TABLE floor_result AS
    SELECT c.id, c.status, c.aum, c.debt, c.created_at,
           h.products, h.active_holdings, h.first_opened, h.last_opened, h.last_closed, h.closed_recently,
           i.recent, i.last_contact, k.total, k.open, k.breached, k.last_complaint,
           s.csat, s.detractors, s.last_answer, n.nps_category, t.tags, p.granted
    FROM customer c
    LEFT JOIN (
        SELECT customer_id, array_agg(DISTINCT product) FILTER (WHERE status = 'ACTIVE') AS products,
               COUNT(*) FILTER (WHERE status = 'ACTIVE') AS active_holdings, MIN(opened_at) AS first_opened,
               MAX(opened_at) AS last_opened, MAX(closed_at) AS last_closed,
               COUNT(*) FILTER (WHERE closed_at >= CURRENT_DATE - 90) AS closed_recently
        FROM product_holding GROUP BY customer_id
    ) h ON h.customer_id = c.id
    LEFT JOIN (
        SELECT customer_id, COUNT(*) FILTER (WHERE occurred_at >= now() - interval '90 days') AS recent,
               MAX(occurred_at) AS last_contact
        FROM interaction GROUP BY customer_id
    ) i ON i.customer_id = c.id
    LEFT JOIN (
        SELECT customer_id, COUNT(*) AS total, COUNT(*) FILTER (WHERE status IN ({open_list})) AS open,
               COUNT(*) FILTER (WHERE status IN ({open_list}) AND due_at < now()) AS breached,
               MAX(received_at) AS last_complaint
        FROM complaint GROUP BY customer_id
    ) k ON k.customer_id = c.id
    LEFT JOIN (
        SELECT customer_id, AVG(csat_score) AS csat,
               COUNT(*) FILTER (WHERE nps_category = 'DETRACTOR' AND submitted_at >= now() - interval '365 days')
                   AS detractors,
               MAX(submitted_at) AS last_answer
        FROM survey_response GROUP BY customer_id
    ) s ON s.customer_id = c.id
    LEFT JOIN (
        SELECT DISTINCT ON (customer_id) customer_id, nps_category FROM survey_response
        WHERE nps_category IS NOT NULL ORDER BY customer_id, submitted_at DESC, id DESC
    ) n ON n.customer_id = c.id
    LEFT JOIN (SELECT customer_id, array_agg(tag ORDER BY id) AS tags FROM customer_tag GROUP BY customer_id) t
        ON t.customer_id = c.id
    LEFT JOIN consent p ON p.customer_id = c.id AND p.purpose = 'PROFILING' AND p.channel IS NULL
    """


async def floor(url: str) -> float:
    """Seconds of the bare aggregate SQL (the statement above plus the co-holding statistics): best of two."""
    conn = await asyncpg.connect(_pg(url))
    best = float("inf")
    try:
        for _ in range(2):
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(floor_sql())
                await conn.fetch(portraits.CO_HOLDING_SQL)
                rows = await conn.fetchval("SELECT COUNT(*) FROM floor_result")
                await conn.execute("DROP TABLE floor_result")
            best = min(best, time.perf_counter() - started)
        print(f"floor      {rows:,} customers' aggregates in one statement: best of 2 = {best:.2f} s")
    finally:
        await conn.close()
    return best


# ---------------------------------------------------------------- the recompute


def _env(args: argparse.Namespace, folder: Path) -> dict[str, str]:
    return worker_env(
        CRM_ENV="development",
        CRM_DATABASE_URL=args.database_url,
        CRM_REDIS_URL=args.redis_url,
        CRM_PORTRAIT_BATCH_SIZE=str(args.batch_size),
        CRM_LOG_LEVEL=args.worker_log_level,
        CRM_MAIL_DROP_DIR=str(folder / "outbox"),
    )


async def recompute(args: argparse.Namespace, folder: Path) -> tuple[float, Job, object]:
    processes = Processes(folder)
    queue = TaskQueue(Settings(env="development", database_url=args.database_url, redis_url=args.redis_url))
    analyst = await staff_service.create(
        COMMAND_LINE,
        username="bench-analyst",
        display_name="Portrait Analyst",
        password="bench-password-2026",
        role=Role.ANALYST,
        department=Department.MARKETING,
    )
    try:
        for worker in range(2):
            command = [str(PYTHON), "app.py", "worker", "--threads", str(args.threads)]
            processes.start(f"crm-worker-{worker}", command, _env(args, folder))
        processes.wait_for("worker started", timeout=60)
        meter = CpuMeter(processes)
        meter.start()
        started = time.perf_counter()
        async with atomic():
            job = await portrait_jobs.start(
                Caller(analyst, "bench"), everyone=True, enqueue=lambda job_id: queue.send("run_job", job_id)
            )
        deadline = time.monotonic() + args.timeout
        last = -1
        while not (row := await Job.get(id=job.id)).status.finished:
            if time.monotonic() > deadline:
                raise RuntimeError(f"after {args.timeout:.0f} s the job is at {row.processed}/{row.total} batches")
            if row.processed != last and row.total:
                last = row.processed
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        return elapsed, row, meter.stop()
    finally:
        processes.stop_all()
        queue.close()


async def check(job: Job, rows: int) -> list[str]:
    problems = []
    if job.status != JobStatus.SUCCEEDED:
        problems.append(f"job {job.status.value}: {job.errors[-3:]}")
    if job.processed != job.total or job.result.get("customers") != rows:
        problems.append(f"job counted {job.processed}/{job.total} batches, result {job.result}")
    portraits_written = await Portrait.all().count()
    if portraits_written != rows:
        problems.append(f"{portraits_written} portraits for {rows} customers")
    from models.customers import Customer

    stale = await Customer.filter(portrait_stale_since__isnull=False).count()
    if stale:
        problems.append(f"{stale} customers left stale")
    tiers = {t.value for t in await Portrait.all().distinct().values_list("value_tier", flat=True)}
    if tiers != {"PRIVATE_BANKING", "WEALTH", "AFFLUENT", "MASS"}:
        problems.append(f"value tiers present: {sorted(tiers)}")
    return problems


# ---------------------------------------------------------------- main


def _load() -> str:
    """The machine's load averages: what else ran on its cores (other test runs, other benchmarks)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


async def main(args: argparse.Namespace) -> int:
    if (refused := processes.refuse_or_none(args)) is not None:
        return refused
    client = redis.Redis.from_url(args.redis_url)
    client.ping()
    client.flushdb()
    print(f"redis      {args.redis_url} (flushed before and after)")
    if args.reuse:
        await _forget_results(args.database_url)
    else:
        await common.fresh_database(args.database_url)
        started = time.perf_counter()
        counts = await seed(args.database_url, args.rows, random.Random(args.seed))
        seeding = time.perf_counter() - started
        print(f"seeded     {', '.join(f'{v:,} {k}' for k, v in counts.items())}; {seeding:.1f} s in all")
    floor_seconds = await floor(args.database_url)
    await db.init_orm(args.database_url)
    declare_all()
    try:
        load_before = _load()
        with tempfile.TemporaryDirectory(prefix="portraits-bench-") as tmp:
            elapsed, job, cpu = await recompute(args, Path(tmp))
        problems = await check(job, args.rows)
    finally:
        await db.close_orm()
        client.flushdb()
        client.close()
    rate = args.rows / elapsed
    ratio = elapsed / floor_seconds
    job_seconds = (job.finished_at - job.started_at).total_seconds()
    print()
    print(
        f"recompute  {args.rows:,} customers in {elapsed:.2f} s = {rate:,.0f} customers/s "
        f"({job.total} batches of {args.batch_size}; the job ran {job_seconds:.2f} s from its start in a worker); "
        f"2 processes x {args.threads} threads"
    )
    print(f"floor      the bare aggregate SQL: {floor_seconds:.2f} s = {args.rows / floor_seconds:,.0f} customers/s")
    per = 1000 / args.rows
    print(
        f"cpu        s per 1,000 customers: workers {cpu.workers * per:.3f}, postgres {cpu.postgres * per:.3f}, "
        f"redis {cpu.redis * per:.3f}"
    )
    print(f"load       1-, 5-, 15-minute averages: {load_before} before the recompute, {_load()} after")
    met = ratio <= RATIO_TARGET and elapsed < SECONDS_TARGET
    print(
        f"ratio      recompute / floor = {elapsed:.2f} / {floor_seconds:.2f} = {ratio:.2f} "
        f"(target <= {RATIO_TARGET:g} and under {SECONDS_TARGET:.0f} s: {'met' if met else 'NOT MET'})"
    )
    if problems:
        print("CHECKS FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("checks     one portrait per customer, none stale, every value tier, every batch counted")
    return 0 if met else 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11", help="a Redis database it may flush")
    parser.add_argument("--threads", type=int, default=2, help="worker threads of each of the two processes")
    parser.add_argument("--batch-size", type=int, default=1000, help="customers per batch (CRM_PORTRAIT_BATCH_SIZE)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds the recompute may take")
    parser.add_argument("--worker-log-level", default="INFO", help="CRM_LOG_LEVEL of the crm workers")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data a previous run seeded (its portraits and jobs are deleted)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
