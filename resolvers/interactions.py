from __future__ import annotations

from strawberry.types import Info

from resolvers.common import caller_of
from schema.base import Connection, require_pk
from schema.interactions import (
    Interaction,
    InteractionFilter,
    InteractionPayload,
    LogInteractionInput,
    ResolveInteractionInput,
)
from services import interactions as interaction_service
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("occurred_at", descending=True), OrderKey("id", descending=True)]


def _domain_filter(given: InteractionFilter | None) -> interaction_service.InteractionFilter:
    if given is None:
        return interaction_service.InteractionFilter()
    return interaction_service.InteractionFilter(
        customer_id=require_pk(given.customer_id, "Customer", ["filter", "customerId"]) if given.customer_id else None,
        staff_id=require_pk(given.staff_id, "Staff", ["filter", "staffId"]) if given.staff_id else None,
        channel=given.channel,
        kind=given.kind,
        status=given.status,
        occurred_after=given.occurred_after,
        occurred_before=given.occurred_before,
        search=given.search,
    )


async def interactions(
    info: Info,
    filter: InteractionFilter | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Interaction]:
    qs = interaction_service.apply_filter(interaction_service.visible(await caller_of(info)), _domain_filter(filter))
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, Interaction.from_model)


async def log_interaction(info: Info, input: LogInteractionInput) -> InteractionPayload:
    logged = await interaction_service.log(
        await caller_of(info),
        require_pk(input.customer_id, "Customer", "customerId"),
        channel=input.channel,
        direction=input.direction,
        kind=input.kind,
        subject=input.subject,
        content=input.content,
        outcome=input.outcome,
        status=input.status,
        occurred_at=input.occurred_at,
        duration_seconds=input.duration_seconds,
    )
    return InteractionPayload(interaction=Interaction.from_model(logged))


async def resolve_interaction(info: Info, input: ResolveInteractionInput) -> InteractionPayload:
    resolved = await interaction_service.resolve(
        await caller_of(info), require_pk(input.id, "Interaction"), input.outcome
    )
    return InteractionPayload(interaction=Interaction.from_model(resolved))
