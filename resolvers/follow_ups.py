from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from resolvers.filters import FilterMapping, GlobalId
from schema.base import Connection, require_pk
from schema.conventions import mutation
from schema.follow_ups import CreateFollowUpInput, FollowUp, FollowUpFilter, FollowUpPayload, UpdateFollowUpInput
from schema.permissions import allow
from services import access, follow_ups as follow_up_service
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("created_at", descending=True), OrderKey("id", descending=True)]


FOLLOW_UP_FILTER = FilterMapping(
    FollowUpFilter,
    follow_up_service.FollowUpFilter,
    ids={"assignee_id": GlobalId("Staff"), "customer_id": GlobalId("Customer"), "complaint_id": GlobalId("Complaint")},
)


async def follow_ups(
    info: Info,
    filter: FollowUpFilter | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[FollowUp]:
    qs = follow_up_service.apply_filter(
        follow_up_service.visible(await caller_of(info)), FOLLOW_UP_FILTER.to_service(filter)
    )
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, FollowUp.from_model)


async def create_follow_up(info: Info, input: CreateFollowUpInput) -> FollowUpPayload:
    created = await follow_up_service.create(
        await caller_of(info),
        title=input.title,
        description=input.description,
        customer_id=require_pk(input.customer_id, "Customer", "customerId") if input.customer_id else None,
        complaint_id=require_pk(input.complaint_id, "Complaint", "complaintId") if input.complaint_id else None,
        assignee_id=require_pk(input.assignee_id, "Staff", "assigneeId") if input.assignee_id else None,
        department=input.department,
        priority=input.priority,
        due_at=input.due_at,
    )
    return FollowUpPayload(follow_up=FollowUp.from_model(created))


def _given(value, convert=lambda v: v):
    if value is strawberry.UNSET:
        return follow_up_service.UNSET
    return None if value is None else convert(value)


async def update_follow_up(info: Info, input: UpdateFollowUpInput) -> FollowUpPayload:
    updated = await follow_up_service.update(
        await caller_of(info),
        require_pk(input.id, "FollowUp"),
        status=input.status,
        assignee_id=_given(input.assignee_id, lambda v: require_pk(v, "Staff", "assigneeId")),
        department=_given(input.department),
        priority=input.priority,
        due_at=_given(input.due_at),
    )
    return FollowUpPayload(follow_up=FollowUp.from_model(updated))


@strawberry.type
class Query:
    follow_ups: Connection[FollowUp] = strawberry.field(resolver=follow_ups, extensions=allow(access.ALL_ROLES))


@strawberry.type
class Mutation:
    create_follow_up: FollowUpPayload = mutation(
        "follow_up.create", access.FOLLOW_UP_WRITERS, resolver=create_follow_up
    )
    update_follow_up: FollowUpPayload = mutation(
        "follow_up.update", access.FOLLOW_UP_WRITERS, resolver=update_follow_up
    )
