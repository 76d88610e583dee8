from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from resolvers.customers import CUSTOMER_FILTER
from schema.base import Connection, DeleteInput, DeletePayload, require_pk, to_global_id
from schema.conventions import mutation
from schema.permissions import allow
from schema.segments import CreateSegmentInput, Segment, SegmentPayload, UpdateSegmentInput
from services import access, segments as segment_service
from services.pagination import OrderKey, paginate

BY_NAME = [OrderKey("name"), OrderKey("id")]


async def segments(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Segment]:
    qs = segment_service.readable(await caller_of(info))
    page = await paginate(qs, BY_NAME, first=first, after=after, last=last, before=before)
    return Connection.of(page, Segment.from_model)


async def create_segment(info: Info, input: CreateSegmentInput) -> SegmentPayload:
    created = await segment_service.create(
        await caller_of(info),
        name=input.name,
        description=input.description,
        customer_filter=CUSTOMER_FILTER.to_service(input.filter),
    )
    return SegmentPayload(segment=Segment.from_model(created))


async def update_segment(info: Info, input: UpdateSegmentInput) -> SegmentPayload:
    changes: dict[str, Any] = {}
    if input.name is not strawberry.UNSET:
        changes["name"] = input.name
    if input.description is not strawberry.UNSET:
        changes["description"] = input.description
    if input.filter is not strawberry.UNSET:
        changes["filter"] = None if input.filter is None else CUSTOMER_FILTER.to_service(input.filter)
    updated = await segment_service.update(
        await caller_of(info), require_pk(input.id, "Segment"), changes, version=input.version
    )
    return SegmentPayload(segment=Segment.from_model(updated))


async def delete_segment(info: Info, input: DeleteInput) -> DeletePayload:
    deleted = await segment_service.delete(await caller_of(info), require_pk(input.id, "Segment"))
    return DeletePayload(deleted_id=to_global_id("Segment", deleted))


@strawberry.type
class Query:
    segments: Connection[Segment] = strawberry.field(
        resolver=segments, extensions=allow(access.SEGMENT_READERS), description="Every segment, by name."
    )


@strawberry.type
class Mutation:
    create_segment: SegmentPayload = mutation("segment.create", access.SEGMENT_EDITORS, resolver=create_segment)
    update_segment: SegmentPayload = mutation("segment.update", access.SEGMENT_EDITORS, resolver=update_segment)
    delete_segment: DeletePayload = mutation("segment.delete", access.SEGMENT_EDITORS, resolver=delete_segment)
