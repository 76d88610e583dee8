from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from core.db import on_commit
from resolvers.common import caller_of
from resolvers.filters import FilterMapping, GlobalId
from schema.base import Connection, DateRange, SortDirection, api_error, int_pk, require_pk, unauthenticated
from schema.complaints import (
    AcknowledgeComplaintInput,
    AssignComplaintInput,
    CloseComplaintInput,
    Complaint,
    ComplaintFilter,
    ComplaintGroupBy,
    ComplaintOrder,
    ComplaintOrderField,
    ComplaintPayload,
    ComplaintReportInput,
    ComplaintStatBucket,
    EscalateComplaintInput,
    ExtendComplaintDeadlineInput,
    FileComplaintInput,
    ReopenComplaintInput,
    ResolveComplaintInput,
    StartComplaintInput,
    WithdrawComplaintInput,
)
from schema.conventions import mutation
from schema.jobs import Job, JobPayload
from schema.permissions import allow, live_caller
from services import access, complaint_stats, complaints as complaint_service
from services.pagination import OrderKey, paginate

DEFAULT_ORDER = ComplaintOrder(field=ComplaintOrderField.RECEIVED_AT, direction=SortDirection.DESC)


COMPLAINT_FILTER = FilterMapping(
    ComplaintFilter,
    complaint_service.ComplaintFilter,
    ids={"customer_id": GlobalId("Customer"), "handler_id": GlobalId("Staff")},
)


# Publications under way (the event loop keeps only weak references to tasks).
_publishing: set[asyncio.Task] = set()


def publish_complaint(info: Info, complaint_id: int) -> None:
    """Tell `complaintUpdated` subscribers, once the mutation's transaction has committed."""
    pubsub = info.context.pubsub
    loop = asyncio.get_running_loop()
    message = {"id": complaint_id}

    def send() -> None:
        for channel in (complaint_service.channel_for(complaint_id), complaint_service.channel_for_all()):
            task = loop.create_task(pubsub.publish(channel, message))
            _publishing.add(task)
            task.add_done_callback(_publishing.discard)

    on_commit(send)


async def complaint(info: Info, id: strawberry.ID | None = None, reference_no: str | None = None) -> Complaint | None:
    if (id is None) == (reference_no is None):
        raise api_error("INVALID", "Give either id or referenceNo")
    qs = complaint_service.visible(await caller_of(info))
    if id is not None:
        pk = int_pk(id, "Complaint")
        found = await qs.get_or_none(id=pk) if pk else None
    else:
        found = await qs.get_or_none(reference_no=reference_no.strip().upper())
    return Complaint.from_model(found) if found else None


async def complaints(
    info: Info,
    filter: ComplaintFilter | None = None,
    order_by: ComplaintOrder | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Complaint]:
    order = order_by or DEFAULT_ORDER
    descending = order.direction == SortDirection.DESC
    qs = complaint_service.matching(await caller_of(info), COMPLAINT_FILTER.to_service(filter))
    keys = [OrderKey(order.field.value, descending), OrderKey("id", descending)]
    page = await paginate(qs, keys, first=first, after=after, last=last, before=before)
    return Connection.of(page, Complaint.from_model)


async def complaint_stats_resolver(
    info: Info, period: DateRange, group_by: ComplaintGroupBy
) -> list[ComplaintStatBucket]:
    buckets = await complaint_stats.stats(await caller_of(info), period.from_, period.to, group_by.value)
    return [
        ComplaintStatBucket(
            key=b.key,
            count=b.count,
            open_count=b.open_count,
            resolved_count=b.resolved_count,
            sla_met_rate=b.sla_met_rate,
            avg_resolution_hours=b.avg_resolution_hours,
            reopen_rate=b.reopen_rate,
            avg_satisfaction=b.avg_satisfaction,
            compensation_total=b.compensation_total,
        )
        for b in buckets
    ]


def _payload(info: Info, found) -> ComplaintPayload:
    publish_complaint(info, found.id)
    return ComplaintPayload(complaint=Complaint.from_model(found))


def _pk(global_id: str) -> int:
    return require_pk(global_id, "Complaint")


async def file_complaint(info: Info, input: FileComplaintInput) -> ComplaintPayload:
    filed = await complaint_service.file(
        await caller_of(info),
        require_pk(input.customer_id, "Customer", "customerId"),
        channel=input.channel,
        summary=input.summary,
        description=input.description,
        category=input.category,
        reason=input.reason,
        priority=input.priority,
        amount_in_dispute=input.amount_in_dispute,
        received_at=input.received_at,
    )
    return _payload(info, filed)


async def acknowledge_complaint(info: Info, input: AcknowledgeComplaintInput) -> ComplaintPayload:
    return _payload(info, await complaint_service.acknowledge(await caller_of(info), _pk(input.id), input.message))


async def assign_complaint(info: Info, input: AssignComplaintInput) -> ComplaintPayload:
    handler_id = require_pk(input.handler_id, "Staff", "handlerId") if input.handler_id else None
    return _payload(
        info,
        await complaint_service.assign(
            await caller_of(info), _pk(input.id), input.department, handler_id, input.message
        ),
    )


async def start_complaint(info: Info, input: StartComplaintInput) -> ComplaintPayload:
    return _payload(info, await complaint_service.start(await caller_of(info), _pk(input.id)))


async def escalate_complaint(info: Info, input: EscalateComplaintInput) -> ComplaintPayload:
    return _payload(info, await complaint_service.escalate(await caller_of(info), _pk(input.id), input.reason))


async def extend_complaint_deadline(info: Info, input: ExtendComplaintDeadlineInput) -> ComplaintPayload:
    approver = require_pk(input.approved_by_id, "Staff", "approvedById") if input.approved_by_id else None
    return _payload(
        info, await complaint_service.extend_deadline(await caller_of(info), _pk(input.id), input.reason, approver)
    )


async def resolve_complaint(info: Info, input: ResolveComplaintInput) -> ComplaintPayload:
    return _payload(
        info,
        await complaint_service.resolve(
            await caller_of(info), _pk(input.id), input.version, input.resolution, input.compensation_amount
        ),
    )


async def close_complaint(info: Info, input: CloseComplaintInput) -> ComplaintPayload:
    return _payload(
        info,
        await complaint_service.close(await caller_of(info), _pk(input.id), input.customer_accepted, input.message),
    )


async def reopen_complaint(info: Info, input: ReopenComplaintInput) -> ComplaintPayload:
    return _payload(info, await complaint_service.reopen(await caller_of(info), _pk(input.id), input.reason))


async def withdraw_complaint(info: Info, input: WithdrawComplaintInput) -> ComplaintPayload:
    return _payload(info, await complaint_service.withdraw(await caller_of(info), _pk(input.id), input.reason))


async def export_complaint_report(info: Info, input: ComplaintReportInput) -> JobPayload:
    job = await complaint_stats.start_report(
        await caller_of(info), input.period.from_, input.period.to, info.context.enqueue("run_job")
    )
    return JobPayload(job=Job.from_model(job))


async def complaint_updated(info: Info, id: strawberry.ID | None = None) -> AsyncGenerator[Complaint, None]:
    """Each change of one complaint, or of every complaint the viewer may see."""
    caller = await info.context.recheck()  # the connection may be older than the token's revocation
    if caller.staff is None:
        raise unauthenticated()
    visible = complaint_service.visible(caller)
    if id is not None:
        pk = int_pk(id, "Complaint")
        if pk is None or not await visible.filter(id=pk).exists():
            raise api_error("NOT_FOUND", "Complaint not found")
        channel = complaint_service.channel_for(pk)
    else:
        channel = complaint_service.channel_for_all()
    async with info.context.pubsub.subscribe(channel) as updates:
        async for message in updates:
            # The token, role and branch of now, not of when the socket opened (a revoked one closes it).
            caller = await live_caller(info)
            found = await complaint_service.visible(caller).get_or_none(id=message["id"])
            if found is not None:  # others' branches stay invisible
                info.context.fresh_loaders()  # a connection lives long: each message reads anew
                try:
                    yield Complaint.from_model(found)
                finally:
                    # Resumed once the message is out: its customer.pii_read entries, one per customer.
                    await info.context.flush_pii_reads()


@strawberry.type
class Query:
    complaint: Complaint | None = strawberry.field(resolver=complaint, extensions=allow(access.ALL_ROLES))
    complaints: Connection[Complaint] = strawberry.field(resolver=complaints, extensions=allow(access.ALL_ROLES))
    complaint_stats: list[ComplaintStatBucket] = strawberry.field(
        resolver=complaint_stats_resolver, extensions=allow(access.COMPLAINT_STATS_READERS)
    )


@strawberry.type
class Mutation:
    file_complaint: ComplaintPayload = mutation("complaint.file", access.COMPLAINT_FILERS, resolver=file_complaint)
    acknowledge_complaint: ComplaintPayload = mutation(
        "complaint.acknowledge", access.COMPLAINT_HANDLERS, resolver=acknowledge_complaint
    )
    assign_complaint: ComplaintPayload = mutation(
        "complaint.assign", access.COMPLAINT_HANDLERS, resolver=assign_complaint
    )
    start_complaint: ComplaintPayload = mutation("complaint.start", access.COMPLAINT_HANDLERS, resolver=start_complaint)
    escalate_complaint: ComplaintPayload = mutation(
        "complaint.escalate", access.COMPLAINT_HANDLERS, resolver=escalate_complaint
    )
    extend_complaint_deadline: ComplaintPayload = mutation(
        "complaint.extend", access.COMPLAINT_HANDLERS, resolver=extend_complaint_deadline
    )
    resolve_complaint: ComplaintPayload = mutation(
        "complaint.resolve", access.COMPLAINT_HANDLERS, resolver=resolve_complaint
    )
    close_complaint: ComplaintPayload = mutation("complaint.close", access.COMPLAINT_HANDLERS, resolver=close_complaint)
    reopen_complaint: ComplaintPayload = mutation(
        "complaint.reopen", access.COMPLAINT_HANDLERS, resolver=reopen_complaint
    )
    withdraw_complaint: ComplaintPayload = mutation(
        "complaint.withdraw", access.COMPLAINT_HANDLERS, resolver=withdraw_complaint
    )
    export_complaint_report: JobPayload = mutation(
        "complaint.report",
        access.COMPLAINT_STATS_READERS,
        resolver=export_complaint_report,
        description="Regulatory statistics for a period as a CSV file, built by a worker; the job's result holds it.",
    )


@strawberry.type
class Subscription:
    complaint_updated: Complaint = strawberry.subscription(
        resolver=complaint_updated,
        description="Each change of one complaint, or of every complaint the viewer may see.",
    )
