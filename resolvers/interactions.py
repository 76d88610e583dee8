from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from resolvers.filters import FilterMapping, GlobalId
from schema.base import Connection, require_pk
from schema.conventions import mutation
from schema.interactions import (
    Interaction,
    InteractionFilter,
    InteractionPayload,
    LogInteractionInput,
    ResolveInteractionInput,
)
from schema.permissions import allow
from services import access, interactions as interaction_service
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("occurred_at", descending=True), OrderKey("id", descending=True)]


INTERACTION_FILTER = FilterMapping(
    InteractionFilter,
    interaction_service.InteractionFilter,
    ids={"customer_id": GlobalId("Customer"), "staff_id": GlobalId("Staff")},
)


async def interactions(
    info: Info,
    filter: InteractionFilter | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Interaction]:
    qs = interaction_service.matching(await caller_of(info), INTERACTION_FILTER.to_service(filter))
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


@strawberry.type
class Query:
    interactions: Connection[Interaction] = strawberry.field(resolver=interactions, extensions=allow(access.ALL_ROLES))


@strawberry.type
class Mutation:
    log_interaction: InteractionPayload = mutation(
        "interaction.log", access.INTERACTION_WRITERS, resolver=log_interaction
    )
    resolve_interaction: InteractionPayload = mutation(
        "interaction.resolve", access.INTERACTION_WRITERS, resolver=resolve_interaction
    )
