from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from models.complaints import (
    Complaint as ComplaintModel,
    ComplaintCategory as ComplaintCategoryEnum,
    ComplaintEvent as ComplaintEventModel,
    ComplaintEventType as ComplaintEventTypeEnum,
    ComplaintReason as ComplaintReasonEnum,
    ComplaintStatus as ComplaintStatusEnum,
)
from schema import loaders
from schema.base import DateRange, Node, SortDirection, UserError, to_global_id
from schema.customers import Channel, reveal_text
from schema.follow_ups import FollowUp, Priority
from schema.notes import Note
from schema.permissions import allow
from schema.protection import EVENTS_SHOWN, FOLLOW_UPS_SHOWN, NOTES_SHOWN
from schema.staff import Department, Staff, load_staff
from services import access, complaints as complaint_service
from services.access import Caller

if TYPE_CHECKING:
    from schema.customers import Customer
    from schema.surveys import SurveyInvitation

ComplaintCategory = strawberry.enum(
    ComplaintCategoryEnum,
    name="ComplaintCategory",
    description="Business type of a complaint, after JR/T 0169-2018 part B.",
)
ComplaintReason = strawberry.enum(
    ComplaintReasonEnum, name="ComplaintReason", description="Cause of a complaint, after JR/T 0169-2018 part C."
)
ComplaintStatus = strawberry.enum(ComplaintStatusEnum, name="ComplaintStatus")
ComplaintEventType = strawberry.enum(ComplaintEventTypeEnum, name="ComplaintEventType")


@strawberry.enum
class SlaState(Enum):
    ON_TRACK = "ON_TRACK"
    AT_RISK = "AT_RISK"
    BREACHED = "BREACHED"
    MET = "MET"
    MISSED = "MISSED"


@strawberry.type
class ComplaintEvent:
    type: ComplaintEventType
    from_status: ComplaintStatus | None
    to_status: ComplaintStatus | None
    at: datetime
    _m: strawberry.Private[ComplaintEventModel]

    @strawberry.field
    def message(self, info: Info) -> str | None:
        return reveal_text(info, self._m.message)

    @strawberry.field(description="null when the system acted (SLA monitor, auto-escalation).")
    async def actor(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.actor_id)

    @classmethod
    def from_model(cls, m: ComplaintEventModel) -> ComplaintEvent:
        return cls(type=m.type, from_status=m.from_status, to_status=m.to_status, at=m.at, _m=m)


@strawberry.type(description="A customer's complaint, handled under the regulator's 15/30/60-day clock.")
class Complaint(Node):
    id: strawberry.ID
    reference_no: str = strawberry.field(description="Human-readable, unique, e.g. CMP-20261128-000123.")
    channel: Channel
    category: ComplaintCategory
    reason: ComplaintReason
    suggested_category: ComplaintCategory | None = strawberry.field(
        description="What keyword rules over summary and description suggest."
    )
    suggested_reason: ComplaintReason | None
    priority: Priority
    status: ComplaintStatus
    amount_in_dispute: Decimal | None
    received_at: datetime
    acknowledged_at: datetime | None
    due_at: datetime = strawberry.field(
        description="15 calendar days after receipt; 30 after a complexity extension; 60 at most with approval."
    )
    extension_count: int
    sla_state: SlaState
    escalation_level: int
    department: Department | None
    compensation_amount: Decimal | None
    customer_accepted: bool | None
    resolved_at: datetime | None
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    # A model instance (a mutation, `node`, the complaint lists) or a `loaders.Row` (a customer's first complaints):
    # its fields and complaint_service.sla_state read columns only.
    _m: strawberry.Private[ComplaintModel | loaders.Row]

    @strawberry.field
    def summary(self, info: Info) -> str:
        return reveal_text(info, self._m.summary)

    @strawberry.field
    def description(self, info: Info) -> str:
        return reveal_text(info, self._m.description)

    @strawberry.field
    def resolution(self, info: Info) -> str | None:
        return reveal_text(info, self._m.resolution)

    @strawberry.field
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @strawberry.field
    async def handler(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.handler_id)

    @strawberry.field
    async def events(self, info: Info) -> list[ComplaintEvent]:
        events = await info.context.loaders.complaint_events.load(self._m.id)
        return [ComplaintEvent.from_model(e) for e in events[:EVENTS_SHOWN]]  # the cost limit counts on it

    @strawberry.field
    async def notes(self, info: Info) -> list[Note]:
        notes = await info.context.loaders.complaint_notes.load(self._m.id)
        return [Note.from_model(n) for n in notes[:NOTES_SHOWN]]

    @strawberry.field
    async def follow_ups(self, info: Info) -> list[FollowUp]:
        follow_ups = await info.context.loaders.complaint_follow_ups.load(self._m.id)
        return [FollowUp.from_model(f) for f in follow_ups[:FOLLOW_UPS_SHOWN]]

    @strawberry.field(extensions=allow(access.SURVEY_READERS))
    async def survey_invitation(
        self, info: Info
    ) -> Annotated[SurveyInvitation, strawberry.lazy("schema.surveys")] | None:
        from schema.surveys import SurveyInvitation

        found = await info.context.loaders.survey_invitation_of_complaint.load(self._m.id)
        return SurveyInvitation.from_model(found) if found else None

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Complaint]:
        return await cls.nodes_in(complaint_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: ComplaintModel | loaders.Row) -> Complaint:
        return cls(
            id=to_global_id("Complaint", m.id),
            reference_no=m.reference_no,
            channel=m.channel,
            category=m.category,
            reason=m.reason,
            suggested_category=m.suggested_category,
            suggested_reason=m.suggested_reason,
            priority=m.priority,
            status=m.status,
            amount_in_dispute=m.amount_in_dispute,
            received_at=m.received_at,
            acknowledged_at=m.acknowledged_at,
            due_at=m.due_at,
            extension_count=m.extension_count,
            sla_state=SlaState(complaint_service.sla_state(m)),
            escalation_level=m.escalation_level,
            department=m.department,
            compensation_amount=m.compensation_amount,
            customer_accepted=m.customer_accepted,
            resolved_at=m.resolved_at,
            closed_at=m.closed_at,
            version=m.version,
            created_at=m.created_at,
            updated_at=m.updated_at,
            _m=m,
        )


@strawberry.input
class ComplaintFilter:
    customer_id: strawberry.ID | None = None
    status: list[ComplaintStatus] | None = None
    category: list[ComplaintCategory] | None = None
    reason: list[ComplaintReason] | None = None
    priority: list[Priority] | None = None
    sla_state: list[SlaState] | None = None
    department: Department | None = None
    handler_id: strawberry.ID | None = None
    branch: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    search: str | None = None


@strawberry.enum
class ComplaintOrderField(Enum):
    RECEIVED_AT = "received_at"
    DUE_AT = "due_at"
    PRIORITY = "priority_rank"
    UPDATED_AT = "updated_at"


@strawberry.input
class ComplaintOrder:
    field: ComplaintOrderField
    direction: SortDirection


@strawberry.input
class FileComplaintInput:
    customer_id: strawberry.ID
    channel: Channel
    category: ComplaintCategory | None = strawberry.field(
        default=None, description="Left out: the suggested category is used."
    )
    reason: ComplaintReason | None = None
    priority: Priority | None = None
    summary: str
    description: str
    amount_in_dispute: Decimal | None = None
    received_at: datetime | None = strawberry.field(
        default=None, description="When the bank received it; defaults to now. The SLA clock starts here."
    )


@strawberry.input
class AcknowledgeComplaintInput:
    id: strawberry.ID
    message: str | None = None


@strawberry.input
class AssignComplaintInput:
    id: strawberry.ID
    department: Department
    handler_id: strawberry.ID | None = None
    message: str | None = None


@strawberry.input
class StartComplaintInput:
    id: strawberry.ID


@strawberry.input
class EscalateComplaintInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class ExtendComplaintDeadlineInput:
    id: strawberry.ID
    reason: str
    approved_by_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "Optional; when given, it must be the caller: the second extension (to 60 days) is made by a MANAGER or "
            "ADMIN themselves."
        ),
    )


@strawberry.input
class ResolveComplaintInput:
    id: strawberry.ID
    version: int
    resolution: str
    compensation_amount: Decimal | None = None


@strawberry.input
class CloseComplaintInput:
    id: strawberry.ID
    customer_accepted: bool
    message: str | None = None


@strawberry.input
class ReopenComplaintInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class WithdrawComplaintInput:
    id: strawberry.ID
    reason: str


@strawberry.type
class ComplaintPayload:
    complaint: Complaint | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.enum
class ComplaintGroupBy(Enum):
    CATEGORY = "CATEGORY"
    REASON = "REASON"
    CHANNEL = "CHANNEL"
    BRANCH = "BRANCH"
    DEPARTMENT = "DEPARTMENT"
    PRIORITY = "PRIORITY"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@strawberry.type
class ComplaintStatBucket:
    key: str
    count: int
    open_count: int
    resolved_count: int
    sla_met_rate: float | None = strawberry.field(
        description="Share of complaints resolved by their due time, among those resolved or overdue."
    )
    avg_resolution_hours: float | None
    reopen_rate: float | None
    avg_satisfaction: float | None
    compensation_total: Decimal


@strawberry.input
class ComplaintReportInput:
    period: DateRange


loaders.register("complaint", loaders.by_id(ComplaintModel))
loaders.read_as_rows(ComplaintModel)  # Complaint reads its columns only
loaders.register("complaint_events", loaders.grouped(ComplaintEventModel, "id", parent="complaint_id"))
