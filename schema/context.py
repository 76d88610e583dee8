"""Per-request context: who is calling, per-request DataLoaders, and the app's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from core.metrics import Metrics
from core.pubsub import InProcessPubSub, RedisPubSub
from core.settings import Settings
from models.staff import Role
from schema.loaders import Loaders
from services import auth
from services.access import Caller
from tasks.broker import TaskQueue


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

    async def caller(self) -> Caller:
        """Resolved once per request (per connection for websockets, once connection params have arrived)."""
        if self._caller is None or (self._caller.staff is None and self.connection_params):
            token = self._token()
            staff = await auth.authenticate(token, secret_key=self.settings.secret_key) if token else None
            self._caller = Caller(staff, self.request_id, self.ip)
        return self._caller

    def fresh_loaders(self) -> None:
        """Forget cached rows: a subscription's context outlives many changes."""
        self.loaders = Loaders()

    def enqueue(self, actor_name: str):
        return lambda *args: self.queue.send(actor_name, *args)
