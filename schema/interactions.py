from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from models.interactions import (
    Direction as DirectionEnum,
    Interaction as InteractionModel,
    InteractionKind as InteractionKindEnum,
    InteractionStatus as InteractionStatusEnum,
)
from schema.base import Node, UserError, to_global_id
from schema.customers import Channel, reveal_text
from schema.staff import Staff, load_staff
from services import interactions as interactions_service
from services.access import Caller

if TYPE_CHECKING:
    from schema.customers import Customer

Direction = strawberry.enum(DirectionEnum, name="Direction")
InteractionKind = strawberry.enum(InteractionKindEnum, name="InteractionKind")
InteractionStatus = strawberry.enum(InteractionStatusEnum, name="InteractionStatus")


@strawberry.type(description="A contact with a customer; an INQUIRY is a consultation, OPEN until resolved.")
class Interaction(Node):
    id: strawberry.ID
    channel: Channel
    direction: Direction
    kind: InteractionKind
    status: InteractionStatus
    occurred_at: datetime
    duration_seconds: int | None
    resolved_at: datetime | None
    created_at: datetime
    _m: strawberry.Private[InteractionModel]

    @strawberry.field
    def subject(self, info: Info) -> str:
        return reveal_text(info, self._m.subject)

    @strawberry.field
    def content(self, info: Info) -> str | None:
        return reveal_text(info, self._m.content)

    @strawberry.field
    def outcome(self, info: Info) -> str | None:
        return reveal_text(info, self._m.outcome)

    @strawberry.field
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @strawberry.field
    async def staff(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.staff_id)

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Interaction]:
        return await cls.nodes_in(interactions_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: InteractionModel) -> Interaction:
        return cls(
            id=to_global_id("Interaction", m.id),
            channel=m.channel,
            direction=m.direction,
            kind=m.kind,
            status=m.status,
            occurred_at=m.occurred_at,
            duration_seconds=m.duration_seconds,
            resolved_at=m.resolved_at,
            created_at=m.created_at,
            _m=m,
        )


@strawberry.input
class InteractionFilter:
    customer_id: strawberry.ID | None = None
    staff_id: strawberry.ID | None = None
    channel: list[Channel] | None = None
    kind: list[InteractionKind] | None = None
    status: InteractionStatus | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    search: str | None = None


@strawberry.input
class LogInteractionInput:
    customer_id: strawberry.ID
    channel: Channel
    direction: Direction
    kind: InteractionKind
    subject: str
    content: str | None = None
    outcome: str | None = None
    status: InteractionStatus | None = None
    occurred_at: datetime | None = None
    duration_seconds: int | None = None


@strawberry.input
class ResolveInteractionInput:
    id: strawberry.ID
    outcome: str


@strawberry.type
class InteractionPayload:
    interaction: Interaction | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
