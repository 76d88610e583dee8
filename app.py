"""The bank CRM service: `create_app(settings)` wires everything; `main()` is the `crm` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from core import db
from core.graphiql import GRAPHIQL_STATIC_DIR, graphiql_assets_present, graphiql_html
from core.http import BodyLimit, RequestContext
from core.logs import configure_logging
from core.metrics import Metrics
from core.pubsub import InProcessPubSub, RedisPubSub, make_pubsub
from core.settings import Settings, SettingsError
from schema.build import build_schema, export_sdl
from schema.context import Context, bearer_token
from services import audit, auth, jobs
from services.access import Caller
from services.errors import DomainError
from tasks.broker import TaskQueue

log = logging.getLogger("crm")
SCHEMA_FILE = Path(__file__).resolve().parent / "schema.graphql"


@dataclass
class Runtime:
    """What the lifespan starts and the requests use."""

    pubsub: InProcessPubSub | RedisPubSub
    queue: TaskQueue
    worker: object | None = None  # the embedded dramatiq.Worker
    scheduler: object | None = None  # the embedded periodic-work scheduler


class CRMGraphQL(GraphQL):
    def __init__(self, app: Starlette, settings: Settings, metrics: Metrics) -> None:
        super().__init__(
            build_schema(production=settings.production),
            graphql_ide=None if settings.production else "graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            multipart_uploads_enabled=True,
        )
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def get_context(self, request: Request | WebSocket, response: Response | None = None) -> Context:
        runtime: Runtime = self.app.state.runtime
        context = Context(
            request=request,
            response=response,
            settings=self.settings,
            pubsub=runtime.pubsub,
            queue=runtime.queue,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            ip=request.client.host if request.client else None,
            metrics=self.metrics,
        )
        return context

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_html())


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await db.init_orm(settings.database_url)
        runtime = None
        try:
            await db.ensure_migrated()
            if settings.admin_username and settings.admin_password:
                from services.staff import ensure_admin

                if await ensure_admin(settings.admin_username, settings.admin_password):
                    log.info("created the first ADMIN, %s", settings.admin_username)
            runtime = Runtime(make_pubsub(settings.redis_url), TaskQueue(settings))
            if settings.embedded_broker:
                await _start_embedded_workers(runtime, run_scheduler=settings.env != "test")
            app.state.runtime = runtime
            yield
        finally:
            if runtime is not None:
                if runtime.scheduler is not None:
                    runtime.scheduler.shutdown(wait=False)
                if runtime.worker is not None:
                    # Worker threads wait on coroutines of this loop: stop them without blocking it.
                    await asyncio.to_thread(runtime.worker.stop)
                runtime.queue.close()
                await runtime.pubsub.close()
            await db.close_orm()

    app = Starlette(
        lifespan=lifespan,
        middleware=[Middleware(RequestContext, metrics=metrics), Middleware(BodyLimit)],
    )
    graphql = CRMGraphQL(app, settings, metrics)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {"database": await _database_ready(), "broker": await _broker_ready(app.state.runtime)}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(await _job_counts()), media_type="text/plain; version=0.0.4")

    async def job_download(request: Request) -> Response:
        return await _download(request, settings)

    app.router.routes.extend(
        [
            Route("/jobs/{job_id:int}/download", job_download),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ]
    )
    if not settings.production and graphiql_assets_present():
        app.router.routes.append(Mount("/static/graphiql", StaticFiles(directory=GRAPHIQL_STATIC_DIR)))
    return app


async def _start_embedded_workers(runtime: Runtime, *, run_scheduler: bool) -> None:
    """Workers (and, outside tests, the scheduler) inside this process, for the embedded setup."""
    from services.jobs import unfinished
    from tasks.scheduler import build_scheduler

    runtime.worker = runtime.queue.embedded_worker(asyncio.get_running_loop(), runtime.pubsub)
    runtime.worker.start()
    # The in-process queue died with the previous process: whatever it held is sent again.
    for job_id in await unfinished():
        runtime.queue.send("run_job", job_id)
    if run_scheduler:
        runtime.scheduler = build_scheduler(runtime.queue)
        runtime.scheduler.start()


async def _download(request: Request, settings: Settings) -> Response:
    """A finished job's file (report, export), for the staff member who may see the job."""
    token = bearer_token(request.headers.get("authorization"))
    staff = await auth.authenticate(token, secret_key=settings.secret_key) if token else None
    if staff is None:
        return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
    caller = Caller(
        staff, request.scope.get("state", {}).get("request_id"), request.client.host if request.client else None
    )
    try:
        job = await jobs.get(caller, request.path_params["job_id"])
    except DomainError:
        return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
    result = job.result or {}
    if "csv" not in result:
        return JSONResponse({"error": "NOT_FOUND", "message": "This job has no file (yet)"}, status_code=404)
    await audit.record(caller, "job.download", subject_type="Job", subject_id=str(job.id))
    filename = result.get("filename", f"job-{job.id}.csv")
    return Response(
        result["csv"],
        media_type=result.get("contentType", "text/csv") + "; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _database_ready() -> bool:
    from tortoise import Tortoise

    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
        return True
    except Exception:
        log.exception("database check failed")
        return False


async def _broker_ready(runtime: Runtime) -> bool:
    try:
        if runtime.worker is not None:
            return all(w.is_alive() for w in runtime.worker.workers)
        return await runtime.pubsub.ping()
    except Exception:
        log.exception("broker check failed")
        return False


async def _job_counts() -> dict[str, int]:
    from tortoise.functions import Count

    from models.jobs import Job, JobStatus

    counts = {s.value: 0 for s in JobStatus}
    for row in await Job.annotate(n=Count("id")).group_by("status").values("status", "n"):
        counts[str(row["status"].value if hasattr(row["status"], "value") else row["status"])] = row["n"]
    return counts


# ---------------------------------------------------------------- command line


async def _preflight(settings: Settings) -> None:
    await db.init_orm(settings.database_url)
    try:
        await db.ensure_migrated()
    finally:
        await db.close_orm()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    try:
        asyncio.run(_preflight(settings))
    except db.UnmigratedDatabase as exc:
        print(f"crm: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, proxy_headers=True)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_broker:
        print("crm: `worker` needs CRM_REDIS_URL; without it `serve` runs the workers itself", file=sys.stderr)
        return 2
    worker = TaskQueue(settings).process_worker(args.threads)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("worker started with %d threads", args.threads)
    stop.wait()
    log.info("worker stopping")
    worker.stop()
    return 0


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_broker:
        print("crm: `scheduler` needs CRM_REDIS_URL; it sends work to the workers through Redis", file=sys.stderr)
        return 2
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
    from services.seed import seed

    async def run() -> None:
        await db.init_orm(settings.database_url)
        try:
            await db.ensure_migrated()
            report = await seed(password=args.password, customers_wanted=args.customers)
            for line in report:
                print(line)
        finally:
            await db.close_orm()

    asyncio.run(run())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from models.staff import Department, Role

    parser = argparse.ArgumentParser(prog="crm", description="Bank CRM backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the GraphQL API (with in-process workers when no Redis is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
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
    seed.add_argument("--password", default=None, help="password for the demo staff (default: printed, random)")
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
    return args.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
