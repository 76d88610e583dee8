from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from models.audit import AuditEntry as AuditEntryModel
from schema.base import Node, to_global_id
from schema.staff import Staff, load_staff
from services.access import AUDIT_READERS, Caller


@strawberry.type(description="One append-only audit record: who did what, when, from where.")
class AuditEntry(Node):
    id: strawberry.ID
    action: str = strawberry.field(description="e.g. customer.update, customer.pii_read, login.failed.")
    actor_name: str | None = strawberry.field(description="The username given, also when no staff member matched.")
    subject_type: str | None
    detail: JSON | None
    request_id: str | None
    ip: str | None
    at: datetime
    actor_id: strawberry.Private[int | None]
    subject_pk: strawberry.Private[str | None]

    @strawberry.field
    def subject_id(self) -> strawberry.ID | None:
        if self.subject_type is None or self.subject_pk is None:
            return None
        return to_global_id(self.subject_type, self.subject_pk)

    @strawberry.field
    async def actor(self, info: Info) -> Staff | None:
        return await load_staff(info, self.actor_id)

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, AuditEntry]:
        if caller.role not in AUDIT_READERS:
            return {}
        return await cls.nodes_in(AuditEntryModel.all(), pks)

    @classmethod
    def from_model(cls, m: AuditEntryModel) -> AuditEntry:
        return cls(
            id=to_global_id("AuditEntry", m.id),
            action=m.action,
            actor_name=m.actor_name,
            subject_type=m.subject_type,
            subject_pk=m.subject_id,
            detail=m.detail,
            request_id=m.request_id,
            ip=m.ip,
            at=m.at,
            actor_id=m.actor_id,
        )


@strawberry.input
class AuditFilter:
    actor_id: strawberry.ID | None = None
    action: str | None = None
    subject_id: strawberry.ID | None = None
    # Python names as in services.audit.AuditFilter (resolvers.filters maps by name); GraphQL names from/to.
    start: datetime | None = strawberry.field(name="from", default=None)
    end: datetime | None = strawberry.field(name="to", default=None)


@strawberry.input
class ExportAuditLogInput:
    filter: AuditFilter | None = None
