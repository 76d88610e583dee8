"""The bank CRM service: `create_app(settings)` wires everything; the lifespan starts and stops what the
requests use and hands it to them as lifespan state (`request.state.runtime`).

The command line is cli.py; `python app.py COMMAND` runs it too."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

import endpoints
from core import db, domains
from core.graphiql import GRAPHIQL_STATIC_DIR, graphiql_assets_present, graphiql_html
from core.http import BodyLimit, RequestContext
from core.metrics import Metrics
from core.pubsub import InProcessPubSub, RedisPubSub, make_pubsub
from core.settings import Settings, use as use_settings
from schema.build import build_schema
from schema.context import Context
from tasks.broker import TaskQueue

log = logging.getLogger("crm")


@dataclass
class Runtime:
    """What the lifespan starts and the requests use (lifespan state `runtime`)."""

    pubsub: InProcessPubSub | RedisPubSub
    queue: TaskQueue
    worker: object | None = None  # the embedded dramatiq.Worker
    scheduler: object | None = None  # the embedded periodic-work scheduler


class CRMGraphQL(GraphQL):
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__(
            build_schema(production=settings.production),
            graphql_ide=None if settings.production else "graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            multipart_uploads_enabled=True,
        )
        self.settings = settings
        self.metrics = metrics

    async def get_context(self, request: Request | WebSocket, response: Response | None = None) -> Context:
        runtime: Runtime = request.state.runtime
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            pubsub=runtime.pubsub,
            queue=runtime.queue,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            ip=request.client.host if request.client else None,
            metrics=self.metrics,
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_html())


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        use_settings(settings)
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
            yield {"runtime": runtime}
        finally:
            if runtime is not None:
                await _stop(runtime)
            await db.close_orm()

    graphql = CRMGraphQL(settings, metrics)
    routes = [
        *endpoints.routes(settings, metrics),
        *(route for page in domains.modules("pages") for route in page.routes(settings)),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    if not settings.production and graphiql_assets_present():
        routes.append(Mount("/static/graphiql", StaticFiles(directory=GRAPHIQL_STATIC_DIR)))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestContext, metrics=metrics), Middleware(BodyLimit)],
    )


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


async def _stop(runtime: Runtime) -> None:
    if runtime.scheduler is not None:
        runtime.scheduler.shutdown(wait=False)
    if runtime.worker is not None:
        # Worker threads wait on coroutines of this loop: stop them without blocking it.
        await asyncio.to_thread(runtime.worker.stop)
    runtime.queue.close()
    await runtime.pubsub.close()


if __name__ == "__main__":
    from cli import main

    sys.exit(main())
