"""Customer portraits: the staleness hook every change behind a portrait calls, and the computation.

`compute(ids)` reads a batch of customers with a fixed number of set-based queries (GROUP BY customer over
the batch's ids, whatever its size), applies the pure rules of services/portrait_rules.py and replaces the
batch's portraits (their recommendation scores included) in one transaction. The formulas: docs/PORTRAITS.md.

It is the nightly full recompute's whole cost (docs/BENCHMARKS.md, "Full portrait recompute"), so it works with
plain rows: statements of its own (SQL that PostgreSQL and SQLite both run) read tuples and write them with
multi-row INSERTs; no model instance is built, and the recommendations of each (tier, product set) are worked
out once per set of co-holding statistics, not once per customer. A customer's recommendations are columns of
their portrait (one score per product), so a batch of 1,000 customers writes 1,000 rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.expressions import F, Value
from tortoise.functions import Coalesce

from core.db import atomic
from core.settings import SettingsError, section
from core.sql import Statement, execute, insert_rows, rows_of
from models.customers import ConsentPurpose, Customer, CustomerStatus, HoldingStatus, ProductType
from models.portraits import Portrait, TierProductSets, ValueTier, score_column
from models.surveys import NpsCategory
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


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def tier_case(column: str) -> str:
    # TIER_FLOORS are our own constants: nothing a caller sends reaches this SQL text.
    whens = " ".join(
        f"WHEN CAST({column} AS NUMERIC) >= {floor} THEN '{tier}'" for tier, floor in customer_rules.TIER_FLOORS[:-1]
    )
    return f"CASE {whens} ELSE '{customer_rules.TIER_FLOORS[-1][0]}' END"


def _quoted(values: Iterable[Any]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


def _product_bit_case(column: str) -> str:
    """A holding's product as its bit of rules.PRODUCT_BITS (our own constants, not a caller's)."""
    whens = " ".join(f"WHEN '{p.value}' THEN {bit}" for p, bit in rules.PRODUCT_BITS.items())
    return f"CASE {column} {whens} END"


# How many current customers of each tier hold each exact set of active products: one scan of the holdings,
# at most 4 x 1024 rows back. Shared by the whole batch (the statistics are about everyone, not the batch).
CO_HOLDING_SQL = f"""
SELECT tier, mask, COUNT(*) AS n FROM (
    SELECT {tier_case("c.aum")} AS tier, SUM(DISTINCT {_product_bit_case("h.product")}) AS mask
    FROM product_holding h JOIN customer c ON c.id = h.customer_id
    WHERE h.status = '{HoldingStatus.ACTIVE.value}' AND c.status IN ({_quoted(CURRENT)})
    GROUP BY h.customer_id, c.aum
) sets GROUP BY tier, mask
"""


# The JSON columns are written and read as their model field (Tortoise's JSONField) writes and reads them.
_JSON = Portrait._meta.fields_map["tags"]
_encode_json = _JSON.encoder


def _decode_json(value: Any) -> Any:
    return value if isinstance(value, dict | list) else _JSON.decoder(value)


# ---------------------------------------------------------------- the co-holding statistics


class Statistics:
    """The co-holding statistics of every tier (rules.CoHolding), and the recommendations they give each
    (tier, set of products held): a customer's recommendations depend on nothing else, so each pair is worked
    out once, however many customers share it (a few hundred pairs for a whole bank)."""

    def __init__(self, per_tier: dict[ValueTier, rules.CoHolding]) -> None:
        self.per_tier = per_tier
        self._recommended: dict[tuple[ValueTier, int], tuple[Any, ...]] = {}

    def recommended(self, tier: ValueTier, mask: int) -> tuple[Any, ...]:
        """The stored form of rules.recommend for a tier and a product set (a mask of rules.PRODUCT_BITS):
        the portrait's next_best_products as JSON text, then the score of each product (SCORE_COLUMNS)."""
        key = (tier, mask)
        found = self._recommended.get(key)
        if found is None:
            recommendations = rules.recommend(tier, _products_of(mask), self.per_tier[tier])
            scores = {r.product: r.score for r in recommendations}
            found = (_encode_json([r.as_json() for r in recommendations]), *(scores.get(p) for p in ProductType))
            self._recommended[key] = found
        return found


# A portrait that recommends nothing: no consent to profiling, or the relationship is over.
NOTHING_RECOMMENDED = (_encode_json([]), *(None for _ in ProductType))


@lru_cache(maxsize=1024)
def _products_of(mask: int) -> frozenset[ProductType]:
    return frozenset(p for p, bit in rules.PRODUCT_BITS.items() if mask & bit)


@lru_cache(maxsize=4096)
def _json_list(items: tuple[str, ...]) -> str:
    """A list of texts as JSON: the churn drivers and tags of a batch come from a few hundred combinations."""
    return _encode_json(list(items))


@lru_cache(maxsize=1024)
def _product_types_json(mask: int) -> str:
    """portrait.product_types for a product set: the types in the order of the ProductType enum."""
    return _encode_json([p.value for p, bit in rules.PRODUCT_BITS.items() if mask & bit])


# The stored statistics last read, with what was worked out from them: every batch of a worker reads the four
# rows (one query) and reuses this while they have not changed.
_last_read: tuple[tuple[tuple[Any, ...], ...], Statistics] | None = None


async def co_holding() -> Statistics:
    """The co-holding statistics of every tier: the stored ones (one query), or, when they are missing or older
    than STATISTICS_MAX_AGE, new ones from every holding (two more: the scan and an upsert)."""
    global _last_read
    now = clock.now()
    connection = get_connection("default")
    _, stored = await connection.execute_query("SELECT tier, customers_per_set, computed_at FROM tier_product_sets")
    stored_key = tuple(sorted((row[0], str(row[1]), str(row[2])) for row in stored))
    if len(stored) == len(ValueTier) and min(_datetime(row[2]) for row in stored) > now - rules.STATISTICS_MAX_AGE:
        if _last_read is not None and _last_read[0] == stored_key:
            return _last_read[1]
        per_tier = {ValueTier(row[0]): {int(mask): n for mask, n in _decode_json(row[1]).items()} for row in stored}
        statistics = Statistics({tier: rules.CoHolding.of(per_tier[tier]) for tier in ValueTier})
        _last_read = (stored_key, statistics)
        return statistics
    _, rows = await connection.execute_query(CO_HOLDING_SQL)
    per_tier = {tier: {} for tier in ValueTier}
    for row in rows:
        per_tier[ValueTier(row["tier"])][int(row["mask"])] = int(row["n"])
    # An upsert: computations that renew them at the same moment do not collide.
    await TierProductSets.bulk_create(
        [
            # JSON object keys are strings: the product-set masks are written as such and read back with int()
            TierProductSets(tier=t.value, customers_per_set={str(mask): n for mask, n in sets.items()}, computed_at=now)
            for t, sets in per_tier.items()
        ],
        on_conflict=["tier"],
        update_fields=["customers_per_set", "computed_at"],
    )
    return Statistics({tier: rules.CoHolding.of(per_tier[tier]) for tier in ValueTier})


# ---------------------------------------------------------------- reading a batch


@dataclass(slots=True)
class _Gathered:
    """Everything read about one customer."""

    status: CustomerStatus
    aum: Decimal
    debt: Decimal
    created_at: datetime
    products: int = 0  # the ACTIVE products, a mask of rules.PRODUCT_BITS
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


async def _gather(connection: BaseDBAsyncClient, ids: list[int], now: datetime) -> dict[int, _Gathered]:
    """One query per kind of data, each over the whole batch (GROUP BY customer_id), read as plain rows."""
    today = now.date()

    s = Statement(connection)
    sql = f"SELECT id, status, aum, debt, created_at FROM customer WHERE {s.covering('id', ids)}"
    batch = set(ids)
    customers = {
        row[0]: _Gathered(CustomerStatus(row[1]), _decimal(row[2]), _decimal(row[3]), _datetime(row[4]))
        for row in await rows_of(connection, sql, s)
        if row[0] in batch
    }

    s = Statement(connection)
    active = f"status = '{HoldingStatus.ACTIVE.value}'"
    sql = (
        f"SELECT customer_id, SUM(DISTINCT CASE WHEN {active} THEN {_product_bit_case('product')} END), "
        f"SUM(CASE WHEN {active} THEN 1 ELSE 0 END), MIN(opened_at), MAX(opened_at), MAX(closed_at), "
        f"SUM(CASE WHEN closed_at >= {s.param(today - timedelta(days=rules.CLOSED_WITHIN_DAYS))} "
        f"AND closed_at <= {s.param(today)} THEN 1 ELSE 0 END) "
        f"FROM product_holding WHERE {s.covering('customer_id', ids)} GROUP BY customer_id"
    )
    for customer_id, mask, held, first, last, closed, closed_recently in await rows_of(connection, sql, s):
        if (g := customers.get(customer_id)) is not None:
            g.products, g.active_holdings, g.closed_recently = int(mask or 0), int(held), int(closed_recently)
            g.first_opened, g.last_opened, g.last_closed = _date(first), _date(last), _date(closed)

    s = Statement(connection)
    since = s.param(now - timedelta(days=rules.INTERACTIONS_WITHIN_DAYS))
    # Only the columns of the (customer_id, occurred_at) index: PostgreSQL can answer from the index alone.
    sql = (
        f"SELECT customer_id, SUM(CASE WHEN occurred_at >= {since} THEN 1 ELSE 0 END), MAX(occurred_at) "
        f"FROM interaction WHERE {s.covering('customer_id', ids)} GROUP BY customer_id"
    )
    for customer_id, recent, last in await rows_of(connection, sql, s):
        if (g := customers.get(customer_id)) is not None:
            g.interactions_recent, g.last_contact = int(recent), _datetime(last)

    s = Statement(connection)
    open_ = f"status IN ({_quoted(complaint_rules.OPEN)})"
    sql = (
        f"SELECT customer_id, COUNT(*), SUM(CASE WHEN {open_} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {open_} AND due_at < {s.param(now)} THEN 1 ELSE 0 END), MAX(received_at) "
        f"FROM complaint WHERE {s.covering('customer_id', ids)} GROUP BY customer_id"
    )
    for customer_id, total, open_count, breached, last in await rows_of(connection, sql, s):
        if (g := customers.get(customer_id)) is not None:
            g.complaints, g.open_complaints, g.breached_complaints = int(total), int(open_count), int(breached)
            g.last_complaint = _datetime(last)

    # Survey answers are few per customer: read as they are, in answer order, and summed up here (the mean CSAT,
    # the recent detractor answers, the last answer, the category of the latest NPS answer).
    s = Statement(connection)
    sql = (
        "SELECT customer_id, csat_score, nps_category, submitted_at FROM survey_response "
        f"WHERE {s.covering('customer_id', ids)} ORDER BY customer_id, submitted_at, id"
    )
    detractors_since = now - timedelta(days=rules.DETRACTOR_WITHIN_DAYS)
    scores: dict[int, list[float]] = {}
    for customer_id, csat, category, submitted in await rows_of(connection, sql, s):
        if (g := customers.get(customer_id)) is None:
            continue
        submitted = _datetime(submitted)
        g.last_answer = submitted  # the rows come in answer order
        if csat is not None:
            scores.setdefault(customer_id, []).append(float(csat))
        if category is not None:
            g.nps_category = NpsCategory(category)
            if g.nps_category == NpsCategory.DETRACTOR and submitted >= detractors_since:
                g.recent_detractors += 1
    for customer_id, given in scores.items():
        customers[customer_id].avg_csat = round(sum(given) / len(given), 2)

    s = Statement(connection)
    sql = f"SELECT customer_id, tag FROM customer_tag WHERE {s.covering('customer_id', ids)} ORDER BY id"
    for customer_id, tag in await rows_of(connection, sql, s):
        if (g := customers.get(customer_id)) is not None:
            g.tags.append(tag)
    return customers


# ---------------------------------------------------------------- one customer's portrait

# The columns of the stored rows, in the order of the tuples below.
PORTRAIT_COLUMNS = (
    "customer_id",
    "value_tier",
    "aum",
    "debt",
    "product_count",
    "product_types",
    "tenure_months",
    "interactions_90d",
    "last_contact_at",
    "complaint_count",
    "open_complaints",
    "avg_csat",
    "nps_category",
    "churn_risk",
    "churn_drivers",
    "lifecycle_stage",
    "tags",
    "computed_at",
    "next_best_products",
    *(score_column(p) for p in ProductType),
)


def portrait_of(
    customer_id: int, g: _Gathered, now: datetime, profiling: bool, statistics: Statistics
) -> tuple[Any, ...]:
    """The customer's portrait row (PORTRAIT_COLUMNS), by the rules."""
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
    recommended = statistics.recommended(tier, g.products) if profiling and g.status in CURRENT else NOTHING_RECOMMENDED
    tags = (*g.tags, *(t for t in rules.derived_tags(tier, stage, risk, g.open_complaints) if t not in g.tags))
    row = (
        customer_id,
        tier.value,
        g.aum,
        g.debt,
        g.active_holdings,
        _product_types_json(g.products),
        tenure,
        g.interactions_recent,
        g.last_contact,
        g.complaints,
        g.open_complaints,
        g.avg_csat,
        g.nps_category.value if g.nps_category else None,
        risk,
        _json_list(tuple(d.text for d in drivers)),
        stage.value,
        _json_list(tags),
        now,
    )
    return row + recommended


# ---------------------------------------------------------------- the computation


async def compute(customer_ids: Sequence[int]) -> int:
    """Computes and stores the portraits of these customers; returns how many were written.

    A fixed number of statements whatever the batch's size (12, and 2 more when the co-holding statistics are
    renewed): the stale marks, 6 reads, the consents, the statistics, the DELETE and 2 INSERTs. In one
    transaction whose first statement clears the batch's stale marks: a change committed while it runs marks
    the customer stale again (mark_stale sets an empty mark), so it is recomputed later, and a failed
    computation rolls the clearing back."""
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return 0
    now = clock.now()
    async with atomic():
        connection = get_connection("default")
        s = Statement(connection)
        await execute(
            connection,
            f"UPDATE customer SET portrait_stale_since = NULL "
            f"WHERE {s.exactly('id', ids)} AND portrait_stale_since IS NOT NULL",
            s,
        )
        gathered = await _gather(connection, ids, now)
        profiling = await consents.granted_for(ids, ConsentPurpose.PROFILING)
        statistics = await co_holding()
        portraits = [
            portrait_of(customer_id, g, now, customer_id in profiling, statistics)
            for customer_id, g in gathered.items()
            if g.status != CustomerStatus.ERASED
        ]
        s = Statement(connection)
        await execute(connection, f"DELETE FROM portrait WHERE {s.exactly('customer_id', ids)}", s)
        await insert_rows(connection, "portrait", PORTRAIT_COLUMNS, portraits)
    return len(portraits)


# ---------------------------------------------------------------- merges and erasures
# A portrait is derived data, never moved: a merge drops the duplicate's (the merge
# marks the survivor stale, and its recompute sees the merged records); an erasure drops the erased person's.


async def _moves_nothing(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    return 0


async def _drop_the_duplicates(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    await relation.model.filter(**relation.lookup(duplicate_id)).delete()
    return 0


async def _drop(relation: Relation, customer_ids: list[int]) -> None:
    await relation.model.filter(**relation.lookup(customer_ids)).delete()


customer_relations.register_merge_resolver(Portrait, _moves_nothing, _drop_the_duplicates)
customer_relations.register_scrubber(Portrait, _drop)
