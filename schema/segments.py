from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from models.segments import Segment as SegmentModel
from schema.base import Connection, Node, UserError, to_global_id
from schema.customers import Customer, CustomerFilter
from schema.staff import Staff, load_staff
from services import segments as segment_service
from services.access import Caller
from services.pagination import OrderKey, paginate

# The customers list's default order (newest customers first), so members page like `customers(filter:)`.
MEMBER_ORDER = [OrderKey("created_at", descending=True), OrderKey("id", descending=True)]


@strawberry.type(
    description="A saved customer filter (客户细分). Its size and members are evaluated live, as the customers "
    "list shows them to the viewer (a branch-bound viewer counts only their branch's customers)."
)
class Segment(Node):
    id: strawberry.ID
    name: str
    description: str | None
    version: int = strawberry.field(description="One more per change; updateSegment may carry it (STALE_VERSION).")
    created_at: datetime
    updated_at: datetime
    _m: strawberry.Private[SegmentModel]

    @strawberry.field(
        description="The CustomerFilter, in the input's field names and values (ids global): send it back to "
        "`customers(filter:)` or `updateSegment` as it is."
    )
    def filter(self) -> JSON:
        from resolvers.customers import CUSTOMER_FILTER  # the input <-> service filter mapping

        return CUSTOMER_FILTER.to_input_json(segment_service.stored_filter(self._m))

    @strawberry.field(description="How many customers the filter matches now, of those the viewer may see.")
    async def size(self, info: Info) -> int:
        return await segment_service.size(await info.context.caller(), self._m)

    @strawberry.field(description="The customers the filter matches now, newest first, as `customers` shows them.")
    async def members(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Customer]:
        members = segment_service.member_query(await info.context.caller(), self._m)
        page = await paginate(members, MEMBER_ORDER, first=first, after=after, last=last, before=before)
        return Connection.of(page, Customer.from_model)

    @strawberry.field
    async def created_by(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.created_by_id)

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Segment]:
        if not segment_service.may_read(caller):
            return {}
        return await cls.nodes_in(segment_service.readable(caller), pks)

    @classmethod
    def from_model(cls, m: SegmentModel) -> Segment:
        return cls(
            id=to_global_id("Segment", m.id),
            name=m.name,
            description=m.description,
            version=m.version,
            created_at=m.created_at,
            updated_at=m.updated_at,
            _m=m,
        )


@strawberry.input
class CreateSegmentInput:
    name: str
    description: str | None = None
    filter: CustomerFilter = strawberry.field(description="Who belongs; {} is every customer.")


@strawberry.input
class UpdateSegmentInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.field(default=strawberry.UNSET, description="null or blank clears it.")
    filter: CustomerFilter | None = strawberry.UNSET
    version: int | None = strawberry.field(
        default=None, description="The version that the caller read; when given, a newer stored one is STALE_VERSION."
    )


@strawberry.type
class SegmentPayload:
    segment: Segment | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
