from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from models.notifications import (
    Notification as NotificationModel,
    NotificationStatus as NotificationStatusEnum,
)
from schema.base import Node, UserError, to_global_id
from schema.customers import Channel, reveal_text
from services import notifications as notification_service
from services.access import Caller

if TYPE_CHECKING:
    from schema.customers import Customer

NotificationStatus = strawberry.enum(NotificationStatusEnum, name="NotificationStatus")


@strawberry.type(
    description="A message to a customer in the outbox: queued in the same transaction as its cause, sent by a worker."
)
class Notification(Node):
    id: strawberry.ID
    channel: Channel
    recipient: str = strawberry.field(description="Masked address (email or phone) it went to.")
    stored_subject: strawberry.Private[str | None]
    stored_body: strawberry.Private[str]
    status: NotificationStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    _m: strawberry.Private[NotificationModel]

    @strawberry.field
    def subject(self, info: Info) -> str | None:
        return reveal_text(info, self.stored_subject)

    @strawberry.field
    def body(self, info: Info) -> str:
        return reveal_text(info, self.stored_body) or ""

    @strawberry.field
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")] | None:
        from schema.customers import Customer

        if self._m.customer_id is None:
            return None
        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Notification]:
        return await cls.nodes_in(notification_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: NotificationModel) -> Notification:
        return cls(
            id=to_global_id("Notification", m.id),
            channel=m.channel,
            # Masked whatever the caller's role: the address is only ever needed by the worker that sends.
            recipient=notification_service.masked_recipient(m),
            stored_subject=m.subject,
            # Without what the message carries for the customer alone (a survey link's token).
            stored_body=notification_service.shown_body(m),
            status=m.status,
            attempts=m.attempts,
            last_error=m.last_error,
            created_at=m.created_at,
            sent_at=m.sent_at,
            _m=m,
        )


@strawberry.input
class RetryNotificationInput:
    id: strawberry.ID


@strawberry.type
class NotificationPayload:
    notification: Notification | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
