from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from resolvers.filters import FilterMapping, GlobalId
from schema.audit import AuditEntry, AuditFilter, ExportAuditLogInput
from schema.base import Connection, from_global_id
from schema.conventions import mutation
from schema.jobs import Job, JobPayload
from schema.permissions import allow
from services import access, audit, jobs
from services.errors import not_found
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("id", descending=True)]


def _subject(global_id: str, field: list[str]) -> dict[str, str]:
    """Any node's global id: the audit log names its subject by type and primary key."""
    subject = from_global_id(global_id)
    if subject is None:
        raise not_found("Subject", field)
    return {"subject_type": subject[0], "subject_id": subject[1]}


AUDIT_FILTER = FilterMapping(
    AuditFilter,
    audit.AuditFilter,
    ids={"actor_id": GlobalId("Staff", "Staff member")},
    custom={"subject_id": _subject},
)


async def audit_log(
    info: Info,
    filter: AuditFilter | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[AuditEntry]:
    qs = audit.entries(await caller_of(info), AUDIT_FILTER.to_service(filter))
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, AuditEntry.from_model)


async def export_audit_log(info: Info, input: ExportAuditLogInput) -> JobPayload:
    caller = await caller_of(info)
    audit_filter = AUDIT_FILTER.to_service(input.filter)
    audit.entries(caller, audit_filter)  # the same access rule and validation as reading the log
    job = await jobs.create(caller, audit.EXPORT_JOB, audit_filter.to_params(), info.context.enqueue("run_job"))
    return JobPayload(job=Job.from_model(job))


@strawberry.type
class Query:
    audit_log: Connection[AuditEntry] = strawberry.field(resolver=audit_log, extensions=allow(access.AUDIT_READERS))


@strawberry.type
class Mutation:
    export_audit_log: JobPayload = mutation(
        "audit.export",
        access.AUDIT_READERS,
        resolver=export_audit_log,
        description="The audit log (filtered) as CSV, built by a worker; the job's result holds it.",
    )
