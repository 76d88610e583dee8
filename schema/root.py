"""The root types. Each field names its resolver and who may call it."""

from __future__ import annotations

import strawberry

from resolvers import audit, jobs, nodes, staff
from schema.audit import AuditEntry
from schema.base import Connection, Node
from schema.conventions import mutation
from schema.jobs import Job, JobPayload
from schema.permissions import allow
from schema.staff import LoginPayload, Staff, StaffPayload
from services.access import ALL_ROLES, AUDIT_READERS, STAFF_ADMINS


@strawberry.type
class Query:
    node: Node | None = strawberry.field(resolver=nodes.node, description="Anything by its global id; null when it does not exist or is hidden from you.")
    nodes: list[Node | None] = strawberry.field(resolver=nodes.nodes)
    me: Staff | None = strawberry.field(resolver=staff.me, description="The signed-in staff member; null without a valid token.")
    staff: Connection[Staff] = strawberry.field(resolver=staff.staff_list, extensions=allow(ALL_ROLES))
    job: Job | None = strawberry.field(resolver=jobs.job, extensions=allow(ALL_ROLES))
    jobs: Connection[Job] = strawberry.field(resolver=jobs.jobs, extensions=allow(ALL_ROLES))
    audit_log: Connection[AuditEntry] = strawberry.field(resolver=audit.audit_log, extensions=allow(AUDIT_READERS))


@strawberry.type
class Mutation:
    login: LoginPayload = mutation(None, None, public=True, resolver=staff.login)
    create_staff: StaffPayload = mutation("staff.create", STAFF_ADMINS, resolver=staff.create_staff)
    update_staff: StaffPayload = mutation("staff.update", STAFF_ADMINS, resolver=staff.update_staff)
    export_audit_log: JobPayload = mutation(
        "audit.export", AUDIT_READERS, resolver=audit.export_audit_log,
        description="The audit log (filtered) as CSV, built by a worker; the job's result holds it.",
    )


@strawberry.type
class Subscription:
    job_progress: Job = strawberry.subscription(resolver=jobs.job_progress, description="Progress of one job until it finishes.")
