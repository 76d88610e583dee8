from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from models.customers import Customer
from models.staff import Role
from schema.base import int_pk, to_global_id
from tests.conftest import QueryCounter
from tests.customers.helpers import HOLDING, create, resident_id
from tests.portraits.helpers import stored_churn_risk

LIST = """query($filter: CustomerFilter, $order: CustomerOrder, $first: Int, $after: String) {
  customers(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { customerNo name aum } } } }"""


async def _holding(gql, token, customer_id, account, product, balance, closed=None):
    result = (
        await gql(
            HOLDING,
            {
                "input": {
                    "customerId": customer_id,
                    "accountNo": account,
                    "product": product,
                    "balance": balance,
                    "openedAt": "2020-01-01",
                    "closedAt": closed,
                }
            },
            token=token,
        )
    )["upsertHolding"]
    assert result["errors"] == [], result["errors"]
    return result["holding"]


@pytest.fixture
async def book(gql, admin, staff_factory):
    """Five customers that differ in every filterable way."""
    _, token = admin
    rm, _ = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="上海浦东支行")
    a = await create(gql, token, name="张伟", customerNo="C0000000001", tags=["VIP"], riskLevel="C1")
    b = await create(
        gql,
        token,
        name="李娜",
        customerNo="C0000000002",
        idNumber=resident_id(sequence="124"),
        phone="13900000002",
        email="li.na@example.cn",
        branch="上海浦东支行",
        riskLevel="C4",
        relationshipManagerId=to_global_id("Staff", rm.id),
        tags=["VIP", "老客户"],
    )
    c = await create(
        gql,
        token,
        kind="CORPORATE",
        name="杭州西湖智能科技有限公司",
        customerNo="C0000000003",
        idType="UNIFIED_SOCIAL_CREDIT_CODE",
        idNumber="91350100M000100Y43",
        phone=None,
        email=None,
        riskLevel="C2",
    )
    d = await create(
        gql,
        token,
        name="王芳",
        customerNo="C0000000004",
        idNumber=resident_id(sequence="146"),
        phone="13700000004",
        email=None,
        riskLevel=None,
    )
    e = await create(
        gql,
        token,
        name="赵强",
        customerNo="C0000000005",
        idNumber=resident_id(sequence="155"),
        phone="13600000005",
        email=None,
    )
    await _holding(gql, token, a["id"], "6222000000000001", "TIME_DEPOSIT", "600000.00")  # WEALTH
    await _holding(gql, token, a["id"], "6222000000000002", "MORTGAGE", "900000.00")  # debt, not AUM
    await _holding(gql, token, b["id"], "6222000000000003", "WEALTH_MANAGEMENT", "7000000")  # PRIVATE_BANKING
    await _holding(gql, token, c["id"], "6222000000000004", "CURRENT_DEPOSIT", "60000")  # AFFLUENT
    await _holding(gql, token, d["id"], "6222000000000005", "FUND", "100000", closed="2024-01-01")  # closed: MASS
    await Customer.filter(customer_no="C0000000005").update(status="DORMANT")
    await stored_churn_risk(int_pk(e["id"], "Customer"), 0.8)
    return {"token": token, "rm": rm}


async def _numbers(gql, token, filter=None, order=None) -> list[str]:
    data = (await gql(LIST, {"filter": filter, "order": order, "first": 100}, token=token))["customers"]
    return [e["node"]["customerNo"][-1] for e in data["edges"]]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"search": "李"}, "2"),
        ({"search": "C000000000"}, "12345"),
        ({"search": "139 0000"}, "2"),
        ({"search": "li.na@"}, "2"),
        ({"status": ["DORMANT"]}, "5"),
        ({"status": ["ACTIVE", "DORMANT"]}, "12345"),
        ({"kind": "CORPORATE"}, "3"),
        ({"branch": "上海浦东支行"}, "2"),
        ({"tags": ["VIP"]}, "12"),
        ({"tags": ["VIP", "老客户"]}, "2"),
        ({"riskLevel": ["C1", "C2"]}, "13"),
        ({"valueTier": ["PRIVATE_BANKING"]}, "2"),
        ({"valueTier": ["WEALTH", "AFFLUENT"]}, "13"),
        ({"valueTier": ["MASS"]}, "45"),
        ({"minAum": "60000"}, "123"),
        ({"maxAum": "60000"}, "345"),
        ({"minAum": "50000", "maxAum": "700000"}, "13"),
        ({"minChurnRisk": 0.5}, "5"),
        ({"holdsProduct": "TIME_DEPOSIT"}, "1"),
        ({"holdsProduct": "FUND"}, ""),  # closed holdings do not count
        ({"lacksProduct": "TIME_DEPOSIT"}, "2345"),
    ],
)
async def test_each_filter(gql, book, filter, expected):
    assert "".join(sorted(await _numbers(gql, book["token"], filter))) == expected


async def test_relationship_manager_and_created_filters(gql, book):
    token = book["token"]
    assert await _numbers(gql, token, {"relationshipManagerId": to_global_id("Staff", book["rm"].id)}) == ["2"]
    now = datetime.now(UTC)
    assert len(await _numbers(gql, token, {"createdAfter": (now - timedelta(minutes=5)).isoformat()})) == 5
    assert await _numbers(gql, token, {"createdBefore": (now - timedelta(minutes=5)).isoformat()}) == []


@pytest.mark.parametrize(
    ("field", "direction", "expected"),
    [
        ("CUSTOMER_NO", "ASC", "12345"),
        ("CUSTOMER_NO", "DESC", "54321"),
        ("AUM", "DESC", "21354"),  # ties (4 and 5 hold nothing) fall back to the id, same direction
        ("CHURN_RISK", "DESC", "54321"),
        ("CREATED_AT", "ASC", "12345"),
        ("CREATED_AT", "DESC", "54321"),
    ],
)
async def test_each_order(gql, book, field, direction, expected):
    assert "".join(await _numbers(gql, book["token"], None, {"field": field, "direction": direction})) == expected


async def test_order_by_name_completeness_and_update_time(gql, book):
    token = book["token"]
    names = await _numbers(gql, token, None, {"field": "NAME", "direction": "ASC"})
    assert sorted(names) == sorted("12345") and len(names) == 5
    complete = await gql(LIST, {"order": {"field": "COMPLETENESS", "direction": "ASC"}, "first": 5}, token=token)
    numbers = [e["node"]["customerNo"] for e in complete["customers"]["edges"]]
    values = [(await Customer.get(customer_no=n)).completeness for n in numbers]
    assert values == sorted(values)
    updated = await _numbers(gql, token, None, {"field": "UPDATED_AT", "direction": "DESC"})
    assert len(updated) == 5


async def test_paging_through_a_sorted_list(gql, book):
    token = book["token"]
    order = {"field": "AUM", "direction": "DESC"}
    seen, after = [], None
    while True:
        page = (await gql(LIST, {"order": order, "first": 2, "after": after}, token=token))["customers"]
        seen += [e["node"]["customerNo"][-1] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert "".join(seen) == "21354"


async def test_holding_upsert_keeps_aum_and_tier_current(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    holding = await _holding(gql, token, customer["id"], "6222 0000 0000 9999", "FUND", "49999.99")
    assert holding["customer"]["aum"] == "49999.99" and holding["accountNo"] == "6222000000009999"
    await _holding(gql, token, customer["id"], "6222000000009999", "FUND", "50000")  # same account: an update
    stored = await Customer.get()
    assert stored.aum == Decimal("50000.00")
    tier = await gql(
        "query($id: ID!) { customer(id: $id) { valueTier holdings { accountNo balance } } }",
        {"id": customer["id"]},
        token=token,
    )
    assert tier["customer"]["valueTier"] == "AFFLUENT" and len(tier["customer"]["holdings"]) == 1
    closed = await _holding(gql, token, customer["id"], "6222000000009999", "FUND", "50000", closed="2025-01-01")
    assert closed["status"] == "CLOSED" and closed["customer"]["aum"] == "0.00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"balance": "1.234"}, "balance"),
        ({"accountNo": "12"}, "accountNo"),
        ({"currency": "RMB1"}, "currency"),
        ({"closedAt": "2019-01-01"}, "closedAt"),
        ({"openedAt": "2999-01-01"}, "openedAt"),
    ],
)
async def test_holding_validation(gql, admin, change, field):
    _, token = admin
    customer = await create(gql, token)
    base = {
        "customerId": customer["id"],
        "accountNo": "6222000000000001",
        "product": "FUND",
        "balance": "1.00",
        "openedAt": "2020-01-01",
        **change,
    }
    result = (await gql(HOLDING, {"input": base}, token=token))["upsertHolding"]
    assert result["errors"][0]["field"] == [field]


async def test_an_account_of_another_customer_is_not_taken_over(gql, admin):
    _, token = admin
    first = await create(gql, token)
    second = await create(gql, token, name="李四", idNumber=resident_id(sequence="135"), phone=None, email=None)
    await _holding(gql, token, first["id"], "6222000000000001", "FUND", "1")
    result = (
        await gql(
            HOLDING,
            {
                "input": {
                    "customerId": second["id"],
                    "accountNo": "6222000000000001",
                    "product": "FUND",
                    "balance": "2",
                    "openedAt": "2020-01-01",
                }
            },
            token=token,
        )
    )["upsertHolding"]
    assert result["errors"][0]["code"] == "DUPLICATE"


async def test_a_page_of_50_customers_costs_a_constant_number_of_queries(gql, admin, staff_factory):
    _, token = admin
    rm, _ = await staff_factory(Role.RELATIONSHIP_MANAGER)
    import random

    from services.seed import _seed_customers

    await _seed_customers(60, random.Random(7))
    await Customer.all().update(relationship_manager_id=rm.id)
    query = """query($n: Int) { customers(first: $n) { totalCount edges { node { id name idNumber tags
        relationshipManager { username } consents { purpose granted } holdings { accountNo balance product } } } } }"""

    async def statements(n: int) -> int:
        with QueryCounter() as counter:
            data = await gql(query, {"n": n}, token=token)
        assert len(data["customers"]["edges"]) == n
        return counter.count

    small, large = await statements(5), await statements(50)
    assert small == large, (small, large)
    # auth, page, count, staff, tags, consents, holdings, one pii_read audit insert
    assert large <= 8
