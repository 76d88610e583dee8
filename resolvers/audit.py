from __future__ import annotations

from strawberry.types import Info

from models.jobs import JobKind
from resolvers.common import caller_of
from schema.audit import AuditEntry, AuditFilter, ExportAuditLogInput
from schema.base import Connection, from_global_id, int_pk
from schema.jobs import Job, JobPayload
from services import audit, jobs
from services.errors import not_found
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("id", descending=True)]


def _domain_filter(given: AuditFilter | None) -> audit.AuditFilter:
    if given is None:
        return audit.AuditFilter()
    actor_id = None
    if given.actor_id is not None:
        actor_id = int_pk(given.actor_id, "Staff")
        if actor_id is None:
            raise not_found("Staff member", ["filter", "actorId"])
    subject = from_global_id(given.subject_id) if given.subject_id else None
    if given.subject_id and subject is None:
        raise not_found("Subject", ["filter", "subjectId"])
    return audit.AuditFilter(
        actor_id=actor_id,
        action=given.action,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        start=given.from_,
        end=given.to,
    )


async def audit_log(
    info: Info,
    filter: AuditFilter | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[AuditEntry]:
    qs = audit.entries(await caller_of(info), _domain_filter(filter))
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, AuditEntry.from_model)


async def export_audit_log(info: Info, input: ExportAuditLogInput) -> JobPayload:
    caller = await caller_of(info)
    audit_filter = _domain_filter(input.filter)
    audit.entries(caller, audit_filter)  # the same access rule and validation as reading the log
    job = await jobs.create(caller, JobKind.AUDIT_EXPORT, audit_filter.to_params(), info.context.enqueue("run_job"))
    return JobPayload(job=Job.from_model(job))
