from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from models.follow_ups import (
    FollowUp as FollowUpModel,
    FollowUpStatus as FollowUpStatusEnum,
    Priority as PriorityEnum,
)
from schema import loaders
from schema.base import Node, UserError, to_global_id
from schema.customers import reveal_text
from schema.staff import Department, Staff, load_staff
from services import follow_ups as follow_ups_service
from services.access import Caller
from services.follow_ups import is_overdue

if TYPE_CHECKING:
    from schema.complaints import Complaint
    from schema.customers import Customer

Priority = strawberry.enum(PriorityEnum, name="Priority")
FollowUpStatus = strawberry.enum(FollowUpStatusEnum, name="FollowUpStatus")


@strawberry.type(
    description="A piece of work for a staff member or department: call back, collect a document, review a case."
)
class FollowUp(Node):
    id: strawberry.ID
    department: Department | None
    priority: Priority
    status: FollowUpStatus
    due_at: datetime | None
    overdue: bool
    created_at: datetime
    completed_at: datetime | None
    _m: strawberry.Private[FollowUpModel]

    @strawberry.field
    def title(self, info: Info) -> str:
        return reveal_text(info, self._m.title)

    @strawberry.field
    def description(self, info: Info) -> str | None:
        return reveal_text(info, self._m.description)

    @strawberry.field
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")] | None:
        from schema.customers import Customer

        if self._m.customer_id is None:
            return None
        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @strawberry.field
    async def complaint(self, info: Info) -> Annotated[Complaint, strawberry.lazy("schema.complaints")] | None:
        from schema.complaints import Complaint

        if self._m.complaint_id is None:
            return None
        return Complaint.from_model(await info.context.loaders.complaint.load(self._m.complaint_id))

    @strawberry.field
    async def assignee(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.assignee_id)

    @strawberry.field
    async def created_by(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.created_by_id)

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, FollowUp]:
        return await cls.nodes_in(follow_ups_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: FollowUpModel) -> FollowUp:
        return cls(
            id=to_global_id("FollowUp", m.id),
            department=m.department,
            priority=m.priority,
            status=m.status,
            due_at=m.due_at,
            overdue=is_overdue(m),
            created_at=m.created_at,
            completed_at=m.completed_at,
            _m=m,
        )


@strawberry.input
class FollowUpFilter:
    assignee_id: strawberry.ID | None = None
    department: Department | None = None
    status: list[FollowUpStatus] | None = None
    customer_id: strawberry.ID | None = None
    complaint_id: strawberry.ID | None = None
    overdue: bool | None = None


@strawberry.input
class CreateFollowUpInput:
    title: str
    description: str | None = None
    customer_id: strawberry.ID | None = None
    complaint_id: strawberry.ID | None = None
    assignee_id: strawberry.ID | None = None
    department: Department | None = None
    priority: Priority | None = None
    due_at: datetime | None = None


@strawberry.input
class UpdateFollowUpInput:
    id: strawberry.ID
    status: FollowUpStatus | None = None
    assignee_id: strawberry.ID | None = strawberry.UNSET
    department: Department | None = strawberry.UNSET
    priority: Priority | None = None
    due_at: datetime | None = strawberry.UNSET


@strawberry.type
class FollowUpPayload:
    follow_up: FollowUp | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


loaders.register("complaint_follow_ups", loaders.grouped(FollowUpModel, "-created_at", parent="complaint_id"))
