"""The bank CRM service: `create_app(settings)` wires everything; the lifespan starts and stops what the
requests use and hands it to them as lifespan state (`request.state.runtime`).

The command line is cli.py; `python app.py COMMAND` runs it too."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

try:  # what uvicorn's http="auto" picks
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _UvicornHttpProtocol
except ImportError:  # pragma: no cover (httptools is a dependency; h11 is uvicorn's fallback)
    from uvicorn.protocols.http.h11_impl import H11Protocol as _UvicornHttpProtocol

import endpoints
from core import db, domains, heap
from core.graphiql import GRAPHIQL_STATIC_DIR, graphiql_assets_present, graphiql_csp, graphiql_html
from core.http import (
    GRAPHQL_RESPONSE_JSON,
    BodyLimit,
    RequestContext,
    SecurityHeaders,
    TrustedProxies,
    graphql_media_type,
)
from core.logs import log_graphql_errors
from core.metrics import Metrics
from core.persisted_queries import PersistedQueries, PersistedQueryError
from core.pubsub import InProcessPubSub, RedisPubSub, make_pubsub
from core.settings import Settings, use as use_settings
from schema.build import LIMITS, shared_schema
from schema.context import Context, bearer_token
from services import limits
from tasks.broker import TaskQueue

log = logging.getLogger("crm")


@dataclass
class Runtime:
    """What the lifespan starts and the requests use (lifespan state `runtime`)."""

    pubsub: InProcessPubSub | RedisPubSub
    queue: TaskQueue
    worker: object | None = None  # the embedded dramatiq.Worker
    scheduler: object | None = None  # the embedded periodic-work scheduler


MEDIA_KEY = "crm.graphql_media_type"  # the scope key holding the response's negotiated media type
REQUEST_CONTENT_TYPES = ("application/json", "multipart/form-data")


class BatchTooLarge(HTTPException):
    """More operations in one request than LIMITS["batch"]."""


class CRMGraphQL(GraphQL):
    """Strawberry's ASGI view, speaking GraphQL over HTTP (https://graphql.github.io/graphql-over-http/):
    application/graphql-response+json when asked for (400 when the request failed before execution), 406 for
    an Accept it cannot satisfy, 415 for a body that is neither JSON nor a multipart upload, 405 for mutations
    over GET, and a JSON error with extensions.code BAD_REQUEST for any malformed request."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        schema = shared_schema(settings.production)
        # Strawberry logs every error at ERROR with the query text and a traceback: log them our way instead.
        schema.process_errors = log_graphql_errors
        super().__init__(
            schema,
            graphql_ide=None if settings.production else "graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            multipart_uploads_enabled=True,
            # Cross-origin websocket handshakes (browsers apply no CORS to them): the same allow-list as CORS.
            allowed_origins=settings.cors_origin_list,
        )
        self.settings = settings
        self.metrics = metrics
        self.persisted_queries = PersistedQueries()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        media = graphql_media_type(request.headers.get("accept"), html_allowed=request.method == "GET")
        content_type, _ = parse_content_type(request.headers.get("content-type") or "")
        if media is None:
            response = _request_error(
                406,
                f"Ask for {GRAPHQL_RESPONSE_JSON} or application/json (Accept)",
                "NOT_ACCEPTABLE",
                "application/json",
            )
        elif request.method == "POST" and content_type.lower() not in REQUEST_CONTENT_TYPES:
            response = _request_error(
                415, "Send the request as application/json (or multipart/form-data for uploads)", "BAD_REQUEST", media
            )
        elif limited := await _rate_limited(request, media):
            response = limited
        else:
            scope[MEDIA_KEY] = media
            try:
                response = await self.run(request)
            except PersistedQueryError as exc:
                # Apollo's clients expect a 200 with the code, then send the text (a wrong hash is the client's bug).
                response = _request_error(200 if exc.code != "BAD_REQUEST" else 400, exc.message, exc.code, media)
            except HTTPException as exc:
                if isinstance(exc.__cause__, InvalidOperationTypeError) and request.method == "GET":
                    response = _request_error(405, exc.reason, "BAD_REQUEST", media, headers={"Allow": "POST"})
                else:
                    code = {404: "NOT_FOUND"}.get(exc.status_code, "BAD_REQUEST")
                    code = "LIMIT_EXCEEDED" if isinstance(exc, BatchTooLarge) else code
                    response = _request_error(exc.status_code, exc.reason, code, media)
        await response(scope, receive, send)

    async def parse_http_body(self, request):
        if request.method == "POST" and parse_content_type(request.content_type or "")[0] == "application/json":
            body = self.parse_json(await request.get_body())
            items = body if isinstance(body, list) else [body]
            if not items or not all(isinstance(item, dict) for item in items):
                raise HTTPException(400, "The body must be a JSON object (or a non-empty list of them: a batch)")
            if len(items) > LIMITS["batch"]:
                raise BatchTooLarge(400, f"A batch holds at most {LIMITS['batch']} operations")
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            item.query = self.persisted_queries.query_for(item.query, item.extensions)
        return data

    async def execute_operation(self, request, request_adapter, request_data, context, root_value, sub_response):
        """The operations of a batch run one after another, in the order sent, as the fields of a mutation do:
        they share the request's context, a later one may depend on an earlier one's writes, and a sign-in
        lockout counts their guesses in order (Strawberry would run them all at once)."""
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        return [
            await self.execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=data,
            )
            for data in request_data
        ]

    def encode_json(self, data: object) -> str:
        """Responses are JSON of plain values (every scalar is serialised by then): orjson writes them ~10x faster.
        Text, not bytes: websocket messages must go out as text frames."""
        return orjson.dumps(data).decode()

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.graphql_media_type = request.scope.get(MEDIA_KEY, "application/json")
        return sub_response

    def create_response(self, response_data, sub_response: Response) -> Response:
        media = getattr(sub_response, "graphql_media_type", "application/json")
        status = 200
        if media == GRAPHQL_RESPONSE_JSON and isinstance(response_data, dict) and _request_failed(response_data):
            # GraphQL over HTTP: a request error (parse, validation, variables) has no data entry and is a 400.
            response_data = {k: v for k, v in response_data.items() if k != "data"}
            status = 400
        response = Response(
            self.encode_json(response_data),
            status_code=status,
            media_type=f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8" if media == GRAPHQL_RESPONSE_JSON else media,
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

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
        page = graphiql_html()
        return HTMLResponse(page, headers={"Content-Security-Policy": graphiql_csp(page)})


async def _rate_limited(request: Request, media: str) -> Response | None:
    """429 with Retry-After when the request's bucket (its bearer token's, else its address's) is empty."""
    try:
        await limits.take_request(
            bearer_token(request.headers.get("authorization")), request.client.host if request.client else None
        )
    except limits.RateLimited as refused:
        return _request_error(
            429, refused.message, "LIMIT_EXCEEDED", media, headers={"Retry-After": str(refused.retry_after)}
        )
    return None


def _request_failed(response: dict) -> bool:
    errors = response.get("errors") or []
    return response.get("data") is None and bool(errors) and all(not e.get("path") for e in errors)


def _request_error(
    status: int, message: str, code: str, media: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    content_type = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8" if media == GRAPHQL_RESPONSE_JSON else "application/json"
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers={**(headers or {}), "content-type": content_type},
    )


class CRMApp(Starlette):
    """The app, with the security headers outside Starlette's error handling so that a 500 carries them too."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


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
            if settings.env != "test":  # a test process starts an app per test: a full collection each time
                heap.settle()
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
    middleware = [Middleware(TrustedProxies, networks=settings.trusted_networks)]
    if settings.cors_origin_list:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origin_list,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
                max_age=600,
            )
        )
    middleware += [Middleware(RequestContext, metrics=metrics), Middleware(BodyLimit)]
    return CRMApp(routes=routes, lifespan=lifespan, middleware=middleware)


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


# How long a connection with no request under way is kept, once shutdown begins, for a request that may be
# arriving on it: long enough for the event loop to read what the client has sent already.
SHUTDOWN_READ_GRACE_SECONDS = 0.5


class ServingHttpProtocol(_UvicornHttpProtocol):
    """uvicorn's HTTP protocol (`crm serve`'s `http=`), except that on shutdown a connection with no request under
    way is closed a moment later instead of at once.

    uvicorn closes such connections at once; one accepted in the last turn of the event loop before the shutdown,
    whose request is in the socket's buffer but not read yet, is then closed under its request: the client gets a
    reset, though the request was never seen. During a rolling restart (SIGHUP to `serve --workers N`) that fails
    about one request in a thousand. Here the request is read first: it is answered (and the connection closed
    after it, as for any request in flight at shutdown); a connection that stays idle is closed after the grace."""

    def shutdown(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.loop.call_later(SHUTDOWN_READ_GRACE_SECONDS, self._shutdown_after_grace)
            return
        super().shutdown()

    def _shutdown_after_grace(self) -> None:
        if not self.transport.is_closing():
            super().shutdown()


if __name__ == "__main__":
    from cli import main

    sys.exit(main())
