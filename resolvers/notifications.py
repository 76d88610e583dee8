from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from resolvers.filters import GlobalId
from schema.base import Connection, require_pk
from schema.conventions import mutation
from schema.notifications import Notification, NotificationPayload, NotificationStatus, RetryNotificationInput
from schema.permissions import allow
from services import access, notifications as notification_service
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("created_at", descending=True), OrderKey("id", descending=True)]
CUSTOMER_ID = GlobalId("Customer")


async def notifications(
    info: Info,
    customer_id: strawberry.ID | None = None,
    status: list[NotificationStatus] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Notification]:
    wanted = notification_service.NotificationFilter(
        customer_id=CUSTOMER_ID.pk(customer_id, ["customerId"]) if customer_id is not None else None,
        status=status,
    )
    qs = notification_service.apply_filter(notification_service.visible(await caller_of(info)), wanted)
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, Notification.from_model)


async def retry_notification(info: Info, input: RetryNotificationInput) -> NotificationPayload:
    queued = await notification_service.retry(await caller_of(info), require_pk(input.id, "Notification"))
    return NotificationPayload(notification=Notification.from_model(queued))


@strawberry.type
class Query:
    notifications: Connection[Notification] = strawberry.field(
        resolver=notifications, extensions=allow(access.ALL_ROLES)
    )


@strawberry.type
class Mutation:
    retry_notification: NotificationPayload = mutation(
        "notification.retry", access.NOTIFICATION_RETRIERS, resolver=retry_notification
    )
