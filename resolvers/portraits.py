from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from schema.base import Connection, require_pk
from schema.conventions import mutation
from schema.customers import Customer, ProductType, ValueTier
from schema.jobs import Job, JobPayload
from schema.permissions import allow
from schema.portraits import RecomputePortraitsInput, TierBucket
from services import access, mining, portrait_jobs
from services.pagination import paginate


async def prospects(
    info: Info,
    product: ProductType,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Customer]:
    qs = mining.prospects(await caller_of(info), product)
    order = mining.prospect_order(product)
    page = await paginate(qs, order, first=first, after=after, last=last, before=before)
    return Connection.of(page, lambda portrait: Customer.from_model(portrait.customer))


async def tier_distribution(info: Info) -> list[TierBucket]:
    buckets = await mining.tier_distribution(await caller_of(info))
    return [TierBucket(tier=ValueTier[b.tier.value], customers=b.customers, aum=b.aum) for b in buckets]


async def recompute_portraits(info: Info, input: RecomputePortraitsInput) -> JobPayload:
    customer_ids = None
    if input.customer_ids is not None:
        customer_ids = [require_pk(g, "Customer", ["customerIds", str(n)]) for n, g in enumerate(input.customer_ids)]
    job = await portrait_jobs.start(
        await caller_of(info),
        customer_ids=customer_ids,
        segment_id=None if input.segment_id is None else require_pk(input.segment_id, "Segment", "segmentId"),
        everyone=input.all,
        enqueue=info.context.enqueue("run_job"),
    )
    return JobPayload(job=Job.from_model(job))


@strawberry.type
class Query:
    prospects: Connection[Customer] = strawberry.field(
        resolver=prospects,
        extensions=allow(access.PORTRAIT_READERS),
        description="Customers who lack a product, best prospects first.",
    )
    tier_distribution: list[TierBucket] = strawberry.field(
        resolver=tier_distribution, extensions=allow(access.PORTRAIT_READERS)
    )


@strawberry.type
class Mutation:
    recompute_portraits: JobPayload = mutation(
        "portrait.recompute", access.PORTRAIT_RECOMPUTERS, resolver=recompute_portraits
    )
