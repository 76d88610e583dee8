"""The customer portrait (客户画像) as the API shows it, the value-tier buckets, and the portrait loader."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from models.customers import ConsentPurpose, Customer as CustomerModel
from models.portraits import LifecycleStage as LifecycleStageEnum, Portrait as PortraitModel
from models.surveys import NpsCategory as NpsCategoryEnum
from schema import loaders
from schema.customers import Customer, ProductType, ValueTier
from schema.surveys import NpsCategory
from services import consents as consent_service

LifecycleStage = strawberry.enum(LifecycleStageEnum, name="LifecycleStage")


@strawberry.type
class ProductRecommendation:
    product: ProductType
    score: float = strawberry.field(description="0 to 1.")
    reason: str


@strawberry.type(
    description=(
        "The customer portrait (客户画像), recomputed asynchronously from holdings, interactions, complaints "
        "and surveys."
    )
)
class Portrait:
    value_tier: ValueTier
    aum: Decimal = strawberry.field(
        description="Assets under management: the sum of active deposit, wealth, fund, insurance and metal balances."
    )
    debt: Decimal
    product_count: int
    product_types: list[ProductType]
    tenure_months: int
    interactions90d: int = strawberry.field(name="interactions90d")
    last_contact_at: datetime | None
    complaint_count: int
    open_complaints: int
    avg_csat: float | None
    nps_category: NpsCategory | None
    churn_risk: float = strawberry.field(description="0 to 1.")
    churn_drivers: list[str] = strawberry.field(
        description="Why churnRisk is what it is, in plain words (PIPL art. 24 transparency)."
    )
    lifecycle_stage: LifecycleStage
    tags: list[str]
    computed_at: datetime
    stale: bool = strawberry.field(description="True when data changed after computedAt and a recompute is pending.")
    _customer_id: strawberry.Private[int]
    _customer_created_at: strawberry.Private[datetime]
    _recommendations: strawberry.Private[list[dict]]

    @strawberry.field
    async def next_best_products(self, info: Info) -> list[ProductRecommendation]:
        # A revoked PROFILING consent hides them at once, before the recompute it triggers (PIPL art. 24).
        records = await info.context.loaders.consents.load(self._customer_id)
        views = consent_service.consents_view(records, self._customer_created_at)
        if not any(v.granted for v in views if v.purpose == ConsentPurpose.PROFILING and v.channel is None):
            return []
        return [
            ProductRecommendation(product=ProductType(r["product"]), score=r["score"], reason=r["reason"])
            for r in self._recommendations
        ]

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return Customer.from_model(await info.context.loaders.customer.load(self._customer_id))

    @classmethod
    def from_model(cls, m: PortraitModel | loaders.Row, customer: CustomerModel) -> Portrait:
        return cls(
            value_tier=ValueTier[m.value_tier.value],
            aum=m.aum,
            debt=m.debt,
            product_count=m.product_count,
            product_types=[ProductType(p) for p in m.product_types],
            tenure_months=m.tenure_months,
            interactions90d=m.interactions_90d,
            last_contact_at=m.last_contact_at,
            complaint_count=m.complaint_count,
            open_complaints=m.open_complaints,
            avg_csat=m.avg_csat,
            nps_category=NpsCategoryEnum(m.nps_category) if m.nps_category else None,
            churn_risk=m.churn_risk,
            churn_drivers=list(m.churn_drivers),
            lifecycle_stage=LifecycleStageEnum(m.lifecycle_stage),
            tags=list(m.tags),
            computed_at=m.computed_at,
            stale=customer.portrait_stale_since is not None,
            _customer_id=m.customer_id,
            _customer_created_at=customer.created_at,
            _recommendations=list(m.next_best_products),
        )


@strawberry.type
class TierBucket:
    tier: ValueTier
    customers: int
    aum: Decimal


@strawberry.input(description="Whose portraits to recompute: exactly one of customerIds, segmentId and all.")
class RecomputePortraitsInput:
    customer_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="At most 1000 customers.")
    segment_id: strawberry.ID | None = strawberry.field(
        default=None, description="The segment's members as they are when the job runs."
    )
    all: bool | None = strawberry.field(
        default=None, description="Every customer; split into batches across the workers."
    )


async def load_portraits(customer_ids: list[int]) -> list[loaders.Row | None]:
    """Portraits by customer id, one query for the whole page (None: not computed yet), as rows: Portrait.from_model
    reads their columns only."""
    found = {p.customer_id: p for p in await loaders.fetch(PortraitModel.filter(customer_id__in=set(customer_ids)))}
    return [found.get(i) for i in customer_ids]


loaders.register("portrait", load_portraits)
loaders.read_as_rows(PortraitModel)
