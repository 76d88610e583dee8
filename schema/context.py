"""Per-request context: who is calling, per-request DataLoaders, and the app's services."""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketState

from core.metrics import Metrics
from core.pubsub import InProcessPubSub, RedisPubSub
from core.settings import Settings
from models.staff import Role
from schema.loaders import Loaders
from services import audit, auth
from services.access import Caller
from tasks.broker import TaskQueue

# How old a websocket connection's caller may get before an operation checks the token again.
WEBSOCKET_RECHECK_SECONDS = 1.0


def bearer_token(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    settings: Settings
    pubsub: InProcessPubSub | RedisPubSub
    queue: TaskQueue
    request_id: str
    ip: str | None
    metrics: Metrics | None = None
    loaders: Loaders = field(default_factory=Loaders)
    # Set by the websocket protocol from connection_init's payload.
    connection_params: dict | None = None
    # Customers whose personal data left unmasked in this request, and which fields (for customer.pii_read).
    pii_reads: dict[int, set[str]] = field(default_factory=dict)
    _caller: Caller | None = None
    _closed: bool = False
    _checked_at: float = 0.0

    @property
    def viewer_role(self) -> Role | None:
        """The caller's role once authenticated (every field that shows personal data sits below a check)."""
        return self._caller.role if self._caller else None

    def _token(self) -> str | None:
        if self.connection_params:
            params = {k.lower(): v for k, v in self.connection_params.items()}
            return bearer_token(params.get("authorization")) or (
                params.get("authtoken") if isinstance(params.get("authtoken"), str) else None
            )
        return bearer_token(self.request.headers.get("authorization"))

    @property
    def token_presented(self) -> bool:
        """Whether the request carried a token at all (valid or not)."""
        return self._token() is not None

    async def caller(self) -> Caller:
        """Resolved once per request. A websocket lives long: there it is resolved again when the last check is
        more than WEBSOCKET_RECHECK_SECONDS old (operations sent over it after a logout or a deactivation are
        refused), and live subscriptions re-check before every message (`recheck`)."""
        return self.known_caller() or await self.recheck()

    def known_caller(self) -> Caller | None:
        """The caller when `caller()` would answer it without looking again (None: it must look)."""
        stale = self.is_websocket and time.monotonic() - self._checked_at > WEBSOCKET_RECHECK_SECONDS
        if self._caller is None or stale or (self._caller.staff is None and self.connection_params):
            return None
        return self._caller

    async def recheck(self) -> Caller:
        """The caller anew, from the token: a live subscription asks before each message (docs/DOMAIN.md: a revoked or
        expired token or a deactivated staff member ends it; a new role or branch applies from the next message)."""
        token = self._token()
        staff = await auth.authenticate(token, secret_key=self.settings.secret_key) if token else None
        self._caller = Caller(staff, self.request_id, self.ip)
        self._checked_at = time.monotonic()
        return self._caller

    @property
    def is_websocket(self) -> bool:
        return isinstance(self.request, WebSocket)

    async def close_socket(self, code: int, reason: str) -> bool:
        """Close the websocket this context belongs to (graphql-transport-ws codes: 4401 Unauthorized, 4403
        Forbidden); False when there is none or it is already closing."""
        if not self.is_websocket or self._closed:
            return False
        self._closed = True
        if self.request.application_state == WebSocketState.DISCONNECTED:
            return False
        with suppress(RuntimeError):  # the client went away meanwhile
            await self.request.close(code=code, reason=reason)
        return True

    async def flush_pii_reads(self) -> int:
        """One `customer.pii_read` audit entry per customer whose personal data left unmasked since the last
        flush: after each subscription message (a request's are flushed when it ends). The number written."""
        if not self.pii_reads:
            return 0
        reads, self.pii_reads = self.pii_reads, {}
        caller = self._caller or Caller(None, self.request_id, self.ip)
        details = {str(customer_id): {"fields": sorted(fields)} for customer_id, fields in sorted(reads.items())}
        await audit.record_each(caller, "customer.pii_read", "Customer", details)
        return len(reads)

    def fresh_loaders(self) -> None:
        """Forget cached rows: a subscription's context outlives many changes."""
        self.loaders = Loaders()

    def enqueue(self, actor_name: str):
        return lambda *args: self.queue.send(actor_name, *args)
