"""ASGI middleware: request ids, JSON request logs, metrics, and the request body limit."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.db import UNAVAILABLE_MESSAGE, is_unavailable
from core.logs import request_id_var
from core.metrics import Metrics

log = logging.getLogger("crm.http")
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MiB = 1024 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestContext:
    """Gives every request an id (a client's X-Request-ID when it is sane), logs it and measures it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            # Any page (the survey page, ...) whose database is out of reach: 503, one line, no traceback.
            if scope["type"] != "http" or started_response or not is_unavailable(error):
                raise
            log.warning("%s %s: SERVICE_UNAVAILABLE (%s)", scope["method"], scope["path"], type(error).__name__)
            await _unavailable(send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            if scope["type"] == "http":
                self.metrics.observe_request(scope["method"], scope["path"], status, elapsed)
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                        "client": (scope.get("client") or ("",))[0],
                    },
                )
            request_id_var.reset(token)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """GraphQL requests are at most 1 MiB; multipart uploads (file imports) have their own, larger limit."""

    def __init__(self, app: ASGIApp, max_body: int = MiB, max_upload: int = 64 * MiB) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type") or ""
        limit = self.max_upload if content_type.startswith("multipart/form-data") else self.max_body
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reject(send, limit)


async def _unavailable(send: Send) -> None:
    body = json.dumps(
        {"errors": [{"message": UNAVAILABLE_MESSAGE, "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"5"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "errors": [
                {
                    "message": f"Request body is larger than {limit // 1024} KiB",
                    "extensions": {"code": "LIMIT_EXCEEDED"},
                }
            ]
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Every response: no MIME sniffing. API answers: never stored by a browser or a shared cache (they hold
# customers' data and tokens). HTML without a policy of its own: nothing but same-origin styles and images.
DEFAULT_HTML_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
CACHEABLE_PREFIXES = ("/static/", "/s/static/")


class SecurityHeaders:
    """X-Content-Type-Options on every response, Cache-Control: no-store on all but static assets, and a
    Content-Security-Policy on HTML that did not set its own (GraphiQL and the survey page do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(CACHEABLE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                headers = [(k, v) for k, v in headers if k.lower() != b"x-content-type-options"]
                headers.append((b"x-content-type-options", b"nosniff"))
                if not cacheable and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html") and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", DEFAULT_HTML_CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(host: str | None, networks: tuple[Network, ...]) -> bool:
    address = _address(host) if host else None
    return address is not None and any(address in network for network in networks)


class TrustedProxies:
    """The client address (scope["client"]) and scheme come from X-Forwarded-For / X-Forwarded-Proto only when
    the peer is one of `networks` (CRM_TRUSTED_PROXIES). The client is the nearest address in X-Forwarded-For
    that is not itself a trusted proxy, so a client cannot slip an address of its choosing in front of the
    list. Rate limits, the audit log and the request log all read scope["client"]."""

    def __init__(self, app: ASGIApp, networks: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            peer = (scope.get("client") or (None,))[0]
            if _trusted(peer, self.networks):
                scope = dict(scope)
                forwarded = _header(scope, b"x-forwarded-for")
                if forwarded:
                    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
                    client = None
                    for hop in reversed(hops):
                        client = hop
                        if not _trusted(hop, self.networks):
                            break
                    address = _address(client) if client else None
                    if address is not None:
                        scope["client"] = (str(address), 0)
                proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
                if proto in ("http", "https"):
                    if scope["type"] == "websocket":
                        scope["scheme"] = "wss" if proto == "https" else "ws"
                    else:
                        scope["scheme"] = proto
        await self.app(scope, receive, send)


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# What a GraphQL request may accept: the two JSON media types (or wildcards), the IDE's HTML on GET, and the
# streaming transports (multipart subscriptions, server-sent events).
_ACCEPTABLE = {
    GRAPHQL_RESPONSE_JSON,
    "application/json",
    "application/*",
    "*/*",
    "multipart/mixed",
    "text/event-stream",
}


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.lower(), q))
    return ranges


def graphql_media_type(accept: str | None, *, html_allowed: bool = False) -> str | None:
    """The media type of a GraphQL response for this Accept header (GraphQL over HTTP): application/json when
    the client says nothing, application/graphql-response+json when it asks for it at least as much as for
    application/json; None when nothing acceptable is asked for (406)."""
    if not accept or not accept.strip():
        return "application/json"
    ranges = {media: q for media, q in _media_ranges(accept)}
    acceptable = {
        m: q for m, q in ranges.items() if q > 0 and (m in _ACCEPTABLE or (html_allowed and m == "text/html"))
    }
    if not acceptable:
        return None
    wanted = ranges.get(GRAPHQL_RESPONSE_JSON, 0.0)
    if wanted > 0 and wanted >= ranges.get("application/json", 0.0):
        return GRAPHQL_RESPONSE_JSON
    return "application/json"
