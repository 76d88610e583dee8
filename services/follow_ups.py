"""Follow-ups: work for a person or a department, the unit of cross-department collaboration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from models.follow_ups import FollowUp, FollowUpStatus, Priority
from models.staff import Department, Staff
from services import access, clock, customers, timeline
from services.access import ALL_ROLES, Caller, require_role
from services.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from services.filters import FilterParams

UNSET = object()


def visible(caller: Caller) -> QuerySet[FollowUp]:
    """Follow-ups about customers the caller sees, plus those with no customer."""
    require_role(caller, ALL_ROLES)
    if customers.home_branch(caller) is None:
        return FollowUp.all()
    return FollowUp.filter(
        Q(customer_id__isnull=True) | Q(customer_id__in=Subquery(customers.visible(caller).values("id")))
    )


def is_overdue(follow_up: FollowUp) -> bool:
    return follow_up.status == FollowUpStatus.OPEN and follow_up.due_at is not None and follow_up.due_at < clock.now()


async def _assignee(staff_id: int | None) -> Staff | None:
    if staff_id is None:
        return None
    staff = await Staff.get_or_none(id=staff_id, active=True)
    if staff is None:
        raise not_found("Assignee", "assigneeId")
    return staff


def _title(value: str) -> str:
    title = value.strip() if value else ""
    if not title:
        raise DomainError(ErrorCode.REQUIRED, "title is required", "title")
    if len(title) > 200:
        raise invalid("title", "title must be at most 200 characters")
    return title


async def create(
    caller: Caller,
    *,
    title: str,
    description: str | None = None,
    customer_id: int | None = None,
    complaint_id: int | None = None,
    assignee_id: int | None = None,
    department: Department | None = None,
    priority: Priority | None = None,
    due_at: datetime | None = None,
) -> FollowUp:
    require_role(caller, access.FOLLOW_UP_WRITERS)
    clean_title = _title(title)
    customer = await customers.get(caller, customer_id, "customerId") if customer_id is not None else None
    complaint = None
    if complaint_id is not None:
        from services import complaints

        complaint = await complaints.get(caller, complaint_id, "complaintId")
        if customer is not None and customer.id != complaint.customer_id:
            raise invalid("complaintId", "The complaint is another customer's")
        customer = customer or await customers.get(caller, complaint.customer_id, "complaintId")
    assignee = await _assignee(assignee_id)
    if assignee is None and department is None:
        raise DomainError(ErrorCode.REQUIRED, "Assign the follow-up to a person or a department", "assigneeId")
    if due_at is not None and due_at < clock.now() - timedelta(minutes=5):
        raise invalid("dueAt", "dueAt must not be in the past")
    return await FollowUp.create(
        title=clean_title,
        description=(description or "").strip() or None,
        customer=customer,
        complaint=complaint,
        assignee=assignee,
        department=department or (assignee.department if assignee else None),
        priority=priority or Priority.NORMAL,
        due_at=due_at,
        created_by=caller.staff,
    )


async def open_for_system(
    *,
    title: str,
    customer_id: int,
    description: str | None = None,
    complaint_id: int | None = None,
    assignee_id: int | None = None,
    department: Department | None = None,
    priority: Priority = Priority.NORMAL,
    due_at: datetime | None = None,
) -> FollowUp:
    """A follow-up the service opens by itself (a survey's recovery call): no caller, so no role or visibility
    check; the same rules for the title and the assignment as `create`. An inactive or unknown assignee falls
    back to `department` (REQUIRED when there is neither)."""
    clean_title = _title(title)
    assignee = await Staff.get_or_none(id=assignee_id, active=True) if assignee_id is not None else None
    if assignee is None and department is None:
        raise DomainError(ErrorCode.REQUIRED, "Assign the follow-up to a person or a department", "assigneeId")
    return await FollowUp.create(
        title=clean_title,
        description=(description or "").strip() or None,
        customer_id=customer_id,
        complaint_id=complaint_id,
        assignee=assignee,
        department=assignee.department if assignee else department,
        priority=priority,
        due_at=due_at,
        created_by=None,
        created_at=clock.now(),
    )


def may_complete(staff: Staff | None, follow_up: FollowUp) -> bool:
    """Only the assignee, a member of the assigned department, or a MANAGER or ADMIN."""
    if staff is None:  # the command-line operator
        return True
    return (
        staff.role in access.FOLLOW_UP_SUPERVISORS
        or follow_up.assignee_id == staff.id
        or (follow_up.department is not None and follow_up.department == staff.department)
    )


async def update(
    caller: Caller,
    follow_up_id: int,
    *,
    status: FollowUpStatus | None = None,
    assignee_id: object = UNSET,
    department: object = UNSET,
    priority: Priority | None = None,
    due_at: object = UNSET,
) -> FollowUp:
    staff = require_role(caller, access.FOLLOW_UP_WRITERS)
    follow_up = await visible(caller).get_or_none(id=follow_up_id)
    if follow_up is None:
        raise not_found("Follow-up")
    if not may_complete(staff, follow_up):
        raise forbidden("Only the assignee, their department, or a manager may change this follow-up")
    if follow_up.status != FollowUpStatus.OPEN:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"This follow-up is {follow_up.status.value} already", "id")
    if assignee_id is not UNSET:
        follow_up.assignee = await _assignee(assignee_id)  # type: ignore[arg-type]
        if department is UNSET and follow_up.assignee is not None:
            # The work moves with the person: their department, not the previous one, now shares it.
            follow_up.department = follow_up.assignee.department
    if department is not UNSET:
        follow_up.department = department  # type: ignore[assignment]
    if follow_up.assignee_id is None and follow_up.department is None:
        raise DomainError(ErrorCode.REQUIRED, "Assign the follow-up to a person or a department", "assigneeId")
    if priority is not None:
        follow_up.priority = priority
    if due_at is not UNSET:
        if due_at is not None and due_at < clock.now() - timedelta(minutes=5):  # type: ignore[operator]
            raise invalid("dueAt", "dueAt must not be in the past")
        follow_up.due_at = due_at  # type: ignore[assignment]
    if status is not None and status != FollowUpStatus.OPEN:
        follow_up.status, follow_up.completed_at = status, clock.now()
    # Conditional on still being open: a concurrent completion wins once.
    saved = await FollowUp.filter(id=follow_up.id, status=FollowUpStatus.OPEN).update(
        assignee_id=follow_up.assignee_id,
        department=follow_up.department,
        priority=follow_up.priority,
        due_at=follow_up.due_at,
        status=follow_up.status,
        completed_at=follow_up.completed_at,
    )
    if not saved:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "This follow-up was closed meanwhile", "id")
    return await FollowUp.get(id=follow_up.id)


@dataclass
class FollowUpFilter(FilterParams):
    assignee_id: int | None = None
    department: Department | None = None
    status: list[FollowUpStatus] | None = None
    customer_id: int | None = None
    complaint_id: int | None = None
    overdue: bool | None = None


def apply_filter(qs: QuerySet[FollowUp], f: FollowUpFilter) -> QuerySet[FollowUp]:
    if f.assignee_id is not None:
        qs = qs.filter(assignee_id=f.assignee_id)
    if f.department is not None:
        qs = qs.filter(department=f.department)
    if f.status:
        qs = qs.filter(status__in=f.status)
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.complaint_id is not None:
        qs = qs.filter(complaint_id=f.complaint_id)
    if f.overdue is True:
        qs = qs.filter(status=FollowUpStatus.OPEN, due_at__lt=clock.now())
    elif f.overdue is False:
        qs = qs.filter(Q(status__not=FollowUpStatus.OPEN) | Q(due_at__isnull=True) | Q(due_at__gte=clock.now()))
    return qs


timeline.register(
    timeline.Source(
        "FOLLOW_UP", FollowUp, "created_at", lambda r: (r.title, timeline.short(r.description)), node="FollowUp"
    )
)
