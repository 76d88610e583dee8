"""Per-request context: who is calling, per-request DataLoaders, and the app's services."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from tortoise.functions import Count

from core.metrics import Metrics
from core.pubsub import InProcessPubSub, RedisPubSub
from core.settings import Settings
from models.complaints import Complaint, ComplaintEvent
from models.customers import Consent, Customer, CustomerTag, ProductHolding
from models.follow_ups import FollowUp
from models.notes import Note
from models.staff import Role, Staff
from services import auth
from services.access import Caller
from services.listing import first_per_parent
from tasks.broker import TaskQueue


async def _load_staff(ids: list[int]) -> list[Staff | None]:
    found = {s.id: s for s in await Staff.filter(id__in=set(ids))}
    return [found.get(i) for i in ids]


async def _load_complaints(ids: list[int]) -> list[Complaint | None]:
    found = {c.id: c for c in await Complaint.filter(id__in=set(ids))}
    return [found.get(i) for i in ids]


async def _load_customers(ids: list[int]) -> list[Customer | None]:
    found = {c.id: c for c in await Customer.filter(id__in=set(ids))}
    return [found.get(i) for i in ids]


def _grouped(model, order: str, project=lambda row: row, parent: str = "customer_id"):
    """Rows of `model` per parent id, in `order` and then by id in the same direction."""
    tie = "-id" if order.startswith("-") else "id"

    async def load(parent_ids: list[int]) -> list[list]:
        groups: dict[int, list] = defaultdict(list)
        ordering = (order,) if order.lstrip("-") == "id" else (order, tie)
        for row in await model.filter(**{f"{parent}__in": set(parent_ids)}).order_by(*ordering):
            groups[getattr(row, parent)].append(project(row))
        return [groups.get(i, []) for i in parent_ids]

    return load


@dataclass
class Loaders:
    """One per request: every relation a list can reach is fetched in one query per kind."""

    staff: DataLoader[int, Staff | None] = field(default_factory=lambda: DataLoader(load_fn=_load_staff))
    customer: DataLoader[int, Customer | None] = field(default_factory=lambda: DataLoader(load_fn=_load_customers))
    complaint: DataLoader[int, Complaint | None] = field(default_factory=lambda: DataLoader(load_fn=_load_complaints))
    holdings: DataLoader[int, list[ProductHolding]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(ProductHolding, "opened_at"))
    )
    tags: DataLoader[int, list[str]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(CustomerTag, "id", lambda row: row.tag))
    )
    consents: DataLoader[int, list[Consent]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(Consent, "id"))
    )
    notes: DataLoader[int, list[Note]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(Note, "-created_at"))
    )
    complaint_events: DataLoader[int, list[ComplaintEvent]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(ComplaintEvent, "id", parent="complaint_id"))
    )
    complaint_notes: DataLoader[int, list[Note]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(Note, "-created_at", parent="complaint_id"))
    )
    complaint_follow_ups: DataLoader[int, list[FollowUp]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(FollowUp, "-created_at", parent="complaint_id"))
    )
    _pages: dict[tuple, DataLoader] = field(default_factory=dict)
    _counts: dict[type, DataLoader] = field(default_factory=dict)

    def first_rows(self, model: type, order: tuple[str, ...], size: int) -> DataLoader[int, list]:
        """The first `size` rows of `model` per customer, for every customer on the page at once."""
        key = (model, order, size)
        if key not in self._pages:

            async def load(ids: list[int]) -> list[list]:
                found = await first_per_parent(model, "customer_id", list(order), ids, size)
                return [found[i] for i in ids]

            self._pages[key] = DataLoader(load_fn=load)
        return self._pages[key]

    def counts(self, model: type) -> DataLoader[int, int]:
        """How many rows of `model` each customer has, counted for every customer on the page at once."""
        if model not in self._counts:

            async def load(ids: list[int]) -> list[int]:
                rows = (
                    await model.filter(customer_id__in=set(ids))
                    .group_by("customer_id")
                    .annotate(n=Count("id"))
                    .values("customer_id", "n")
                )
                found = {row["customer_id"]: row["n"] for row in rows}
                return [found.get(i, 0) for i in ids]

            self._counts[model] = DataLoader(load_fn=load)
        return self._counts[model]


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
