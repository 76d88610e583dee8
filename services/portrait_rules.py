"""Pure rules of the customer portrait (docs/DOMAIN.md "Portraits and segments"; explained in docs/PORTRAITS.md).

No I/O here: services/portraits.py gathers the facts of a batch of customers in a fixed number of queries and
hands each customer's facts to these functions, so every formula can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from models.customers import CustomerStatus, ProductType
from models.portraits import LifecycleStage, ValueTier
from services import customer_rules

# ---------------------------------------------------------------- thresholds and weights

NO_CONTACT_DAYS = 180  # no interaction for this many days is a churn signal
CLOSED_WITHIN_DAYS = 90  # products closed within this many days are a churn signal
INTERACTIONS_WITHIN_DAYS = 90  # interactions90d
DETRACTOR_WITHIN_DAYS = 365  # detractor answers within this many days are a churn signal
NEW_BELOW_MONTHS = 6  # tenure below this: NEW
DORMANT_AFTER_MONTHS = 12  # no activity for this many months: DORMANT
GROWING_WITHIN_DAYS = 180  # a product opened within this many days: GROWING
DECLINING_FROM = 0.6  # churnRisk at or above this: DECLINING
# The co-holding statistics behind next best products are renewed when older than this (services/portraits.py):
# they describe the whole bank, which a few minutes do not change, and making them scans every holding.
STATISTICS_MAX_AGE = timedelta(minutes=10)

# Churn weights in points out of 100 (integers, so that sums are exact); the risk is min(100, total) / 100.
NO_CONTACT_POINTS = 25
CLOSED_PRODUCT_POINTS, CLOSED_PRODUCTS_MAX_POINTS = 15, 45  # per product closed, at most
OPEN_COMPLAINT_POINTS = 20  # any open complaint still within its deadline
BREACHED_COMPLAINT_POINTS = 30  # any open complaint past its deadline (instead of the 20)
DETRACTOR_POINTS = 20
DORMANT_STATUS_POINTS = 30

TIER_LABELS = {
    ValueTier.PRIVATE_BANKING: "私人银行客户",
    ValueTier.WEALTH: "财富客户",
    ValueTier.AFFLUENT: "富裕客户",
    ValueTier.MASS: "大众客户",
}
PRODUCT_LABELS = {
    ProductType.CURRENT_DEPOSIT: "活期存款",
    ProductType.TIME_DEPOSIT: "定期存款",
    ProductType.DEBIT_CARD: "借记卡",
    ProductType.CREDIT_CARD: "信用卡",
    ProductType.PERSONAL_LOAN: "个人贷款",
    ProductType.MORTGAGE: "住房按揭",
    ProductType.WEALTH_MANAGEMENT: "理财产品",
    ProductType.FUND: "基金",
    ProductType.INSURANCE: "保险",
    ProductType.PRECIOUS_METAL: "贵金属",
}
# Each product's bit in a customer's product set (the co-holding statistics count customers per set).
PRODUCT_BITS = {product: 1 << i for i, product in enumerate(ProductType)}


# ---------------------------------------------------------------- value tier, tenure


def value_tier(aum: Decimal) -> ValueTier:
    """The tier of customer_rules.TIER_FLOORS (the one definition the customer filters use too)."""
    return ValueTier(customer_rules.value_tier(aum))


def months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end` (0 when end is before start): Jan 31 → Feb 28 is 0."""
    months = (end.year - start.year) * 12 + end.month - start.month - (1 if end.day < start.day else 0)
    return max(months, 0)


# ---------------------------------------------------------------- churn risk


@dataclass(frozen=True)
class ChurnFacts:
    status: CustomerStatus
    days_without_contact: int  # since the last interaction (or since the relationship began, if none)
    closed_recently: int  # holdings closed within CLOSED_WITHIN_DAYS
    open_complaints: int
    breached_complaints: int  # open ones past their due time (a subset of open_complaints)
    recent_detractor_answers: int  # NPS 0-6 within DETRACTOR_WITHIN_DAYS


@dataclass(frozen=True)
class ChurnDriver:
    points: int
    text: str  # plain Chinese naming the fact, shown to staff and to a customer who asks (PIPL art. 24)


def churn_drivers(facts: ChurnFacts) -> list[ChurnDriver]:
    """Every churn signal present, in a fixed order, with its weight."""
    drivers = []
    if facts.days_without_contact >= NO_CONTACT_DAYS:
        drivers.append(ChurnDriver(NO_CONTACT_POINTS, f"{facts.days_without_contact} 天未联系"))
    if facts.closed_recently > 0:
        points = min(CLOSED_PRODUCT_POINTS * facts.closed_recently, CLOSED_PRODUCTS_MAX_POINTS)
        drivers.append(ChurnDriver(points, f"近 {CLOSED_WITHIN_DAYS} 天销户 {facts.closed_recently} 个产品"))
    if facts.breached_complaints > 0:
        text = f"{facts.open_complaints} 件投诉未结，其中 {facts.breached_complaints} 件已超过处理时限"
        drivers.append(ChurnDriver(BREACHED_COMPLAINT_POINTS, text))
    elif facts.open_complaints > 0:
        drivers.append(ChurnDriver(OPEN_COMPLAINT_POINTS, f"{facts.open_complaints} 件投诉未结"))
    if facts.recent_detractor_answers > 0:
        text = f"近 {DETRACTOR_WITHIN_DAYS} 天 {facts.recent_detractor_answers} 次给出 NPS 贬损评分（0–6 分）"
        drivers.append(ChurnDriver(DETRACTOR_POINTS, text))
    if facts.status == CustomerStatus.DORMANT:
        drivers.append(ChurnDriver(DORMANT_STATUS_POINTS, "账户状态为休眠"))
    return drivers


def churn_risk(drivers: list[ChurnDriver]) -> float:
    """The drivers' points added up, capped at 100, as a share: 0.0 .. 1.0 in steps of 0.01."""
    return min(sum(d.points for d in drivers), 100) / 100


# ---------------------------------------------------------------- lifecycle


@dataclass(frozen=True)
class LifecycleFacts:
    status: CustomerStatus
    tenure_months: int
    months_without_activity: int  # since the latest interaction, holding opened or closed, complaint or answer
    churn_risk: float
    opened_recently: bool  # a product opened within GROWING_WITHIN_DAYS


def lifecycle_stage(facts: LifecycleFacts) -> LifecycleStage:
    """The first stage that applies, in the order of docs/DOMAIN.md."""
    if facts.tenure_months < NEW_BELOW_MONTHS:
        return LifecycleStage.NEW
    if facts.status == CustomerStatus.DORMANT or facts.months_without_activity >= DORMANT_AFTER_MONTHS:
        return LifecycleStage.DORMANT
    if facts.churn_risk >= DECLINING_FROM:
        return LifecycleStage.DECLINING
    if facts.opened_recently:
        return LifecycleStage.GROWING
    return LifecycleStage.MATURE


# ---------------------------------------------------------------- next best products


@dataclass(frozen=True)
class Recommendation:
    product: ProductType
    score: float  # 0..1
    reason: str

    def as_json(self) -> dict:
        return {"product": self.product.value, "score": self.score, "reason": self.reason}


def product_mask(products: set[ProductType] | frozenset[ProductType]) -> int:
    mask = 0
    for product in products:
        mask |= PRODUCT_BITS[product]
    return mask


def _percent(share: float) -> str:
    return f"{round(share * 100)}%"


@dataclass(frozen=True)
class CoHolding:
    """How the customers of one tier hold products: built once per tier from the count of customers per
    product set (a mask of PRODUCT_BITS), then asked for every customer of the batch."""

    everyone: int  # customers holding any product
    holders: Mapping[ProductType, int]
    both: Mapping[tuple[ProductType, ProductType], int]  # (held, other): customers holding the two

    @classmethod
    def of(cls, customers_per_set: Mapping[int, int]) -> CoHolding:
        holders = {p: 0 for p in ProductType}
        both = {(a, b): 0 for a in ProductType for b in ProductType}
        for mask, n in customers_per_set.items():
            present = [p for p in ProductType if mask & PRODUCT_BITS[p]]
            for a in present:
                holders[a] += n
                for b in present:
                    both[(a, b)] += n
        return cls(sum(n for mask, n in customers_per_set.items() if mask), holders, both)


NO_CO_HOLDING = CoHolding(0, {p: 0 for p in ProductType}, {(a, b): 0 for a in ProductType for b in ProductType})


def recommend(tier: ValueTier, held: frozenset[ProductType], stats: CoHolding) -> list[Recommendation]:
    """The products the customer lacks, best first.

    A lacking product's score is the largest share, over the products the customer holds, of the tier's
    holders of that product who also hold the lacking one; a customer with no product gets the share of the
    tier's customers (with any product) who hold it. Products nobody in that group holds are left out.
    """
    tier_label = TIER_LABELS[tier]
    found: list[Recommendation] = []
    for product in ProductType:
        if product in held:
            continue
        best: tuple[float, str] | None = None
        for given in ProductType:  # the enum order breaks ties between equally good reasons
            holders = stats.holders[given]
            if given not in held or not holders:
                continue
            both = stats.both[(given, product)]
            if best is None or both / holders > best[0]:
                share = f"{_percent(both / holders)}（{both}/{holders}）"
                reason = f"在持有{PRODUCT_LABELS[given]}的{tier_label}中，{share}也持有{PRODUCT_LABELS[product]}"
                best = (both / holders, reason)
        if not held and stats.everyone:
            holders = stats.holders[product]
            share = f"{_percent(holders / stats.everyone)}（{holders}/{stats.everyone}）"
            best = (holders / stats.everyone, f"{tier_label}中，{share}持有{PRODUCT_LABELS[product]}")
        if best is not None and best[0] > 0:
            found.append(Recommendation(product, round(best[0], 4), best[1]))
    order = list(ProductType)
    return sorted(found, key=lambda r: (-r.score, order.index(r.product)))


# ---------------------------------------------------------------- tags


def derived_tags(tier: ValueTier, stage: LifecycleStage, risk: float, open_complaints: int) -> list[str]:
    """Labels derived from the portrait, after the staff's own tags."""
    tags = [TIER_LABELS[tier], STAGE_LABELS[stage]]
    if risk >= DECLINING_FROM:
        tags.append("高流失风险")
    if open_complaints:
        tags.append("有未结投诉")
    return tags


STAGE_LABELS = {
    LifecycleStage.NEW: "新客户",
    LifecycleStage.GROWING: "成长期",
    LifecycleStage.MATURE: "成熟期",
    LifecycleStage.DECLINING: "衰退期",
    LifecycleStage.DORMANT: "休眠期",
}
