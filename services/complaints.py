"""Complaint handling: intake with gap-free reference numbers, the workflow (every move an event), the
regulatory SLA clock with extensions, the SLA monitor, and list filters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet

from core.db import atomic
from core.settings import SettingsError, section
from models.complaints import (
    Complaint,
    ComplaintCategory,
    ComplaintDaySequence,
    ComplaintEvent,
    ComplaintEventType,
    ComplaintReason,
    ComplaintStatus,
)
from models.customers import Channel, CustomerStatus
from models.follow_ups import FollowUp, Priority
from models.notifications import Notification
from models.staff import Department, Role, Staff
from services import (
    access,
    clock,
    complaint_rules as rules,
    customer_rules,
    customers,
    identity,
    notifications,
    portraits,
    timeline,
)
from services.access import ALL_ROLES, Caller, require_role
from services.errors import DomainError, ErrorCode, invalid, not_found
from services.filters import FilterParams

MAX_SUMMARY, MAX_TEXT = 200, 20_000


@section
@dataclass(frozen=True)
class ComplaintSettings:
    sla_monitor_minutes: int = 5  # CRM_SLA_MONITOR_MINUTES: how often the SLA monitor runs

    def check(self) -> None:
        if not 1 <= self.sla_monitor_minutes <= 24 * 60:
            raise SettingsError("CRM_SLA_MONITOR_MINUTES must be between 1 and 1440")


def channel_for_all() -> str:
    return "complaints"


def channel_for(complaint_id: int) -> str:
    return f"complaint:{complaint_id}"


def visible(caller: Caller) -> QuerySet[Complaint]:
    require_role(caller, ALL_ROLES)
    if customers.home_branch(caller) is None:
        return Complaint.all()
    return Complaint.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


async def get(caller: Caller, complaint_id: int, field: str | list[str] = "id") -> Complaint:
    complaint = await visible(caller).get_or_none(id=complaint_id)
    if complaint is None:
        raise not_found("Complaint", field)
    return complaint


def _text(value: str | None, field: str, limit: int, required: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise DomainError(ErrorCode.REQUIRED, f"{field} is required", field)
        return None
    if len(text) > limit:
        raise invalid(field, f"{field} must be at most {limit} characters")
    return text


def _amount(value: Decimal | None, field: str) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2 or value > Decimal("1e15"):
        raise invalid(field, f"{field} must be a non-negative amount with at most 2 decimal places")
    return value


async def _next_reference(now: datetime) -> str:
    """Unique and gap-free per bank day: the counter row is locked by the increment until commit."""
    day = now.astimezone(rules.BANK_TIME).date()
    for _ in range(3):
        if await ComplaintDaySequence.filter(day=day).update(last_number=F("last_number") + 1):
            row = await ComplaintDaySequence.get(day=day)
            return rules.reference_no(day, row.last_number)
        try:
            async with atomic():  # a savepoint: losing the race for the day's first number is not fatal
                await ComplaintDaySequence.create(day=day, last_number=1)
            return rules.reference_no(day, 1)
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a complaint reference number")


async def add_event(
    complaint: Complaint,
    event_type: ComplaintEventType,
    *,
    actor: Staff | None,
    from_status: ComplaintStatus | None = None,
    to_status: ComplaintStatus | None = None,
    message: str | None = None,
) -> ComplaintEvent:
    # Every event is a change of the complaint (its status, a breach, ...) that the customer's portrait shows.
    await portraits.mark_stale([complaint.customer_id])
    return await ComplaintEvent.create(
        complaint=complaint,
        type=event_type,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        message=message,
        at=clock.now(),
    )


async def file(
    caller: Caller,
    customer_id: int,
    *,
    channel: Channel,
    summary: str,
    description: str,
    category: ComplaintCategory | None = None,
    reason: ComplaintReason | None = None,
    priority: Priority | None = None,
    amount_in_dispute: Decimal | None = None,
    received_at: datetime | None = None,
) -> Complaint:
    staff = require_role(caller, access.COMPLAINT_FILERS)
    customer = await customers.get(caller, customer_id, "customerId")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("customerId", "An erased customer cannot file new complaints")
    summary_text = _text(summary, "summary", MAX_SUMMARY, required=True)
    description_text = _text(description, "description", MAX_TEXT, required=True)
    amount = _amount(amount_in_dispute, "amountInDispute")
    now = clock.now()
    received = received_at or now
    if received > now + timedelta(minutes=5):
        raise invalid("receivedAt", "receivedAt must not be in the future")
    if received < now - timedelta(days=rules.MAX_DAYS):
        raise invalid("receivedAt", f"receivedAt must be within the last {rules.MAX_DAYS} days")
    suggested_category, suggested_reason = rules.classify(summary_text, description_text)
    category = category or suggested_category
    reason = reason or suggested_reason
    recent = await Complaint.filter(customer_id=customer.id, received_at__gte=received - rules.RECENT).count()
    priority = priority or rules.default_priority(reason, channel, amount, recent)
    complaint = await Complaint.create(
        reference_no=await _next_reference(now),
        customer=customer,
        branch=customer.branch,
        channel=channel,
        category=category,
        reason=reason,
        suggested_category=suggested_category,
        suggested_reason=suggested_reason,
        priority=priority,
        priority_rank=rules.PRIORITY_RANK[priority],
        status=ComplaintStatus.RECEIVED,
        summary=summary_text,
        description=description_text,
        amount_in_dispute=amount,
        received_at=received,
        due_at=rules.due_after(received, 0),
        created_by=staff,
    )
    await add_event(
        complaint,
        ComplaintEventType.RECEIVED,
        actor=staff,
        to_status=ComplaintStatus.RECEIVED,
        message=f"Received through {channel.value}",
    )
    await portraits.mark_stale([customer.id])
    return complaint


async def _move(
    caller: Caller,
    complaint_id: int,
    move: str,
    *,
    roles: frozenset[Role] = access.COMPLAINT_HANDLERS,
    message: str | None = None,
    changes: dict[str, Any] | None = None,
    version: int | None = None,
    current: Complaint | None = None,
) -> Complaint:
    """Apply one move of the state machine, with its event; any other move is INVALID_TRANSITION.

    `current`: the complaint as the caller read it to compute `changes` (a count plus one): the move is then
    conditional on that read, so that a concurrent move in between makes this one STALE_VERSION instead of
    losing its count."""
    staff = require_role(caller, roles)
    complaint = current or await get(caller, complaint_id)
    step = rules.MOVES[move]
    if not rules.allowed(move, complaint.status):
        raise DomainError(ErrorCode.INVALID_TRANSITION, rules.refusal(move, complaint.status), "id")
    if version is not None and version != complaint.version:
        raise DomainError(
            ErrorCode.STALE_VERSION, f"The complaint changed since version {version}; reload it", "version"
        )
    before = complaint.status
    values = dict(changes or {})
    if step.to is not None:
        values["status"] = step.to
    # Conditional on the status and version read: of two concurrent moves, one wins.
    updated = await Complaint.filter(id=complaint.id, status=before, version=complaint.version).update(
        **values, version=complaint.version + 1, updated_at=clock.now()
    )
    if not updated:
        raise DomainError(ErrorCode.STALE_VERSION, "The complaint changed meanwhile; reload it", "version")
    complaint = await Complaint.get(id=complaint.id)
    await add_event(complaint, step.event, actor=staff, from_status=before, to_status=complaint.status, message=message)
    return complaint


async def acknowledge(caller: Caller, complaint_id: int, message: str | None = None) -> Complaint:
    return await _move(
        caller,
        complaint_id,
        "acknowledge",
        message=_text(message, "message", MAX_TEXT),
        changes={"acknowledged_at": clock.now()},
    )


async def assign(
    caller: Caller, complaint_id: int, department: Department, handler_id: int | None = None, message: str | None = None
) -> Complaint:
    handler = None
    if handler_id is not None:
        handler = await Staff.get_or_none(id=handler_id, active=True)
        if handler is None or handler.role not in access.COMPLAINT_HANDLERS:
            raise invalid("handlerId", "handlerId must be an active complaint handler, manager or admin")
    note = _text(message, "message", MAX_TEXT)
    text = (
        f"Assigned to {department.value}"
        + (f" / {handler.username}" if handler else "")
        + (f": {note}" if note else "")
    )
    return await _move(
        caller,
        complaint_id,
        "assign",
        message=text,
        changes={"department": department, "handler_id": handler.id if handler else None},
    )


async def start(caller: Caller, complaint_id: int) -> Complaint:
    return await _move(caller, complaint_id, "start")


async def escalate(caller: Caller, complaint_id: int, reason: str) -> Complaint:
    text = _text(reason, "reason", MAX_TEXT, required=True)
    current = await get(caller, complaint_id)
    return await _move(
        caller,
        complaint_id,
        "escalate",
        message=text,
        changes={"escalation_level": current.escalation_level + 1},
        current=current,
    )


async def extend_deadline(
    caller: Caller, complaint_id: int, reason: str, approved_by_id: int | None = None
) -> Complaint:
    """15 → 30 days for a complex case; 30 → 60 only with a MANAGER's or ADMIN's approval; never further."""
    text = _text(reason, "reason", MAX_TEXT, required=True)
    require_role(caller, access.COMPLAINT_HANDLERS)
    current = await get(caller, complaint_id)
    if not rules.allowed("extend", current.status):
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, f"A {current.status.value} complaint has no deadline to extend", "id"
        )
    if current.extension_count >= 2:
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"The deadline is at its maximum of {rules.MAX_DAYS} days", "id")
    if current.extension_count == 1:
        # Made by a MANAGER or ADMIN themselves: nobody approves in another's name (docs/DOMAIN.md, "Complaints").
        if caller.role not in access.EXTENSION_APPROVERS:
            raise DomainError(
                ErrorCode.FORBIDDEN,
                f"A second extension is made by one of the roles {access.describe(access.EXTENSION_APPROVERS)} "
                "themselves, not approved on their behalf",
                "approvedById",
            )
        if approved_by_id is not None and approved_by_id != caller.staff.id:
            raise DomainError(
                ErrorCode.FORBIDDEN,
                "Nobody approves a second extension in another's name: approvedById, when given, must be you",
                "approvedById",
            )
        text = f"{text} (approved by {caller.staff.username})"
    count = current.extension_count + 1
    complaint = await _move(
        caller,
        complaint_id,
        "extend",
        message=text,
        changes={"extension_count": count, "due_at": rules.due_after(current.received_at, count)},
        current=current,
    )
    await notify_customer(
        complaint,
        "投诉处理时限延长 / Complaint deadline extended",
        f"您的投诉 {complaint.reference_no} 情况较复杂，处理时限延长至 "
        f"{complaint.due_at.astimezone(rules.BANK_TIME):%Y-%m-%d}。原因：{text}",
    )
    return complaint


async def resolve(
    caller: Caller, complaint_id: int, version: int, resolution: str, compensation_amount: Decimal | None = None
) -> Complaint:
    text = _text(resolution, "resolution", MAX_TEXT, required=True)
    amount = _amount(compensation_amount, "compensationAmount")
    return await _move(
        caller,
        complaint_id,
        "resolve",
        version=version,
        message=text,
        changes={"resolution": text, "compensation_amount": amount, "resolved_at": clock.now()},
    )


ClosedHook = Callable[[Complaint], Awaitable[None]]
_closed_hooks: list[ClosedHook] = []


def on_closed(callback: ClosedHook) -> None:
    """Call `await callback(complaint)` each time a complaint is CLOSED (after a reopen too), inside the
    transaction that closes it, with the complaint as closed. Other domains react to a closing this way (the
    post-complaint survey, services.surveys) without this module knowing them. Registering twice registers once."""
    if callback not in _closed_hooks:
        _closed_hooks.append(callback)


async def close(caller: Caller, complaint_id: int, customer_accepted: bool, message: str | None = None) -> Complaint:
    complaint = await _move(
        caller,
        complaint_id,
        "close",
        message=_text(message, "message", MAX_TEXT),
        changes={"customer_accepted": customer_accepted, "closed_at": clock.now()},
    )
    for hook in list(_closed_hooks):
        await hook(complaint)
    return complaint


async def reopen(caller: Caller, complaint_id: int, reason: str) -> Complaint:
    text = _text(reason, "reason", MAX_TEXT, required=True)
    current = await get(caller, complaint_id)
    return await _move(
        caller,
        complaint_id,
        "reopen",
        message=text,
        changes={
            "reopen_count": current.reopen_count + 1,
            "resolved_at": None,
            "closed_at": None,
            "customer_accepted": None,
        },
        current=current,
    )


async def record_satisfaction(complaint_id: int, score: float) -> None:
    """The customer's CSAT score (1-5) from the post-complaint survey, kept on the complaint for its statistics."""
    await Complaint.filter(id=complaint_id).update(satisfaction=score)


async def withdraw(caller: Caller, complaint_id: int, reason: str) -> Complaint:
    text = _text(reason, "reason", MAX_TEXT, required=True)
    return await _move(caller, complaint_id, "withdraw", message=text, changes={"withdrawn_at": clock.now()})


async def notify_customer(complaint: Complaint, subject: str, body: str) -> Notification | None:
    """An outbox row for the customer on the best channel with an address, and its CUSTOMER_NOTIFIED event."""
    customer = await complaint.customer
    options = []
    if customer.preferred_channel == Channel.EMAIL and customer.email:
        options.append((Channel.EMAIL, customer.email))
    if customer.phone:
        options.append((Channel.SMS, customer.phone))
    if customer.email:
        options.append((Channel.EMAIL, customer.email))
    if customer.address:
        options.append((Channel.LETTER, customer.address))
    if not options:
        await add_event(
            complaint,
            ComplaintEventType.CUSTOMER_NOTIFIED,
            actor=None,
            message="No address on file: the customer must be told in person",
        )
        return None
    channel, recipient = options[0]
    notification = await notifications.enqueue(
        channel, recipient, body, subject=subject, customer_id=customer.id, complaint_id=complaint.id
    )
    await add_event(
        complaint,
        ComplaintEventType.CUSTOMER_NOTIFIED,
        actor=None,
        message=f"{channel.value} notification queued: {subject}",
    )
    return notification


def ended_at(complaint: Complaint) -> datetime | None:
    """When its SLA clock stopped: resolved (RESOLVED, CLOSED) or withdrawn (WITHDRAWN)."""
    if complaint.status == ComplaintStatus.WITHDRAWN:
        return complaint.withdrawn_at
    return complaint.resolved_at


def sla_state(complaint: Complaint, now: datetime | None = None) -> str:
    return rules.sla_state(complaint.status, complaint.due_at, ended_at(complaint), now or clock.now())


# ---------------------------------------------------------------- the SLA monitor


@dataclass(frozen=True)
class MonitorReport:
    at_risk: list[int]
    breached: list[int]


async def monitor_sla() -> MonitorReport:
    """Records SLA_AT_RISK and SLA_BREACHED once each; a breach raises the escalation level and opens a
    follow-up for the COMPLAINTS department. Safe to run as often as wanted, and twice at once."""
    now = clock.now()
    open_states = list(rules.OPEN)
    at_risk, breached = [], []
    # The same boundaries as complaint_rules.sla_state: at the due instant it is still AT_RISK.
    for complaint in await Complaint.filter(
        status__in=open_states, sla_at_risk_recorded=False, due_at__lte=now + rules.AT_RISK_WITHIN, due_at__gte=now
    ):
        async with atomic():
            if await Complaint.filter(id=complaint.id, sla_at_risk_recorded=False).update(sla_at_risk_recorded=True):
                await add_event(
                    complaint,
                    ComplaintEventType.SLA_AT_RISK,
                    actor=None,
                    message=f"Due {complaint.due_at.isoformat()}: 3 days or less left",
                )
                at_risk.append(complaint.id)
    for complaint in await Complaint.filter(status__in=open_states, sla_breached_recorded=False, due_at__lt=now):
        async with atomic():
            claimed = await Complaint.filter(id=complaint.id, sla_breached_recorded=False).update(
                sla_breached_recorded=True,
                sla_at_risk_recorded=True,
                escalation_level=F("escalation_level") + 1,
                version=F("version") + 1,
            )
            if not claimed:
                continue
            await add_event(
                complaint,
                ComplaintEventType.SLA_BREACHED,
                actor=None,
                message=f"Past its deadline of {complaint.due_at.isoformat()}",
            )
            await FollowUp.create(
                title=f"SLA breached: {complaint.reference_no}",
                complaint=complaint,
                customer_id=complaint.customer_id,
                department=Department.COMPLAINTS,
                priority=Priority.URGENT,
                description=f"{complaint.summary} — past its {complaint.due_at:%Y-%m-%d} deadline",
                due_at=now,
            )
            breached.append(complaint.id)
    return MonitorReport(at_risk, breached)


# ---------------------------------------------------------------- lists


@dataclass
class ComplaintFilter(FilterParams):
    customer_id: int | None = None
    status: list[ComplaintStatus] | None = None
    category: list[ComplaintCategory] | None = None
    reason: list[ComplaintReason] | None = None
    priority: list[Priority] | None = None
    sla_state: list[rules.SlaStateName] | None = None
    department: Department | None = None
    handler_id: int | None = None
    branch: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    search: str | None = None


def sla_condition(state: str, now: datetime) -> Q:
    """The SQL form of complaint_rules.sla_state."""
    open_states = list(rules.OPEN)
    withdrawn = ComplaintStatus.WITHDRAWN  # no outcome: whether it was past due when withdrawn
    if state == "BREACHED":
        return Q(status__in=open_states, due_at__lt=now) | Q(status=withdrawn, withdrawn_at__gt=F("due_at"))
    if state == "AT_RISK":
        return Q(status__in=open_states, due_at__gte=now, due_at__lte=now + rules.AT_RISK_WITHIN)
    if state == "ON_TRACK":
        in_time = Q(withdrawn_at__isnull=True) | Q(withdrawn_at__lte=F("due_at"))
        return Q(status__in=open_states, due_at__gt=now + rules.AT_RISK_WITHIN) | (Q(status=withdrawn) & in_time)
    resolved = list(rules.RESOLVED)
    if state == "MET":
        return Q(status__in=resolved, resolved_at__lte=F("due_at"))
    return Q(status__in=resolved) & (Q(resolved_at__isnull=True) | Q(resolved_at__gt=F("due_at")))


def matching(caller: Caller, complaint_filter: ComplaintFilter) -> QuerySet[Complaint]:
    """The complaints of `complaint_filter` among those the caller may see, searched as the caller may search."""
    sees_pii = caller.operator or customer_rules.sees_pii(caller.role)
    return apply_filter(visible(caller), complaint_filter, sees_pii=sees_pii)


def apply_filter(qs: QuerySet[Complaint], f: ComplaintFilter, *, sees_pii: bool = True) -> QuerySet[Complaint]:
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.status:
        qs = qs.filter(status__in=f.status)
    if f.category:
        qs = qs.filter(category__in=f.category)
    if f.reason:
        qs = qs.filter(reason__in=f.reason)
    if f.priority:
        qs = qs.filter(priority__in=f.priority)
    if f.sla_state:
        now = clock.now()
        qs = qs.filter(Q(*[sla_condition(s, now) for s in f.sla_state], join_type=Q.OR))
    if f.department is not None:
        qs = qs.filter(department=f.department)
    if f.handler_id is not None:
        qs = qs.filter(handler_id=f.handler_id)
    if f.branch:
        qs = qs.filter(branch=f.branch)
    if f.received_after:
        qs = qs.filter(received_at__gte=f.received_after)
    if f.received_before:
        qs = qs.filter(received_at__lt=f.received_before)
    if f.search and f.search.strip():
        text = f.search.strip()
        if sees_pii or not identity.probes_identifiers(text):
            texts = Q(summary__icontains=text) | Q(description__icontains=text)
            qs = qs.filter(texts | Q(reference_no__icontains=text))
        else:  # digits typed into the texts are masked for this viewer: a search may not probe them
            qs = qs.filter(reference_no__icontains=text)
    return qs


timeline.register(
    timeline.Source(
        "COMPLAINT",
        Complaint,
        "received_at",
        lambda r: (f"{r.reference_no} {r.summary}", f"{r.category.value} / {r.reason.value}"),
        node="Complaint",
    )
)
timeline.register(
    timeline.Source(
        "COMPLAINT_EVENT",
        ComplaintEvent,
        "at",
        lambda r: (f"Complaint {r.type.value.lower().replace('_', ' ')}", timeline.short(r.message)),
        customer_field="complaint__customer_id",
        node="Complaint",  # an event is shown as the complaint it belongs to
        node_key="complaint_id",
    )
)
