"""Benchmark of the bulk customer import (docs/DOMAIN.md: "100,000 rows must import in minutes, not hours").

    .venv/bin/python bench/import_customers.py --rows 100000 \
        --database-url postgres://postgres@127.0.0.1:5432/import_bench

What it does, in one process:
 1. drops and recreates the `public` schema of the database and migrates it (refuses a database named
    `test`, the one the test suite uses, unless --force);
 2. writes N valid, distinct customers (services.demo_data.fake_person) to a temporary UTF-8 CSV file;
 3. stores the file with services.customer_import.start_import as the command-line operator (the
    upload path of the importCustomers mutation), streaming it in 256 KiB pieces;
 4. runs the IMPORT_CUSTOMERS job through services.jobs.run, in-process, as a worker would;
 5. measures a FLOOR in the same run: the same rows read from the same file with the csv module and
    written with asyncpg's COPY (copy_records_to_table) into a scratch table built LIKE `customer`
    (same columns, defaults, indexes and unique constraints), with no validation and no ORM;
 6. prints rows/s, elapsed seconds, the CPU seconds of the process (time.process_time: on a busy machine the
    wall time also counts waiting for a core), the peak RSS of the process (resource.getrusage), the RSS before and
    after the import, the peak RSS during the import alone (Linux: /proc/self/clear_refs resets the
    high-water mark), and the ratio of our time to the floor's.

Targets (issue 3): at least 2,000 rows/s and a peak under 300 MB for 100,000 rows on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import pstats
import random
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench import common
from core import db, heap
from core.db import atomic
from models.customers import Customer, CustomerTag
from models.jobs import Job, JobStatus
from services import clock, customer_import, customer_rules, jobs
from services.access import COMMAND_LINE
from services.demo_data import fake_person
from tasks.broker import declare_all

# The columns of the generated file: every column an import may set except the two that identify a row.
COLUMNS = [*customer_import.IMPORTABLE, "tags"]
TAGS = ("代发工资", "高净值潜力", "老客户", "线上活跃")
CHANNELS = ("BRANCH", "PHONE", "MOBILE_APP", "WECHAT", "")
TODAY = date(2026, 1, 1)


def _mib(kib: float) -> float:
    return kib / 1024


def _status_kib(key: str) -> int | None:
    """VmRSS / VmHWM of this process in KiB (Linux), None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) so that the next peak is the import's own."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def generate(path: Path, rows: int, seed: int) -> int:
    """N valid rows with distinct resident IDs, written as they are made (never all in memory)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        while len(seen) < rows:
            p = fake_person(rng, TODAY)
            if p.resident_id in seen:
                continue
            seen.add(p.resident_id)
            tags = ";".join(rng.sample(TAGS, rng.randint(0, 2)))
            writer.writerow(
                [
                    p.name,
                    p.gender,
                    p.birth_date.isoformat(),
                    "RESIDENT_ID",
                    p.resident_id,
                    p.mobile,
                    p.email or "",
                    p.address,
                    p.occupation,
                    f"C{rng.randint(1, 5)}",
                    p.branch,
                    rng.choice(CHANNELS),
                    tags,
                ]
            )
    return path.stat().st_size


async def _file_pieces(path: Path, size: int = 256 * 1024):
    with open(path, "rb") as source:
        while data := source.read(size):
            yield data


async def floor(url: str, path: Path) -> tuple[float, float, int]:
    """The same rows with csv + asyncpg COPY into a scratch copy of the customer table: no validation."""
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_floor_customer; "
            "CREATE TABLE bench_floor_customer (LIKE customer INCLUDING ALL);"
        )
        columns = [
            "customer_no",
            "kind",
            "name",
            "gender",
            "birth_date",
            "id_type",
            "id_number",
            "phone",
            "email",
            "address",
            "occupation",
            "risk_level",
            "kyc_status",
            "status",
            "branch",
            "preferred_channel",
            "completeness",
            "aum",
            "debt",
            "version",
            "created_at",
            "updated_at",
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        stamp = clock.now()
        count = 0
        batch: list[tuple] = []
        with open(path, encoding="utf-8", newline="") as source:
            reader = csv.DictReader(source)
            for number, r in enumerate(reader, start=1):
                batch.append(
                    (
                        f"C{number:010d}",
                        "INDIVIDUAL",
                        r["name"],
                        r["gender"],
                        date.fromisoformat(r["birth_date"]),
                        r["id_type"],
                        r["id_number"],
                        r["phone"],
                        r["email"] or None,
                        r["address"],
                        r["occupation"],
                        r["risk_level"],
                        "PENDING",
                        "ACTIVE",
                        r["branch"],
                        r["preferred_channel"] or None,
                        1.0,
                        0,
                        0,
                        1,
                        stamp,
                        stamp,
                    )
                )
                if len(batch) == 10_000:
                    await conn.copy_records_to_table("bench_floor_customer", records=batch, columns=columns)
                    count += len(batch)
                    batch = []
        if batch:
            await conn.copy_records_to_table("bench_floor_customer", records=batch, columns=columns)
            count += len(batch)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await conn.execute("DROP TABLE bench_floor_customer")
        return elapsed, cpu, count
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> int:
    url = args.database_url
    if (refused := common.refuse_or_none(args)) is not None:
        return refused

    await common.fresh_database(url)
    await db.init_orm(url)
    declare_all()  # every domain's job kinds, as in a worker
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "customers.csv"
            started = time.perf_counter()
            size = generate(path, args.rows, args.seed)
            print(f"generated  {args.rows:,} rows, {size / 2**20:.1f} MiB in {time.perf_counter() - started:.1f} s")

            started = time.perf_counter()
            async with atomic():
                job = await customer_import.start_import(
                    COMMAND_LINE,
                    _file_pieces(path),
                    filename=path.name,
                    update_existing=False,
                    enqueue=lambda job_id: None,
                )
            upload = time.perf_counter() - started
            print(f"stored     {size / 2**20:.1f} MiB as upload chunks in {upload:.1f} s")

            heap.settle()  # as a worker process does once it has started (tasks/broker.py)
            rss_before = _status_kib("VmRSS")
            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak_reset = _reset_peak()
            profiler = cProfile.Profile() if args.profile else None
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            await jobs.run(job.id, common.no_publish)
            if profiler:
                profiler.disable()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            import_peak = _status_kib("VmHWM") if peak_reset else None
            rss_after = _status_kib("VmRSS")
            peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

            job = await Job.get(id=job.id)
            if job.status != JobStatus.SUCCEEDED:
                print(f"the import FAILED: {job.errors[-3:]}", file=sys.stderr)
                return 1
            customers = await Customer.all().count()
            tags = await CustomerTag.all().count()
            sample = await Customer.all().order_by("id").first()
            floor_elapsed, floor_cpu, floor_rows = await floor(url, path)

        rate = args.rows / elapsed
        print(f"result     {job.result}; {customers:,} customers, {tags:,} tags in the database")
        print(
            f"sample     {sample.customer_no} {sample.name} completeness={sample.completeness} "
            f"(assess: {customer_rules.assess(sample)[0]})"
        )
        print()
        print(
            f"import     {args.rows:,} rows in {elapsed:.1f} s = {rate:,.0f} rows/s "
            f"(target >= 2,000 rows/s: {'met' if rate >= 2000 else 'NOT MET'})"
        )
        print(
            f"CPU        {cpu:.1f} s of this process during the import ({cpu / elapsed:.0%} of its time; the rest: "
            f"waiting for PostgreSQL, or for a core on a busy machine)"
        )
        print(f"upload+import {args.rows / (elapsed + upload):,.0f} rows/s end to end")
        process_peak = max(peak_before, peak_after)
        print(
            f"peak RSS   {_mib(process_peak):.0f} MiB for the whole process, generation and upload included "
            f"(getrusage ru_maxrss)"
        )
        if import_peak is not None and rss_before is not None:
            print(
                f"import peak {_mib(import_peak):.0f} MiB during the import alone (VmHWM reset before it; "
                f"+{_mib(import_peak - rss_before):.0f} MiB over the RSS before it; target < 300 MB: "
                f"{'met' if import_peak * 1024 < 300e6 else 'NOT MET'})"
            )
        else:
            print(f"peak after the import {_mib(peak_after):.0f} MiB (getrusage)")
        if rss_before is not None and rss_after is not None:
            print(
                f"RSS        {_mib(rss_before):.0f} MiB before the import, {_mib(rss_after):.0f} MiB after: "
                f"delta {_mib(rss_after - rss_before):+.0f} MiB"
            )
        print(
            f"FLOOR      {floor_rows:,} rows with csv + asyncpg COPY in {floor_elapsed:.1f} s = "
            f"{floor_rows / floor_elapsed:,.0f} rows/s ({floor_cpu:.1f} s CPU of this process)"
        )
        print(f"ratio      ours / floor = {elapsed / floor_elapsed:.1f}x the time")
        if profiler:
            print()
            for order in ("cumulative", "tottime"):
                pstats.Stats(profiler).sort_stats(order).print_stats(args.profile)
        return 0
    finally:
        await db.close_orm()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="profile the import with cProfile and print the N most expensive calls (cumulative, then own time)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
