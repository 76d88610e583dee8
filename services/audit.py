"""The append-only audit trail: who did what, when, from where."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections, timezone
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from core import csv_safe, sql
from models.audit import AuditEntry
from services.access import AUDIT_READERS, Caller, require_role
from services.errors import invalid
from services.filters import FilterParams

EXPORT_BATCH = 500


async def record(
    caller: Caller,
    action: str,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    detail: dict | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    staff = caller.staff
    return await AuditEntry.create(
        actor=staff,
        actor_name=actor_name or (staff.username if staff else ("command-line" if caller.operator else None)),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail,
        request_id=caller.request_id,
        ip=caller.ip,
    )


AUDIT_COLUMNS = ("actor_id", "actor_name", "action", "subject_type", "subject_id", "detail", "request_id", "ip", "at")


async def record_each(caller: Caller, action: str, subject_type: str, details: dict[str, dict]) -> None:
    """One entry per subject (subject id -> detail) in one statement: the per-request `customer.pii_read` entries
    of a customer list are written on the read path, where ORM instances cost more than the read itself."""
    staff = caller.staff
    actor_name = staff.username if staff else ("command-line" if caller.operator else None)
    at = timezone.now()  # what auto_now_add gives the entries written one at a time
    rows = [
        (
            staff.id if staff else None,
            actor_name,
            action,
            subject_type,
            subject_id,
            json.dumps(detail),
            caller.request_id,
            caller.ip,
            at,
        )
        for subject_id, detail in details.items()
    ]
    await sql.insert_rows(connections.get("default"), AuditEntry._meta.db_table, AUDIT_COLUMNS, rows)


@dataclass(frozen=True)
class AuditFilter(FilterParams):
    """What the audit log can be filtered by; an export job's params are its `to_params()`."""

    actor_id: int | None = None
    action: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def entries(caller: Caller, audit_filter: AuditFilter) -> QuerySet[AuditEntry]:
    require_role(caller, AUDIT_READERS)
    return _filtered(audit_filter)


def _filtered(audit_filter: AuditFilter) -> QuerySet[AuditEntry]:
    if audit_filter.start and audit_filter.end and audit_filter.start > audit_filter.end:
        raise invalid(["filter", "from"], "from must not be after to")
    qs = AuditEntry.all()
    if audit_filter.actor_id is not None:
        qs = qs.filter(actor_id=audit_filter.actor_id)
    if audit_filter.action:
        # "login" matches login.success and login.failed as well as itself.
        qs = qs.filter(Q(action=audit_filter.action) | Q(action__startswith=f"{audit_filter.action}."))
    if audit_filter.subject_type:
        qs = qs.filter(subject_type=audit_filter.subject_type)
    if audit_filter.subject_id:
        qs = qs.filter(subject_id=audit_filter.subject_id)
    if audit_filter.start:
        qs = qs.filter(at__gte=audit_filter.start)
    if audit_filter.end:
        qs = qs.filter(at__lt=audit_filter.end)
    return qs


EXPORT_JOB = "AUDIT_EXPORT"  # the job kind of exportAuditLog
CSV_COLUMNS = ["id", "at", "actor", "action", "subject_type", "subject_id", "detail", "request_id", "ip"]


async def export_csv(params: dict, progress) -> dict:
    """Job handler (AUDIT_EXPORT): the filtered audit log as CSV, oldest first, read in keyset batches."""
    qs = _filtered(AuditFilter.from_params(params))
    await progress.set_total(await qs.count())
    out = io.StringIO()
    writer = csv_safe.writer(out)  # a username typed at login must not become a formula
    writer.writerow(CSV_COLUMNS)
    last_id, rows = 0, 0
    while True:
        batch = await qs.filter(id__gt=last_id).order_by("id").limit(EXPORT_BATCH)
        if not batch:
            break
        for e in batch:
            writer.writerow(
                [
                    e.id,
                    e.at.isoformat(),
                    e.actor_name or "",
                    e.action,
                    e.subject_type or "",
                    e.subject_id or "",
                    json.dumps(e.detail, ensure_ascii=False) if e.detail is not None else "",
                    e.request_id or "",
                    e.ip or "",
                ]
            )
        rows += len(batch)
        last_id = batch[-1].id
        await progress.advance(len(batch))
    return {"filename": "audit-log.csv", "contentType": "text/csv", "rows": rows, "csv": out.getvalue()}
