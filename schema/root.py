"""The root types. Each field names its resolver and who may call it."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from resolvers import audit as audit_resolvers
from resolvers import complaints as complaint_resolvers
from resolvers import customers as customer_resolvers
from resolvers import follow_ups as follow_up_resolvers
from resolvers import interactions as interaction_resolvers
from resolvers import jobs as job_resolvers
from resolvers import nodes as node_resolvers
from resolvers import notes as note_resolvers
from resolvers import staff as staff_resolvers
from schema.audit import AuditEntry
from schema.base import Connection, Node
from schema.complaints import Complaint, ComplaintPayload, ComplaintStatBucket
from schema.conventions import mutation
from schema.customers import Customer, CustomerPayload, HoldingPayload, MergeCustomersPayload
from schema.follow_ups import FollowUp, FollowUpPayload
from schema.interactions import Interaction, InteractionPayload
from schema.jobs import Job, JobPayload
from schema.notes import NotePayload
from schema.permissions import allow
from schema.staff import LoginPayload, Staff, StaffPayload
from services import complaints as complaint_service
from services import follow_ups as follow_up_service
from services import interactions as interaction_service
from services import notes as note_service
from services.access import ALL_ROLES, AUDIT_READERS, STAFF_ADMINS
from services.customers import CONSENT_WRITERS, ERASERS, EXPORTERS, MERGERS, WRITERS


@strawberry.type
class Query:
    node: Node | None = strawberry.field(
        resolver=node_resolvers.node,
        description="Anything by its global id; null when it does not exist or is hidden from you.",
    )
    nodes: list[Node | None] = strawberry.field(resolver=node_resolvers.nodes)
    me: Staff | None = strawberry.field(
        resolver=staff_resolvers.me, description="The signed-in staff member; null without a valid token."
    )
    staff: Connection[Staff] = strawberry.field(resolver=staff_resolvers.staff_list, extensions=allow(ALL_ROLES))
    job: Job | None = strawberry.field(resolver=job_resolvers.job, extensions=allow(ALL_ROLES))
    jobs: Connection[Job] = strawberry.field(resolver=job_resolvers.jobs, extensions=allow(ALL_ROLES))
    audit_log: Connection[AuditEntry] = strawberry.field(
        resolver=audit_resolvers.audit_log, extensions=allow(AUDIT_READERS)
    )
    customer: Customer | None = strawberry.field(
        resolver=customer_resolvers.customer,
        extensions=allow(ALL_ROLES),
        description="One customer by id or customer number; null when it does not exist or is hidden from you.",
    )
    customers: Connection[Customer] = strawberry.field(
        resolver=customer_resolvers.customers, extensions=allow(ALL_ROLES)
    )
    export_customer_data: JSON = strawberry.field(
        resolver=customer_resolvers.export_customer_data,
        extensions=allow(EXPORTERS),
        description="Everything held about one customer, as one JSON document (PIPL access request).",
    )
    interactions: Connection[Interaction] = strawberry.field(
        resolver=interaction_resolvers.interactions, extensions=allow(ALL_ROLES)
    )
    follow_ups: Connection[FollowUp] = strawberry.field(
        resolver=follow_up_resolvers.follow_ups, extensions=allow(ALL_ROLES)
    )
    complaint: Complaint | None = strawberry.field(resolver=complaint_resolvers.complaint, extensions=allow(ALL_ROLES))
    complaints: Connection[Complaint] = strawberry.field(
        resolver=complaint_resolvers.complaints, extensions=allow(ALL_ROLES)
    )
    complaint_stats: list[ComplaintStatBucket] = strawberry.field(
        resolver=complaint_resolvers.complaint_stats_resolver, extensions=allow(ALL_ROLES)
    )


@strawberry.type
class Mutation:
    login: LoginPayload = mutation(None, None, public=True, resolver=staff_resolvers.login)
    create_staff: StaffPayload = mutation("staff.create", STAFF_ADMINS, resolver=staff_resolvers.create_staff)
    update_staff: StaffPayload = mutation("staff.update", STAFF_ADMINS, resolver=staff_resolvers.update_staff)
    create_customer: CustomerPayload = mutation("customer.create", WRITERS, resolver=customer_resolvers.create_customer)
    update_customer: CustomerPayload = mutation("customer.update", WRITERS, resolver=customer_resolvers.update_customer)
    set_consents: CustomerPayload = mutation(
        "customer.consents", CONSENT_WRITERS, resolver=customer_resolvers.set_consents
    )
    merge_customers: MergeCustomersPayload = mutation(
        "customer.merge", MERGERS, service_audits=True, resolver=customer_resolvers.merge_customers
    )
    erase_customer: CustomerPayload = mutation(
        "customer.erase",
        ERASERS,
        service_audits=True,
        resolver=customer_resolvers.erase_customer,
        description="PIPL erasure: personal data is anonymised; records the bank must keep stay, unlinked.",
    )
    upsert_holding: HoldingPayload = mutation("holding.upsert", WRITERS, resolver=customer_resolvers.upsert_holding)
    import_customers: JobPayload = mutation("customer.import", WRITERS, resolver=customer_resolvers.import_customers)
    log_interaction: InteractionPayload = mutation(
        "interaction.log", interaction_service.WRITERS, resolver=interaction_resolvers.log_interaction
    )
    resolve_interaction: InteractionPayload = mutation(
        "interaction.resolve", interaction_service.WRITERS, resolver=interaction_resolvers.resolve_interaction
    )
    create_follow_up: FollowUpPayload = mutation(
        "follow_up.create", follow_up_service.WRITERS, resolver=follow_up_resolvers.create_follow_up
    )
    update_follow_up: FollowUpPayload = mutation(
        "follow_up.update", follow_up_service.WRITERS, resolver=follow_up_resolvers.update_follow_up
    )
    add_note: NotePayload = mutation("note.add", note_service.WRITERS, resolver=note_resolvers.add_note)
    file_complaint: ComplaintPayload = mutation(
        "complaint.file", complaint_service.FILERS, resolver=complaint_resolvers.file_complaint
    )
    acknowledge_complaint: ComplaintPayload = mutation(
        "complaint.acknowledge", complaint_service.HANDLERS, resolver=complaint_resolvers.acknowledge_complaint
    )
    assign_complaint: ComplaintPayload = mutation(
        "complaint.assign", complaint_service.HANDLERS, resolver=complaint_resolvers.assign_complaint
    )
    start_complaint: ComplaintPayload = mutation(
        "complaint.start", complaint_service.HANDLERS, resolver=complaint_resolvers.start_complaint
    )
    escalate_complaint: ComplaintPayload = mutation(
        "complaint.escalate", complaint_service.HANDLERS, resolver=complaint_resolvers.escalate_complaint
    )
    extend_complaint_deadline: ComplaintPayload = mutation(
        "complaint.extend", complaint_service.HANDLERS, resolver=complaint_resolvers.extend_complaint_deadline
    )
    resolve_complaint: ComplaintPayload = mutation(
        "complaint.resolve", complaint_service.HANDLERS, resolver=complaint_resolvers.resolve_complaint
    )
    close_complaint: ComplaintPayload = mutation(
        "complaint.close", complaint_service.HANDLERS, resolver=complaint_resolvers.close_complaint
    )
    reopen_complaint: ComplaintPayload = mutation(
        "complaint.reopen", complaint_service.HANDLERS, resolver=complaint_resolvers.reopen_complaint
    )
    withdraw_complaint: ComplaintPayload = mutation(
        "complaint.withdraw", complaint_service.HANDLERS, resolver=complaint_resolvers.withdraw_complaint
    )
    export_complaint_report: JobPayload = mutation(
        "complaint.report",
        None,
        resolver=complaint_resolvers.export_complaint_report,
        description="Regulatory statistics for a period as a CSV file, built by a worker; the job's result holds it.",
    )
    export_audit_log: JobPayload = mutation(
        "audit.export",
        AUDIT_READERS,
        resolver=audit_resolvers.export_audit_log,
        description="The audit log (filtered) as CSV, built by a worker; the job's result holds it.",
    )


@strawberry.type
class Subscription:
    complaint_updated: Complaint = strawberry.subscription(
        resolver=complaint_resolvers.complaint_updated,
        description="Each change of one complaint, or of every complaint the viewer may see.",
    )
    job_progress: Job = strawberry.subscription(
        resolver=job_resolvers.job_progress, description="Progress of one job until it finishes."
    )
