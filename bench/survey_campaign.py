"""Benchmark of a survey campaign (launchSurveyCampaign) end to end, through Redis and two worker processes.

    .venv/bin/python bench/survey_campaign.py --rows 10000 \
        --database-url postgres://postgres@127.0.0.1:5432/campaign_bench --redis-url redis://127.0.0.1:6379/14

What it does:
 1. drops and recreates the `public` schema of the database and migrates it (refuses a database named `test`,
    the test suite's, and Redis database 15, CI's, unless --force); writes N customers (services.demo_data
    names, a distinct e-mail address each) and a MANAGER; the campaign sends the ready-made NPS template;
 2. starts an SMTP sink (aiosmtpd) on 127.0.0.1 in this process, counting messages and their recipients;
 3. FLOOR, in the same run on the same broker: two `dramatiq bench.noop_actor --processes 1 --threads T`
    processes; N messages of a no-op actor are sent and the time until the last one is acknowledged is
    measured, for a plain actor and for a coroutine actor (run by the AsyncIO middleware, as the app's are);
 4. CAMPAIGN: two `crm worker --threads T` processes (CRM_SMTP_URL = the sink); the campaign is launched as the
    MANAGER with `services.survey_campaigns.start` (what the mutation calls); the time runs from the launch
    until every customer's notification is SENT and the sink holds N messages;
 5. checks that the job SUCCEEDED with N invited, that each customer has exactly one invitation of the
    campaign (SENT) and got exactly one e-mail;
 6. prints messages/s of the campaign and of the floors, their ratio (target: campaign >= 0.3 x floor), and
    the CPU seconds each part used (workers, PostgreSQL, Redis, this process with the sink) per 1,000 messages.

Every process it starts is stopped at the end, also on failure or Ctrl-C; each phase is bounded by --timeout.
Redis: only the given database is flushed, before and after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from aiosmtpd.controller import Controller

from bench import common, processes
from bench.processes import PYTHON, ROOT, CpuMeter, CpuUse, Processes, worker_env
from core import db
from core.db import atomic
from core.settings import Settings
from models.customers import Customer, CustomerKind
from models.jobs import Job, JobStatus
from models.notifications import Notification, NotificationStatus
from models.staff import Department, Role
from models.surveys import InvitationStatus, SurveyInvitation, SurveyTemplate
from services import customers, staff as staff_service, survey_campaigns
from services.access import COMMAND_LINE, Caller
from services.demo_data import fake_person
from tasks.broker import TaskQueue, declare_all

TODAY = date(2026, 1, 1)
TARGET = 0.3
PRODUCERS = 4  # threads sending the floor's messages
DRAMATIQ = ROOT / ".venv" / "bin" / "dramatiq"


# ---------------------------------------------------------------- the SMTP sink


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts every message and counts it, with its recipients."""

    def __init__(self) -> None:
        self.count = 0
        self.recipients: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.port = _free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        with self._lock:
            self.count += 1
            self.recipients.update(address.lower() for address in envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- seeding


async def seed(rows: int, seed_: int) -> tuple[Caller, SurveyTemplate, set[str]]:
    """N customers with distinct e-mail addresses, a MANAGER, and the ready-made NPS template."""
    rng = random.Random(seed_)
    emails: set[str] = set()
    batch: list[Customer] = []
    for number in range(1, rows + 1):
        person = fake_person(rng, TODAY)
        email = f"customer{number:06d}@example.com"
        emails.add(email)
        batch.append(
            Customer(
                customer_no=f"C{number:010d}",
                kind=CustomerKind.INDIVIDUAL,
                name=person.name,
                gender=person.gender,
                birth_date=person.birth_date,
                phone=person.mobile,
                email=email,
                address=person.address,
                occupation=person.occupation,
                branch=person.branch,
            )
        )
        if len(batch) == 2000:
            await Customer.bulk_create(batch)
            batch = []
    if batch:
        await Customer.bulk_create(batch)
    manager = await staff_service.create(
        COMMAND_LINE,
        username="bench-manager",
        display_name="Campaign Manager",
        password="bench-password-2026",
        role=Role.MANAGER,
        department=Department.MARKETING,
        branch="北京朝阳支行",
    )
    template = await SurveyTemplate.get(ready_made="nps")
    return Caller(manager, "bench"), template, emails


# ---------------------------------------------------------------- the floor


@dataclass
class Phase:
    name: str
    messages: int
    elapsed: float
    cpu: CpuUse
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed


def _flush(client: redis.Redis) -> None:
    client.flushdb()


def floor(args: argparse.Namespace, folder: Path, client: redis.Redis, actor_name: str, timeout: float) -> Phase:
    """N messages of a no-op actor consumed by two `dramatiq` processes with the campaign's thread count."""
    from bench import noop_actor

    actor = getattr(noop_actor, actor_name)
    processes = Processes(folder)
    env = worker_env(CRM_BENCH_REDIS_URL=args.redis_url)
    try:
        for worker in range(2):
            command = [str(DRAMATIQ), "bench.noop_actor", "--processes", "1", "--threads", str(args.threads)]
            command += ["--worker-shutdown-timeout", "5000"]
            processes.start(f"floor-{actor_name}-{worker}", command, env)
        processes.wait_for("ready for action", timeout=60)
        pending = f"dramatiq:{noop_actor.QUEUE}.msgs"
        for n in range(50):  # warm-up: both processes fetching
            actor.send(n)
        _wait(lambda: client.hlen(pending) == 0, timeout, "the floor's warm-up")
        meter = CpuMeter(processes)
        meter.start()
        started = time.perf_counter()
        # Several producers, so that sending is not what limits the floor: the backlog shows who waited.
        with ThreadPoolExecutor(PRODUCERS) as producers:
            sending = [producers.submit(_send_range, actor, range(k, args.rows, PRODUCERS)) for k in range(PRODUCERS)]
            backlog = 0
            while not all(f.done() for f in sending):
                backlog = max(backlog, client.hlen(pending))
                time.sleep(0.005)
            for f in sending:
                f.result()
        sent = time.perf_counter() - started
        _wait(lambda: client.hlen(pending) == 0, timeout, f"the floor ({actor_name})", interval=0.005)
        elapsed = time.perf_counter() - started
        note = f"sent by {PRODUCERS} threads in {sent:.2f} s, backlog up to {backlog:,}"
        return Phase(f"floor: {actor_name}", args.rows, elapsed, meter.stop(), note)
    finally:
        processes.stop_all()
        _flush(client)


def _send_range(actor, numbers: range) -> None:
    for n in numbers:
        actor.send(n)


def _wait(done: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish in {timeout:.0f} s")
        time.sleep(interval)


# ---------------------------------------------------------------- the campaign


@dataclass
class CampaignRun:
    phase: Phase
    job: Job
    first_sent: float | None
    job_done: float | None


async def _sent() -> int:
    return await Notification.filter(status=NotificationStatus.SENT).count()


async def campaign(
    args: argparse.Namespace,
    folder: Path,
    client: redis.Redis,
    sink: SmtpSink,
    launcher: Caller,
    template: SurveyTemplate,
) -> CampaignRun:
    processes = Processes(folder)
    env = worker_env(
        CRM_ENV="development",
        CRM_DATABASE_URL=args.database_url,
        CRM_REDIS_URL=args.redis_url,
        CRM_SMTP_URL=f"smtp://127.0.0.1:{sink.port}",
        CRM_NOTIFICATION_ATTEMPTS="5",
        CRM_NOTIFICATION_BACKOFF_MS="500",
        CRM_MAIL_DROP_DIR=str(folder / "outbox"),
        CRM_LOG_LEVEL=args.worker_log_level,
    )
    queue = TaskQueue(Settings(env="development", database_url=args.database_url, redis_url=args.redis_url))
    try:
        for worker in range(2):
            command = [str(PYTHON), "app.py", "worker", "--threads", str(args.threads)]
            processes.start(f"crm-worker-{worker}", command, env)
        processes.wait_for("worker started", timeout=60)
        meter = CpuMeter(processes)
        meter.start()
        started = time.perf_counter()
        async with atomic():
            job = await survey_campaigns.start(
                launcher,
                template.id,
                customers.CustomerFilter(),
                enqueue=lambda job_id: queue.send("run_job", job_id),
            )
        # Watching costs the database little (it is measured with the campaign): the sink's count is free, the job
        # row is read by key a few times a second, and the notifications are counted only to confirm the end.
        first_sent = job_done = None
        deadline = time.monotonic() + args.timeout
        next_look = 0.0
        while True:
            now = time.perf_counter() - started
            if sink.count and first_sent is None:
                first_sent = now
            if now >= next_look:
                next_look = now + 0.25
                row = await Job.get(id=job.id)
                if row.status.finished and job_done is None:
                    job_done = now
                    if row.status != JobStatus.SUCCEEDED:
                        raise RuntimeError(f"the campaign job {row.status.value}: {row.errors[-3:]}")
                failed = await Notification.filter(status=NotificationStatus.FAILED).count()
                if failed:
                    raise RuntimeError(f"{failed} notification(s) FAILED; see the worker logs in {folder}")
            if sink.count >= args.rows and await _sent() >= args.rows:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"after {args.timeout:.0f} s: {await _sent()} SENT, the sink holds {sink.count}")
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
        return CampaignRun(Phase("campaign", args.rows, elapsed, cpu), await Job.get(id=job.id), first_sent, job_done)
    finally:
        processes.stop_all()
        queue.close()
        _flush(client)


async def check(run: CampaignRun, sink: SmtpSink, emails: set[str], rows: int) -> list[str]:
    """What is wrong with the outcome (nothing: an empty list)."""
    problems = []
    job = run.job
    expected = {"customers": rows, "invited": rows, "suppressed": 0, "skipped": 0, "suppressedBy": {}}
    if job.status != JobStatus.SUCCEEDED or job.result != expected:
        problems.append(f"job {job.status.value}: {job.result}")
    invited = await SurveyInvitation.filter(campaign_id=job.id).values_list("customer_id", "status")
    if len(invited) != rows or len({c for c, _ in invited}) != rows:
        problems.append(f"{len(invited)} invitations for {len({c for c, _ in invited})} customers, not {rows}")
    not_sent = Counter(s for _, s in invited if s != InvitationStatus.SENT)
    if not_sent:
        problems.append(f"invitations not SENT: {dict(not_sent)}")
    if await Notification.all().count() != rows:
        problems.append(f"{await Notification.all().count()} notifications, not {rows}")
    if sink.count != rows:
        problems.append(f"the sink holds {sink.count} messages, not {rows}")
    twice = [address for address, n in sink.recipients.items() if n != 1]
    if twice or set(sink.recipients) != emails:
        problems.append(f"{len(twice)} addresses got more than one e-mail; {len(emails - set(sink.recipients))} none")
    return problems


# ---------------------------------------------------------------- report


def _cpu_line(phase: Phase) -> str:
    per = 1000 / phase.messages
    c = phase.cpu
    return (
        f"{phase.name:<18} CPU s per 1,000 messages: workers {c.workers * per:5.2f}, postgres {c.postgres * per:5.2f}, "
        f"redis {c.redis * per:4.2f}, this process (sink, producer) {c.this * per:4.2f}; total {c.total * per:5.2f}"
    )


def report(phases: list[Phase], run: CampaignRun, problems: list[str], threads: int) -> int:
    print()
    for phase in phases:
        print(
            f"{phase.name:<18} {phase.messages:,} messages in {phase.elapsed:6.2f} s = {phase.rate:7,.0f} msg/s"
            + (f"  ({phase.note})" if phase.note else "")
        )
    job = run.job
    job_seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else 0
    job_rate = run.phase.messages / job_seconds if job_seconds else 0
    print(
        f"{'campaign':<18} {run.phase.messages:,} e-mails in {run.phase.elapsed:6.2f} s = {run.phase.rate:7,.0f} msg/s"
        f"  (first e-mail in the sink after {run.first_sent or 0:.2f} s;"
        f" the job wrote its invitations in {job_seconds:.2f} s"
        f" = {job_rate:,.0f}/s and finished after {run.job_done or 0:.2f} s)"
    )
    print()
    for phase in [*phases, run.phase]:
        print(_cpu_line(phase))
    floor_rate = max(p.rate for p in phases)
    ratio = run.phase.rate / floor_rate
    print()
    print(
        f"ratio      campaign / fastest floor = {run.phase.rate:,.0f} / {floor_rate:,.0f} = {ratio:.2f} "
        f"(target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT MET'}); 2 processes x {threads} threads each"
    )
    print(f"result     {job.result}")
    if problems:
        print("CHECKS FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("checks     every customer has exactly one invitation of the campaign (SENT) and got exactly one e-mail")
    return 0 if ratio >= TARGET else 3


# ---------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> int:
    if (refused := processes.refuse_or_none(args)) is not None:
        return refused
    os.environ["CRM_BENCH_REDIS_URL"] = args.redis_url  # bench.noop_actor's broker, in this process too
    client = redis.Redis.from_url(args.redis_url)
    client.ping()
    print(f"redis      {args.redis_url} (flushed before and after each phase)")

    await common.fresh_database(args.database_url)
    await db.init_orm(args.database_url)
    declare_all()
    try:
        started = time.perf_counter()
        launcher, template, emails = await seed(args.rows, args.seed)
        seeding = time.perf_counter() - started
        print(f"seeded     {args.rows:,} customers with distinct e-mail addresses in {seeding:.1f} s")
        with tempfile.TemporaryDirectory(prefix="campaign-bench-") as tmp, SmtpSink() as sink:
            folder = Path(tmp)
            print(f"smtp sink  127.0.0.1:{sink.port}")
            _flush(client)
            phases = []
            for actor_name in ("noop", "noop_async"):
                phases.append(floor(args, folder, client, actor_name, args.timeout))
                print(f"measured   {phases[-1].name}: {phases[-1].rate:,.0f} msg/s")
            run = await campaign(args, folder, client, sink, launcher, template)
            print(f"measured   campaign: {run.phase.rate:,.0f} msg/s")
            problems = await check(run, sink, emails, args.rows)
        return report(phases, run, problems, args.threads)
    finally:
        await db.close_orm()
        client.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__.split("\n\n")[0])
    parser.set_defaults(rows=10_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="a Redis database it may flush")
    parser.add_argument("--threads", type=int, default=8, help="worker threads of each of the two processes")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each phase may take")
    parser.add_argument("--worker-log-level", default="INFO", help="CRM_LOG_LEVEL of the crm workers")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
