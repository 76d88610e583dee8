"""The `crm` command line: serve, worker, scheduler, migrate, makemigrations, seed, export-schema,
create-staff."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from core import db
from core.logs import configure_logging
from core.settings import Settings, SettingsError, use as use_settings

log = logging.getLogger("crm")
WORKER_PING_SECONDS = 60  # serve --workers N: how long uvicorn waits for a process to answer its health ping
SCHEMA_FILE = Path(__file__).resolve().parent / "schema.graphql"


async def _preflight(settings: Settings) -> None:
    await db.init_orm(settings.database_url)
    try:
        await db.ensure_migrated()
    finally:
        await db.close_orm()


def _cannot_listen(host: str, port: int) -> str | None:
    """Why `serve` could not listen on host:port (None: it can), found by binding the address the way uvicorn
    will (same family, SO_REUSEADDR) before anything starts: otherwise a port in use is one log line among the
    start-up noise."""
    if port == 0:  # any free port
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use: stop the other server or choose another port "
                "(--port N; make run PORT=N)"
            )
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def default_workers(settings: Settings) -> int:
    """`serve`'s processes when --workers is not given: one per CPU core this process may run on in production on
    PostgreSQL and Redis, else one (the embedded broker and SQLite are for one process)."""
    if not settings.production or settings.embedded_broker or not _on_postgres(settings):
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _on_postgres(settings: Settings) -> bool:
    return settings.database_url.startswith(("postgres://", "postgresql://"))


def _workers_refusal(settings: Settings, workers: int) -> str | None:
    if workers < 1:
        return "--workers must be at least 1"
    if workers == 1:
        return None
    if settings.embedded_broker:
        return (
            f"--workers {workers} needs CRM_REDIS_URL: without it every API process would run its own task queue, "
            "workers and scheduler; serve with --workers 1, or set CRM_REDIS_URL and run `crm worker`"
        )
    if not _on_postgres(settings):
        return f"--workers {workers} needs PostgreSQL (CRM_DATABASE_URL=postgres://...): SQLite takes one writer"
    return None


def app_factory():
    """The app of one of `serve --workers N`'s processes (uvicorn's factory): settings from the CRM_* environment
    it inherited, logging set up as `crm` does, the same lifespan as a single process."""
    from app import create_app

    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "CRM_NEW_STAFF_PASSWORD"})  # as main()
    configure_logging(settings.log_level, settings.log_json)
    use_settings(settings)
    return create_app(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    workers = default_workers(settings) if args.workers is None else args.workers
    if refused := _workers_refusal(settings, workers):
        print(f"crm serve: {refused}", file=sys.stderr)
        return 2
    problem = _cannot_listen(args.host, args.port)
    if problem:
        print(f"crm serve: {problem}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_preflight(settings))
    except db.UnmigratedDatabase as exc:
        print(f"crm: {exc}", file=sys.stderr)
        return 1
    # SIGTERM: uvicorn stops accepting, lets the requests in flight finish for at most the grace period (then
    # cancels them), closes open websockets with 1012 (service restart), then runs the lifespan's shutdown.
    options = {
        "host": args.host,
        "port": args.port,
        "log_config": None,
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "http": "app:ServingHttpProtocol",  # reads a request just arriving before closing its connection
    }
    if workers > 1:
        # Processes of their own (spawned), each importing the app through the factory: uvicorn's supervisor
        # holds the socket, restarts a process that dies or stops answering its pings, and stops them all on
        # SIGINT/SIGTERM. A process answers only once it has imported everything (several seconds on a busy
        # machine): uvicorn's 5 s would kill processes that are merely starting.
        log.info("serving with %d worker processes", workers)
        uvicorn.run(
            "cli:app_factory", factory=True, workers=workers, timeout_worker_healthcheck=WORKER_PING_SECONDS, **options
        )
        return 0
    from app import create_app

    uvicorn.run(create_app(settings), **options)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_broker:
        print("crm: `worker` needs CRM_REDIS_URL; without it `serve` runs the workers itself", file=sys.stderr)
        return 2
    from tasks.broker import TaskQueue

    worker = TaskQueue(settings).process_worker(args.threads)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("worker started with %d threads", args.threads)
    stop.wait()
    log.info("worker stopping: finishing the actor runs in progress (at most %ds)", settings.shutdown_grace_seconds)
    # Dramatiq lets each worker thread finish the message it holds and puts back the ones it prefetched; a run
    # still going after the grace period is abandoned with the process, and Redis hands it to another worker.
    worker.stop(timeout=settings.shutdown_grace_seconds * 1000)
    return 0


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_broker:
        print("crm: `scheduler` needs CRM_REDIS_URL; it sends work to the workers through Redis", file=sys.stderr)
        return 2
    from tasks.broker import TaskQueue
    from tasks.scheduler import build_scheduler

    async def run() -> None:
        scheduler = build_scheduler(TaskQueue(settings))
        scheduler.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        scheduler.shutdown(wait=False)

    asyncio.run(run())
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = asyncio.run(db.migrate(settings.database_url))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def cmd_makemigrations(settings: Settings, args: argparse.Namespace) -> int:
    from tortoise.cli.cli import run_cli_async

    return asyncio.run(run_cli_async(["-c", "core.db.DEVELOPER_CONFIG", "makemigrations", "--name", args.name]))


def cmd_export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from schema.build import export_sdl

    Path(args.output).write_text(export_sdl(), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def cmd_create_staff(settings: Settings, args: argparse.Namespace) -> int:
    from models.staff import Department, Role
    from services import audit, staff
    from services.access import COMMAND_LINE
    from services.errors import DomainError

    password = os.environ.get("CRM_NEW_STAFF_PASSWORD") if args.password_from_env else None
    if password is None:
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("Password: ")

    async def run() -> int:
        await db.init_orm(settings.database_url)
        try:
            await db.ensure_migrated()
            async with db.atomic():
                created = await staff.create(
                    COMMAND_LINE,
                    username=args.username,
                    display_name=args.display_name,
                    password=password,
                    role=Role(args.role),
                    department=Department(args.department),
                    branch=args.branch,
                )
                await audit.record(COMMAND_LINE, "staff.create", subject_type="Staff", subject_id=str(created.id))
            print(f"created {created.role} {created.username}")
            return 0
        except DomainError as exc:
            print(f"crm: {'; '.join(e.message for e in exc.errors)}", file=sys.stderr)
            return 1
        finally:
            await db.close_orm()

    return asyncio.run(run())


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from services.errors import DomainError
    from services.seed import seed

    async def run() -> int:
        await db.init_orm(settings.database_url)
        try:
            await db.ensure_migrated()
            report = await seed(password=args.password, customers_wanted=args.customers)
        except DomainError as exc:  # a --password the staff rules refuse
            print(f"crm seed: {'; '.join(e.message for e in exc.errors)}", file=sys.stderr)
            return 1
        finally:
            await db.close_orm()
        for line in report:
            print(line)
        return 0

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    from models.staff import Department, Role

    parser = argparse.ArgumentParser(prog="crm", description="Bank CRM backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the GraphQL API (with in-process workers when no Redis is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="API processes sharing the port (default: one per CPU core in production on PostgreSQL and Redis, "
        "else 1; more than 1 needs CRM_REDIS_URL and PostgreSQL)",
    )
    serve.set_defaults(run=cmd_serve)
    worker = sub.add_parser("worker", help="run a worker process on the Redis broker")
    worker.add_argument("--threads", type=int, default=8)
    worker.set_defaults(run=cmd_worker)
    sub.add_parser("scheduler", help="send periodic work to the workers (run exactly one)").set_defaults(
        run=cmd_scheduler
    )
    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    make = sub.add_parser("makemigrations", help="write a migration for model changes (developers)")
    make.add_argument("name")
    make.set_defaults(run=cmd_makemigrations)
    seed = sub.add_parser("seed", help="fill the database with demo staff (one per role) and customers")
    seed.add_argument("--customers", type=int, default=0, help="how many demo customers to add")
    seed.add_argument(
        "--password",
        default=None,
        help="password for the demo staff (default: random, printed once); when they exist already, their "
        "password is set to this one",
    )
    seed.set_defaults(run=cmd_seed)
    export = sub.add_parser("export-schema", help="write the GraphQL schema (SDL)")
    export.add_argument("--output", default=str(SCHEMA_FILE))
    export.set_defaults(run=cmd_export_schema)
    create = sub.add_parser("create-staff", help="create a staff member; the password is read from stdin")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--department", required=True, choices=[d.value for d in Department])
    create.add_argument("--branch")
    create.add_argument(
        "--password-from-env",
        action="store_true",
        help="read the password from CRM_NEW_STAFF_PASSWORD instead of stdin",
    )
    create.set_defaults(run=cmd_create_staff)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = {k: v for k, v in os.environ.items() if k != "CRM_NEW_STAFF_PASSWORD"}
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"crm: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    use_settings(settings)
    return args.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
