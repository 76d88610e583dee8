"""Customer portraits: the staleness hook every change behind a portrait calls, and the computation.

`compute(ids)` reads a batch of customers with a fixed number of set-based queries (GROUP BY customer over
the batch's ids, whatever its size), applies the pure rules of services/portrait_rules.py and replaces the
batch's portraits and product recommendations in one transaction. The formulas: docs/PORTRAITS.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import F, Q, Value
from tortoise.functions import Avg, Coalesce, Count, Max, Min

from core.db import atomic
from core.settings import SettingsError, section
from models.complaints import Complaint
from models.customers import (
    ConsentPurpose,
    Customer,
    CustomerStatus,
    CustomerTag,
    HoldingStatus,
    ProductHolding,
    ProductType,
)
from models.interactions import Interaction
from models.portraits import Portrait, ProductRecommendation, TierProductSets, ValueTier
from models.surveys import NpsCategory, SurveyResponse
from services import clock, complaint_rules, consents, customer_relations, customer_rules, portrait_rules as rules
from services.customer_relations import Relation


# Freshness (services/portrait_jobs.py): when the sweep recomputes stale portraits, and the batch size.
@section
@dataclass(frozen=True)
class PortraitSettings:
    # CRM_PORTRAIT_DEBOUNCE_SECONDS: a stale portrait is recomputed once it has been stale this long, so that a
    # burst of changes gives one recompute.
    portrait_debounce_seconds: int = 5
    # CRM_PORTRAIT_BATCH_SIZE: customers per computation (a sweep's batch, one message of a recompute job).
    portrait_batch_size: int = 1000

    def check(self) -> None:
        if not 0 <= self.portrait_debounce_seconds <= 3600:
            raise SettingsError("CRM_PORTRAIT_DEBOUNCE_SECONDS must be between 0 and 3600")
        if not 1 <= self.portrait_batch_size <= 10_000:
            raise SettingsError("CRM_PORTRAIT_BATCH_SIZE must be between 1 and 10000")

    @property
    def sweep_seconds(self) -> int:
        """How often the scheduler sends the sweep: a fraction of the window, between 1 and 30 seconds."""
        return max(1, min(30, self.portrait_debounce_seconds // 2))


# Customers whose relationship with the bank is over get no recommendations and count in no statistics;
# an erased customer has no portrait at all (PIPL: nothing is profiled about them any more).
CURRENT = (CustomerStatus.ACTIVE, CustomerStatus.DORMANT)


async def mark_stale(customer_ids: Iterable[int]) -> None:
    """Data behind these customers' portraits changed: they need a recompute (the first moment is kept; the
    sweep of services/portrait_jobs.py recomputes them once the debounce window has passed).

    The UPDATE writes every row, stale or not (COALESCE keeps the first moment): on PostgreSQL a row whose mark
    a running `compute` has just cleared is then waited for and marked again, where `... WHERE stale IS NULL`
    would skip it and lose the change."""
    ids = list(set(customer_ids))
    if ids:
        await Customer.filter(id__in=ids).update(
            portrait_stale_since=Coalesce(F("portrait_stale_since"), Value(clock.now()))
        )


# ---------------------------------------------------------------- reading a batch


def _datetime(value: Any) -> datetime | None:
    """An aggregated timestamp as an aware UTC datetime (SQLite hands aggregates back as ISO text)."""
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if value is not None and value.tzinfo else value
    parsed = datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass
class _Gathered:
    """Everything read about one customer."""

    status: CustomerStatus
    aum: Decimal
    debt: Decimal
    created_at: datetime
    active_products: set[ProductType] = field(default_factory=set)
    active_holdings: int = 0
    first_opened: date | None = None
    last_opened: date | None = None
    last_closed: date | None = None
    closed_recently: int = 0
    interactions_recent: int = 0
    last_contact: datetime | None = None
    complaints: int = 0
    open_complaints: int = 0
    breached_complaints: int = 0
    last_complaint: datetime | None = None
    avg_csat: float | None = None
    recent_detractors: int = 0
    last_answer: datetime | None = None
    nps_category: NpsCategory | None = None
    tags: list[str] = field(default_factory=list)


def _latest(*values: date | None) -> date | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def tier_case(column: str) -> str:
    # TIER_FLOORS are our own constants: nothing a caller sends reaches this SQL text.
    whens = " ".join(
        f"WHEN CAST({column} AS NUMERIC) >= {floor} THEN '{tier}'" for tier, floor in customer_rules.TIER_FLOORS[:-1]
    )
    return f"CASE {whens} ELSE '{customer_rules.TIER_FLOORS[-1][0]}' END"


def _quoted(values: Iterable[Any]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


_PRODUCT_BIT_CASE = (
    "CASE h.product " + " ".join(f"WHEN '{p.value}' THEN {bit}" for p, bit in rules.PRODUCT_BITS.items()) + " END"
)
# How many current customers of each tier hold each exact set of active products: one scan of the holdings,
# at most 4 x 1024 rows back. Shared by the whole batch (the statistics are about everyone, not the batch).
CO_HOLDING_SQL = f"""
SELECT tier, mask, COUNT(*) AS n FROM (
    SELECT {tier_case("c.aum")} AS tier, SUM(DISTINCT {_PRODUCT_BIT_CASE}) AS mask
    FROM product_holding h JOIN customer c ON c.id = h.customer_id
    WHERE h.status = '{HoldingStatus.ACTIVE.value}' AND c.status IN ({_quoted(CURRENT)})
    GROUP BY h.customer_id, c.aum
) sets GROUP BY tier, mask
"""


async def co_holding() -> dict[ValueTier, rules.CoHolding]:
    """The co-holding statistics of every tier: the stored ones (one query), or, when they are missing or older
    than STATISTICS_MAX_AGE, new ones from every holding (two more: the scan and an upsert)."""
    now = clock.now()
    stored = await TierProductSets.all()
    if len(stored) == len(ValueTier) and min(s.computed_at for s in stored) > now - rules.STATISTICS_MAX_AGE:
        per_tier = {ValueTier(s.tier): {int(mask): n for mask, n in s.customers_per_set.items()} for s in stored}
    else:
        _, rows = await get_connection("default").execute_query(CO_HOLDING_SQL)
        per_tier = {tier: {} for tier in ValueTier}
        for row in rows:
            per_tier[ValueTier(row["tier"])][int(row["mask"])] = int(row["n"])
        # An upsert: computations that renew them at the same moment do not collide.
        await TierProductSets.bulk_create(
            [TierProductSets(tier=t.value, customers_per_set=sets, computed_at=now) for t, sets in per_tier.items()],
            on_conflict=["tier"],
            update_fields=["customers_per_set", "computed_at"],
        )
    return {tier: rules.CoHolding.of(per_tier[tier]) for tier in ValueTier}


async def _gather(ids: list[int], now: datetime) -> dict[int, _Gathered]:
    """One query per kind of data, each over the whole batch."""
    today = now.date()
    customers = {
        row["id"]: _Gathered(CustomerStatus(row["status"]), row["aum"], row["debt"], _datetime(row["created_at"]))
        for row in await Customer.filter(id__in=ids).values("id", "status", "aum", "debt", "created_at")
    }
    closed_since = today - timedelta(days=rules.CLOSED_WITHIN_DAYS)
    holdings = (
        await ProductHolding.filter(customer_id__in=ids)
        .group_by("customer_id", "product", "status")
        .annotate(
            n=Count("id"),
            first_opened=Min("opened_at"),
            last_opened=Max("opened_at"),
            last_closed=Max("closed_at"),
            closed_recently=Count("id", _filter=Q(closed_at__gte=closed_since, closed_at__lte=today)),
        )
        .values(
            "customer_id", "product", "status", "n", "first_opened", "last_opened", "last_closed", "closed_recently"
        )
    )
    for row in holdings:
        g = customers[row["customer_id"]]
        if row["status"] == HoldingStatus.ACTIVE:
            g.active_products.add(ProductType(row["product"]))
            g.active_holdings += row["n"]
        first = _date(row["first_opened"])
        g.first_opened = min(g.first_opened, first) if g.first_opened else first
        g.last_opened = _latest(g.last_opened, _date(row["last_opened"]))
        g.last_closed = _latest(g.last_closed, _date(row["last_closed"]))
        g.closed_recently += row["closed_recently"]

    contact_since = now - timedelta(days=rules.INTERACTIONS_WITHIN_DAYS)
    for row in (
        await Interaction.filter(customer_id__in=ids)
        .group_by("customer_id")
        .annotate(recent=Count("id", _filter=Q(occurred_at__gte=contact_since)), last=Max("occurred_at"))
        .values("customer_id", "recent", "last")
    ):
        g = customers[row["customer_id"]]
        g.interactions_recent, g.last_contact = row["recent"], _datetime(row["last"])

    open_statuses = list(complaint_rules.OPEN)
    for row in (
        await Complaint.filter(customer_id__in=ids)
        .group_by("customer_id")
        .annotate(
            total=Count("id"),
            open=Count("id", _filter=Q(status__in=open_statuses)),
            breached=Count("id", _filter=Q(status__in=open_statuses, due_at__lt=now)),
            last=Max("received_at"),
        )
        .values("customer_id", "total", "open", "breached", "last")
    ):
        g = customers[row["customer_id"]]
        g.complaints, g.open_complaints, g.breached_complaints = row["total"], row["open"], row["breached"]
        g.last_complaint = _datetime(row["last"])

    detractors_since = now - timedelta(days=rules.DETRACTOR_WITHIN_DAYS)
    for row in (
        await SurveyResponse.filter(customer_id__in=ids)
        .group_by("customer_id")
        .annotate(
            csat=Avg("csat_score"),
            detractors=Count("id", _filter=Q(nps_category=NpsCategory.DETRACTOR, submitted_at__gte=detractors_since)),
            last=Max("submitted_at"),
        )
        .values("customer_id", "csat", "detractors", "last")
    ):
        g = customers[row["customer_id"]]
        g.avg_csat = round(float(row["csat"]), 2) if row["csat"] is not None else None
        g.recent_detractors, g.last_answer = row["detractors"], _datetime(row["last"])

    # The latest NPS answer per customer: rows in answer order, the last one wins.
    for customer_id, category in (
        await SurveyResponse.filter(customer_id__in=ids, nps_category__isnull=False)
        .order_by("customer_id", "submitted_at", "id")
        .values_list("customer_id", "nps_category")
    ):
        customers[customer_id].nps_category = NpsCategory(category)

    for customer_id, tag in (
        await CustomerTag.filter(customer_id__in=ids).order_by("id").values_list("customer_id", "tag")
    ):
        customers[customer_id].tags.append(tag)
    return customers


# ---------------------------------------------------------------- one customer's portrait


def portrait_of(
    customer_id: int,
    g: _Gathered,
    now: datetime,
    profiling: bool,
    statistics: dict[ValueTier, rules.CoHolding],
) -> tuple[Portrait, list[rules.Recommendation]]:
    today = now.date()
    began = min(g.created_at.date(), g.first_opened) if g.first_opened else g.created_at.date()
    since_contact = g.last_contact or datetime.combine(began, datetime.min.time(), UTC)
    last_activity = _latest(
        began,
        g.last_opened,
        g.last_closed,
        g.last_contact.date() if g.last_contact else None,
        g.last_complaint.date() if g.last_complaint else None,
        g.last_answer.date() if g.last_answer else None,
    )
    drivers = rules.churn_drivers(
        rules.ChurnFacts(
            status=g.status,
            days_without_contact=max((now - since_contact).days, 0),
            closed_recently=g.closed_recently,
            open_complaints=g.open_complaints,
            breached_complaints=g.breached_complaints,
            recent_detractor_answers=g.recent_detractors,
        )
    )
    risk = rules.churn_risk(drivers)
    tenure = rules.months_between(began, today)
    stage = rules.lifecycle_stage(
        rules.LifecycleFacts(
            status=g.status,
            tenure_months=tenure,
            months_without_activity=rules.months_between(last_activity, today),
            churn_risk=risk,
            opened_recently=g.last_opened is not None
            and g.last_opened >= today - timedelta(days=rules.GROWING_WITHIN_DAYS),
        )
    )
    tier = rules.value_tier(g.aum)
    held = frozenset(g.active_products)
    recommendations = rules.recommend(tier, held, statistics[tier]) if profiling and g.status in CURRENT else []
    portrait = Portrait(
        customer_id=customer_id,
        value_tier=tier,
        aum=g.aum,
        debt=g.debt,
        product_count=g.active_holdings,
        product_types=[p.value for p in ProductType if p in held],
        tenure_months=tenure,
        interactions_90d=g.interactions_recent,
        last_contact_at=g.last_contact,
        complaint_count=g.complaints,
        open_complaints=g.open_complaints,
        avg_csat=g.avg_csat,
        nps_category=g.nps_category,
        churn_risk=risk,
        churn_drivers=[d.text for d in drivers],
        lifecycle_stage=stage,
        next_best_products=[r.as_json() for r in recommendations],
        tags=g.tags + [t for t in rules.derived_tags(tier, stage, risk, g.open_complaints) if t not in g.tags],
        computed_at=now,
    )
    return portrait, recommendations


# ---------------------------------------------------------------- the computation


async def compute(customer_ids: Sequence[int]) -> int:
    """Computes and stores the portraits of these customers; returns how many were written.

    A fixed number of queries whatever the batch's size. In one transaction whose first statement clears the
    batch's stale marks: a change committed while it runs marks the customer stale again (mark_stale sets an
    empty mark), so it is recomputed later, and a failed computation rolls the clearing back."""
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    now = clock.now()
    async with atomic():
        await Customer.filter(id__in=ids, portrait_stale_since__isnull=False).update(portrait_stale_since=None)
        gathered = await _gather(ids, now)
        profiling = await consents.granted_for(ids, ConsentPurpose.PROFILING)
        statistics = await co_holding()
        portraits, recommendations = [], []
        for customer_id, g in gathered.items():
            if g.status == CustomerStatus.ERASED:
                continue
            portrait, recommended = portrait_of(customer_id, g, now, customer_id in profiling, statistics)
            portraits.append(portrait)
            recommendations.extend(
                ProductRecommendation(customer_id=customer_id, product=r.product, score=r.score) for r in recommended
            )
        await ProductRecommendation.filter(customer_id__in=ids).delete()
        await Portrait.filter(customer_id__in=ids).delete()
        await Portrait.bulk_create(portraits)
        await ProductRecommendation.bulk_create(recommendations)
        await _store_churn_risk(ids)
    return len(portraits)


async def _store_churn_risk(ids: list[int]) -> None:
    """customer.churn_risk from the portraits just written (0 without one), in one statement, so that the
    customer lists filter and sort on it."""
    placeholders = ", ".join(["?"] * len(ids))
    sql = (
        "UPDATE customer SET churn_risk = COALESCE("
        "(SELECT p.churn_risk FROM portrait p WHERE p.customer_id = customer.id), 0) "
        f"WHERE id IN ({placeholders})"
    )
    connection = get_connection("default")
    if connection.capabilities.dialect == "postgres":
        sql = sql.replace("?", "{}").format(*(f"${i}" for i in range(1, len(ids) + 1)))
    await connection.execute_query(sql, ids)


# ---------------------------------------------------------------- merges and erasures
# A portrait and its recommendations are derived data, never moved: a merge drops the duplicate's (the merge
# marks the survivor stale, and its recompute sees the merged records); an erasure drops the erased person's.


async def _moves_nothing(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    return 0


async def _drop_the_duplicates(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    await relation.model.filter(**relation.lookup(duplicate_id)).delete()
    return 0


async def _drop(relation: Relation, customer_ids: list[int]) -> None:
    await relation.model.filter(**relation.lookup(customer_ids)).delete()


for _derived in (Portrait, ProductRecommendation):
    customer_relations.register_merge_resolver(_derived, _moves_nothing, _drop_the_duplicates)
    customer_relations.register_scrubber(_derived, _drop)
