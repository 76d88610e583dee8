"""Customer mining over the stored portraits: prospects for a product and the distribution of value tiers.

Both are scoped like the customers list (services.customers.visible: a branch-bound caller sees their branch)
and computed by the database; the portraits themselves come from services/portraits.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tortoise.connection import get_connection
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from models.customers import Consent, ConsentPurpose, HoldingStatus, ProductHolding, ProductType
from models.portraits import Portrait, ValueTier, score_column
from services import access, customers
from services.access import Caller, require_role
from services.pagination import OrderKey
from services.portraits import CURRENT, tier_case

CENT = Decimal("0.01")


def prospect_order(product: ProductType) -> list[OrderKey]:
    """Best prospects first; the customer id makes the order total (one portrait per customer)."""
    return [OrderKey(score_column(product), descending=True), OrderKey("customer_id")]


def prospects(caller: Caller, product: ProductType) -> QuerySet[Portrait]:
    """The portraits, with the customer loaded, of current customers the caller may see who still lack
    `product` and to whom it is recommended, to be ordered by prospect_order(product). Customers who have not
    consented to profiling have no recommendations, so they are never anyone's prospects."""
    require_role(caller, access.PORTRAIT_READERS)
    visible = customers.visible(caller).filter(status__in=CURRENT)
    holders = ProductHolding.filter(product=product, status=HoldingStatus.ACTIVE)
    # A revocation counts at once, before the recompute it triggers (the general answer: consents.granted_for).
    revoked = Consent.filter(purpose=ConsentPurpose.PROFILING, channel__isnull=True, granted=False)
    return (
        Portrait.filter(**{f"{score_column(product)}__isnull": False})
        .filter(customer_id__in=Subquery(visible.values("id")))
        .exclude(customer_id__in=Subquery(holders.values("customer_id")))
        .exclude(customer_id__in=Subquery(revoked.values("customer_id")))
        .select_related("customer")
    )


@dataclass(frozen=True)
class TierBucket:
    tier: ValueTier
    customers: int
    aum: Decimal


async def tier_distribution(caller: Caller) -> list[TierBucket]:
    """How many current customers the caller may see are in each value tier, and their AUM: every tier, top
    first, zero when empty. One statement; the tier is computed from the stored AUM by the same floors as the
    customers list's valueTier filter (customer_rules.TIER_FLOORS)."""
    require_role(caller, access.PORTRAIT_READERS)
    scoped = customers.visible(caller).filter(status__in=CURRENT).values("aum")
    scoped.sql()  # binds the query to its connection and builds it (as services/complaint_stats.py does)
    inner_sql, params = scoped.query.get_parameterized_sql()
    # Cents as integers: SQLite stores the AUM as text and would add it up in floating point.
    sql = (
        f"SELECT {tier_case('c.aum')} AS tier, COUNT(*) AS n, "
        "SUM(CAST(ROUND(CAST(c.aum AS NUMERIC) * 100) AS BIGINT)) AS cents "
        f"FROM ({inner_sql}) c GROUP BY 1"
    )
    _, rows = await get_connection("default").execute_query(sql, params)
    found = {ValueTier(row["tier"]): (int(row["n"]), int(row["cents"] or 0)) for row in rows}
    buckets = []
    for tier in ValueTier:
        count, cents = found.get(tier, (0, 0))
        buckets.append(TierBucket(tier, count, (Decimal(cents) / 100).quantize(CENT)))
    return buckets
