"""Portraits computed by services.portraits.compute, read through HTTP -> GraphQL, against hand-computed values."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core import sql
from models.complaints import ComplaintStatus
from models.customers import Customer, CustomerStatus, CustomerTag, ProductType
from models.portraits import Portrait, score_column
from models.staff import Role
from services import clock, portraits
from tests.conftest import StatementCounter
from tests.portraits import helpers as h
from tests.portraits.helpers import NOW, TODAY, days_ago

P = ProductType
PORTRAIT = """query($id: ID!) { customer(id: $id) { id portrait {
  customer { id } valueTier aum debt productCount productTypes tenureMonths interactions90d lastContactAt
  complaintCount openComplaints avgCsat npsCategory churnRisk churnDrivers lifecycleStage
  nextBestProducts { product score reason } tags computedAt stale } } }"""


def gid(customer: Customer) -> str:
    from schema.base import to_global_id

    return str(to_global_id("Customer", customer.id))


async def portrait_of(gql, token: str, customer: Customer) -> dict | None:
    return (await gql(PORTRAIT, {"id": gid(customer)}, token=token))["customer"]["portrait"]


async def test_every_field_of_a_constructed_customer(gql, admin):
    _, token = admin
    rich = await h.customer()
    await h.holding(rich, P.TIME_DEPOSIT, "60000.00", opened=date(2023, 6, 1))
    await h.holding(rich, P.CREDIT_CARD, "-2000.00", opened=date(2024, 1, 10))
    await h.holding(rich, P.FUND, "15000.00", opened=date(2026, 12, 1))
    await h.holding(rich, P.DEBIT_CARD, "0.00", opened=date(2023, 7, 1), closed=date(2027, 2, 1))
    await h.interaction(rich, days_ago(100))
    await h.complaint(rich, ComplaintStatus.CLOSED, received=days_ago(200), due=days_ago(185))
    await h.complaint(rich, ComplaintStatus.IN_PROGRESS, received=days_ago(5), due=NOW + timedelta(days=10))
    await h.answer(rich, days_ago(300), nps=9, csat=4.0)
    await h.answer(rich, days_ago(20), nps=5, csat=3.0)
    await CustomerTag.create(customer=rich, tag="代发工资")
    other = await h.customer()  # the tier's other customer, for the co-holding statistics
    await h.holding(other, P.TIME_DEPOSIT, "100000.00")
    await h.holding(other, P.INSURANCE, "5000.00")

    assert await portraits.compute([rich.id, other.id]) == 2

    assert await portrait_of(gql, token, rich) == {
        "customer": {"id": gid(rich)},
        "valueTier": "AFFLUENT",  # 60,000 + 15,000 of assets
        "aum": "75000.00",
        "debt": "2000.00",
        "productCount": 3,
        "productTypes": ["TIME_DEPOSIT", "CREDIT_CARD", "FUND"],
        "tenureMonths": 45,  # since the first account, 2023-06-01, to 2027-03-15
        "interactions90d": 1,  # 10 days ago; the one 100 days ago is older
        "lastContactAt": "2027-03-05T12:00:00+00:00",
        "complaintCount": 2,
        "openComplaints": 1,
        "avgCsat": 3.5,
        "npsCategory": "DETRACTOR",  # the latest answer, 5
        "churnRisk": 0.55,  # closed product 15 + open complaint 20 + detractor 20
        "churnDrivers": ["近 90 天销户 1 个产品", "1 件投诉未结", "近 365 天 1 次给出 NPS 贬损评分（0–6 分）"],
        "lifecycleStage": "GROWING",  # the fund, opened 104 days ago
        "nextBestProducts": [
            # Of the 2 affluent time-deposit holders, 1 (the other customer) holds insurance.
            {"product": "INSURANCE", "score": 0.5, "reason": "在持有定期存款的富裕客户中，50%（1/2）也持有保险"}
        ],
        "tags": ["代发工资", "富裕客户", "成长期", "有未结投诉"],
        "computedAt": "2027-03-15T12:00:00+00:00",
        "stale": False,
    }
    assert await h.scores(other.id) == [(P.CREDIT_CARD, 0.5), (P.FUND, 0.5)]


@pytest.mark.parametrize(
    ("balance", "tier"),
    [("49999.99", "MASS"), ("50000.00", "AFFLUENT"), ("500000.00", "WEALTH"), ("6000000.00", "PRIVATE_BANKING")],
)
async def test_value_tier_at_the_edges(gql, admin, balance, tier):
    _, token = admin
    customer = await h.customer()
    await h.holding(customer, P.TIME_DEPOSIT, balance)
    await portraits.compute([customer.id])
    portrait = await portrait_of(gql, token, customer)
    assert (portrait["valueTier"], portrait["aum"]) == (tier, balance)


async def _driver_case(case: str) -> Customer:
    if case == "no contact":
        return await h.customer(contacted_days_ago=180)
    if case == "never contacted":
        return await h.customer(contacted_days_ago=None, created_at=days_ago(200))
    customer = await h.customer()
    if case == "closed products":
        for _ in range(2):
            await h.holding(customer, P.FUND, "0", opened=date(2025, 1, 1), closed=TODAY - timedelta(days=90))
        await h.holding(customer, P.FUND, "0", opened=date(2025, 1, 1), closed=TODAY - timedelta(days=91))
    elif case == "open complaint":
        await h.complaint(customer, ComplaintStatus.ACKNOWLEDGED, received=days_ago(3), due=NOW + timedelta(days=12))
        await h.complaint(customer, ComplaintStatus.RESOLVED, received=days_ago(40), due=days_ago(25))
    elif case == "breached complaint":
        await h.complaint(customer, ComplaintStatus.ESCALATED, received=days_ago(20), due=NOW - timedelta(hours=1))
    elif case == "detractor":
        await h.answer(customer, days_ago(365), nps=6)
        await h.answer(customer, days_ago(366), nps=0)  # too old to count
    elif case == "dormant":
        await Customer.filter(id=customer.id).update(status=CustomerStatus.DORMANT)
    return customer


@pytest.mark.parametrize(
    ("case", "risk", "drivers"),
    [
        ("no contact", 0.25, ["180 天未联系"]),
        ("never contacted", 0.25, ["200 天未联系"]),  # counted from the start of the relationship
        ("closed products", 0.3, ["近 90 天销户 2 个产品"]),
        ("open complaint", 0.2, ["1 件投诉未结"]),
        ("breached complaint", 0.3, ["1 件投诉未结，其中 1 件已超过处理时限"]),
        ("detractor", 0.2, ["近 365 天 1 次给出 NPS 贬损评分（0–6 分）"]),
        ("dormant", 0.3, ["账户状态为休眠"]),
    ],
)
async def test_each_churn_driver_alone(gql, admin, case, risk, drivers):
    _, token = admin
    customer = await _driver_case(case)
    await portraits.compute([customer.id])
    portrait = await portrait_of(gql, token, customer)
    assert (portrait["churnRisk"], portrait["churnDrivers"]) == (risk, drivers)


async def test_every_churn_driver_together(gql, admin):
    _, token = admin
    customer = await h.customer(contacted_days_ago=250, status=CustomerStatus.DORMANT)
    await h.holding(customer, P.FUND, "0", opened=date(2025, 1, 1), closed=TODAY - timedelta(days=1))
    await h.complaint(customer, ComplaintStatus.RECEIVED, received=days_ago(1), due=NOW + timedelta(days=14))
    await h.answer(customer, days_ago(30), nps=2)
    await portraits.compute([customer.id])
    portrait = await portrait_of(gql, token, customer)
    assert portrait["churnDrivers"] == [
        "250 天未联系",
        "近 90 天销户 1 个产品",
        "1 件投诉未结",
        "近 365 天 1 次给出 NPS 贬损评分（0–6 分）",
        "账户状态为休眠",
    ]
    assert portrait["churnRisk"] == 1.0  # 25 + 15 + 20 + 20 + 30 = 110 points, capped
    assert portrait["lifecycleStage"] == "DORMANT"


async def _stage_case(stage: str) -> Customer:
    if stage == "NEW":  # five months and a few days
        return await h.customer(created_at=days_ago(160))
    if stage == "DORMANT":  # nothing for a year: the last contact 366 days ago, the account older
        customer = await h.customer(contacted_days_ago=366)
        await h.holding(customer, P.CURRENT_DEPOSIT, "100.00", opened=date(2024, 1, 1))
        return customer
    customer = await h.customer()
    await h.holding(customer, P.CURRENT_DEPOSIT, "100.00", opened=date(2024, 1, 1))
    if stage == "DECLINING":  # 30 + 30 = 60 points
        await h.holding(customer, P.FUND, "0", opened=date(2024, 1, 1), closed=TODAY - timedelta(days=10))
        await h.holding(customer, P.FUND, "0", opened=date(2024, 1, 1), closed=TODAY - timedelta(days=20))
        await h.complaint(customer, ComplaintStatus.IN_PROGRESS, received=days_ago(30), due=days_ago(15))
    elif stage == "GROWING":
        await h.holding(customer, P.FUND, "100.00", opened=TODAY - timedelta(days=180))
    return customer


@pytest.mark.parametrize("stage", ["NEW", "DORMANT", "DECLINING", "GROWING", "MATURE"])
async def test_each_lifecycle_stage(gql, admin, stage):
    _, token = admin
    customer = await _stage_case(stage)
    await portraits.compute([customer.id])
    portrait = await portrait_of(gql, token, customer)
    assert portrait["lifecycleStage"] == stage
    if stage == "DECLINING":
        assert portrait["churnRisk"] == 0.6


async def test_tenure_counts_from_the_customer_record_without_older_accounts(gql, admin):
    _, token = admin
    customer = await h.customer(created_at=days_ago(200))  # 2026-08-27
    await portraits.compute([customer.id])
    portrait = await portrait_of(gql, token, customer)
    assert (portrait["tenureMonths"], portrait["lifecycleStage"]) == (6, "MATURE")


@pytest.mark.parametrize(("profiling", "recommended"), [(True, True), (False, False), (None, False)])
async def test_profiling_consent_governs_next_best_products(gql, admin, profiling, recommended):
    """PIPL art. 24: a customer who revoked PROFILING (or never granted it: the default is not granted) gets no
    profile-based products, and is nobody's prospect; the rest of the portrait is still computed."""
    _, token = admin
    peer = await h.customer()
    await h.holding(peer, P.TIME_DEPOSIT, "1000.00")
    await h.holding(peer, P.FUND, "1000.00")
    customer = await h.customer(profiling=profiling)
    await h.holding(customer, P.TIME_DEPOSIT, "1000.00")
    await portraits.compute([customer.id])
    portrait = await portrait_of(gql, token, customer)
    expected = [{"product": "FUND", "score": 0.5, "reason": "在持有定期存款的大众客户中，50%（1/2）也持有基金"}]
    assert portrait["nextBestProducts"] == (expected if recommended else [])
    assert bool(await h.scores(customer.id)) is recommended
    assert portrait["valueTier"] == "MASS" and portrait["productTypes"] == ["TIME_DEPOSIT"]


async def test_stale_until_computed_and_again_after_a_change(gql, admin):
    _, token = admin
    customer = await h.customer()
    assert await portrait_of(gql, token, customer) is None  # never computed
    await portraits.mark_stale([customer.id])
    await portraits.compute([customer.id])
    assert (await portrait_of(gql, token, customer))["stale"] is False
    await portraits.mark_stale([customer.id])
    assert (await portrait_of(gql, token, customer))["stale"] is True
    await portraits.compute([customer.id])
    assert (await portrait_of(gql, token, customer))["stale"] is False


async def test_a_failed_computation_leaves_the_customer_stale(app, monkeypatch):
    customer = await h.customer()
    await portraits.mark_stale([customer.id])

    async def broken() -> dict:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(portraits, "co_holding", broken)
    with pytest.raises(RuntimeError):
        await portraits.compute([customer.id])
    assert (await Customer.get(id=customer.id)).portrait_stale_since is not None
    assert not await Portrait.exists(customer_id=customer.id)


async def test_recomputing_replaces_the_portrait_and_erased_customers_have_none(gql, admin):
    _, token = admin
    customer = await h.customer()
    await h.holding(customer, P.TIME_DEPOSIT, "80000.00")
    await portraits.compute([customer.id])
    assert (await portrait_of(gql, token, customer))["valueTier"] == "AFFLUENT"
    await h.holding(customer, P.FUND, "500000.00")
    assert await portraits.compute([customer.id, customer.id]) == 1
    assert (await portrait_of(gql, token, customer))["valueTier"] == "WEALTH"
    assert await Portrait.filter(customer_id=customer.id).count() == 1

    await Customer.filter(id=customer.id).update(status=CustomerStatus.ERASED)
    assert await portraits.compute([customer.id]) == 0
    assert not await Portrait.exists(customer_id=customer.id)
    assert await portraits.compute([]) == 0


async def test_the_number_of_queries_does_not_grow_with_the_batch(app):
    customers = []
    for i in range(50):
        customer = await h.customer(contacted_days_ago=5 + i)
        await h.holding(customer, P.TIME_DEPOSIT if i % 2 else P.FUND, "1000.00")
        await h.complaint(customer, ComplaintStatus.RECEIVED, received=days_ago(1), due=NOW + timedelta(days=14))
        await h.answer(customer, days_ago(3), nps=i % 11, csat=3.0)
        await CustomerTag.create(customer=customer, tag="测试")
        customers.append(customer)
    with StatementCounter() as first:  # the co-holding statistics are made once, then shared
        assert await portraits.compute([customers[1].id]) == 1
    with StatementCounter() as one:
        assert await portraits.compute([customers[0].id]) == 1
    with StatementCounter() as fifty:
        assert await portraits.compute([c.id for c in customers]) == 50
    assert one.count == fifty.count, (one.statements, fifty.statements)
    assert first.count == one.count + 2, first.statements
    assert fifty.count <= 13


async def test_the_co_holding_statistics_are_shared_for_ten_minutes(gql, admin):
    _, token = admin
    peers = []
    for _ in range(2):
        peer = await h.customer()
        await h.holding(peer, P.TIME_DEPOSIT, "1000.00")
        await h.holding(peer, P.FUND, "1000.00")
        peers.append(peer)
    customer = await h.customer()
    await h.holding(customer, P.TIME_DEPOSIT, "1000.00")
    await portraits.compute([peers[0].id])
    await h.holding(peers[1], P.INSURANCE, "1000.00")

    async def insurance_score() -> float | None:
        await portraits.compute([customer.id])
        products = (await portrait_of(gql, token, customer))["nextBestProducts"]
        return next((r["score"] for r in products if r["product"] == "INSURANCE"), None)

    clock.travel(timedelta(minutes=10) - timedelta(seconds=1))
    assert await insurance_score() is None  # the statistics of ten minutes ago: nobody held insurance
    clock.travel(timedelta(seconds=1))
    assert await insurance_score() == round(1 / 3, 4)  # renewed: 1 of the 3 time-deposit holders


async def test_service_agents_and_complaint_handlers_do_not_read_portraits(gql, staff_factory):
    customer = await h.customer()
    await portraits.compute([customer.id])
    for role in (Role.SERVICE_AGENT, Role.COMPLAINT_HANDLER):
        _, token = await staff_factory(role)
        errors = await gql.errors(PORTRAIT, {"id": gid(customer)}, token=token)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
        assert "RELATIONSHIP_MANAGER" in errors[0]["message"]
    for role in (Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.ANALYST, Role.AUDITOR):
        _, token = await staff_factory(role)
        assert (await portrait_of(gql, token, customer))["valueTier"] == "MASS"


async def _stored(customer_ids: list[int]) -> dict[int, dict]:
    """Each customer's stored portrait: its fields but the row id."""
    rows = await Portrait.filter(customer_id__in=customer_ids).values()
    return {row["customer_id"]: {k: v for k, v in row.items() if k != "id"} for row in rows}


async def test_a_large_batch_stores_what_single_computations_store(app):
    # More portraits than one multi-row INSERT takes (ROWS_PER_INSERT), so that both INSERTs write rows.
    mixes = [(P.TIME_DEPOSIT,), (P.TIME_DEPOSIT, P.FUND), (P.FUND, P.INSURANCE), (P.CREDIT_CARD,), ()]
    customers = []
    for i in range(130):
        customer = await h.customer(contacted_days_ago=5 + i, profiling=i % 7 != 0)
        for product in mixes[i % len(mixes)]:
            await h.holding(customer, product, f"{1000 + 900 * i}.00")
        customers.append(customer)
    ids = [c.id for c in customers]
    assert len(ids) > sql.ROWS_PER_INSERT

    assert await portraits.compute(ids) == len(ids)
    together = await _stored(ids)
    assert len(together) == len(ids)
    for portrait in together.values():  # the score columns and the portrait's list say the same
        scores = {p.value: portrait[score_column(p)] for p in P if portrait[score_column(p)] is not None}
        assert scores == {r["product"]: r["score"] for r in portrait["next_best_products"]}
    assert sum(bool(portrait["next_best_products"]) for portrait in together.values()) > 50
    for customer_id in (ids[0], ids[1], ids[2], ids[99], ids[100], ids[-1]):
        assert await portraits.compute([customer_id]) == 1
        assert (await _stored([customer_id]))[customer_id] == together[customer_id]


async def test_customers_between_the_ids_of_a_batch_are_left_alone(app):
    # A batch whose ids fill most of their range is read by the range, one whose ids are scattered by the list,
    # and one whose ids fill their range is written by it: only the batch's customers are computed and written.
    made = [await h.customer() for _ in range(9)]
    ids = [c.id for c in made]
    await portraits.mark_stale(ids)
    dense, contiguous, scattered = [ids[0], ids[2], ids[3], ids[4]], [ids[6], ids[7]], [ids[5], ids[8]]
    assert await portraits.compute(contiguous) == 2
    assert not await Portrait.filter(customer_id__in=[ids[5], ids[8]]).exists()
    for batch in (dense, scattered):
        assert await portraits.compute(batch) == len(batch)
    computed = set(await Portrait.filter(customer_id__in=ids).values_list("customer_id", flat=True))
    assert computed == set(dense + contiguous + scattered)
    stale = set(await Customer.filter(id__in=ids, portrait_stale_since__isnull=False).values_list("id", flat=True))
    assert stale == set(ids) - computed
