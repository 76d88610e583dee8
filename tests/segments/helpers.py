"""Shared pieces of the segment tests: the operations, and a small book of customers that differ in every way a
CustomerFilter can tell them apart."""

from __future__ import annotations

from models.customers import Customer
from models.staff import Role
from schema.base import int_pk, to_global_id
from tests.complaints.helpers import new_customer
from tests.customers.helpers import HOLDING
from tests.portraits.helpers import stored_churn_risk

SEGMENT_FIELDS = """id name description filter size version createdAt updatedAt createdBy { username }"""
CREATE = f"""mutation($input: CreateSegmentInput!) {{ createSegment(input: $input) {{
  segment {{ {SEGMENT_FIELDS} }} errors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateSegmentInput!) {{ updateSegment(input: $input) {{
  segment {{ {SEGMENT_FIELDS} }} errors {{ field message code }} }} }}"""
DELETE = """mutation($input: DeleteInput!) { deleteSegment(input: $input) {
  deletedId errors { field message code } } }"""
LIST = f"""query($first: Int, $after: String, $last: Int, $before: String) {{
  segments(first: $first, after: $after, last: $last, before: $before) {{
    totalCount pageInfo {{ hasNextPage hasPreviousPage endCursor startCursor }} edges {{ node {{ {SEGMENT_FIELDS} }} }}
  }} }}"""
MEMBER_FIELDS = "id customerNo name phone email idNumber branch"
MEMBERS = f"""query($id: ID!, $first: Int, $after: String) {{ node(id: $id) {{ ... on Segment {{
  size members(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {MEMBER_FIELDS} }} }} }} }} }} }}"""
CUSTOMERS = f"""query($filter: CustomerFilter, $first: Int, $after: String) {{
  customers(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {MEMBER_FIELDS} }} }} }} }}"""
HERE, THERE = "北京朝阳支行", "上海浦东支行"


async def create_raw(gql, token: str, **fields) -> dict:
    data = {"name": "高净值客户", "filter": {}, **fields}
    return (await gql(CREATE, {"input": data}, token=token))["createSegment"]


async def create_segment(gql, token: str, **fields) -> dict:
    result = await create_raw(gql, token, **fields)
    assert result["errors"] == [], result["errors"]
    return result["segment"]


async def update_raw(gql, token: str, segment_id: str, **fields) -> dict:
    return (await gql(UPDATE, {"input": {"id": segment_id, **fields}}, token=token))["updateSegment"]


async def delete_raw(gql, token: str, segment_id: str) -> dict:
    return (await gql(DELETE, {"input": {"id": segment_id}}, token=token))["deleteSegment"]


async def every_page(gql, token: str, query: str, variables: dict, path: str, size: int = 2) -> list[dict]:
    """Every node of a connection, read `size` at a time; `path` is the connection's place in the data."""
    nodes, after = [], None
    while True:
        data = await gql(query, {**variables, "first": size, "after": after}, token=token)
        for key in path.split("."):
            data = data[key]
        nodes += [e["node"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            return nodes
        after = data["pageInfo"]["endCursor"]


async def holding(gql, token: str, customer_id: str, account: str, product: str, balance: str, closed=None) -> None:
    data = {"customerId": customer_id, "accountNo": account, "product": product, "balance": balance,
            "openedAt": "2020-01-01", "closedAt": closed}  # fmt: skip
    result = (await gql(HOLDING, {"input": data}, token=token))["upsertHolding"]
    assert result["errors"] == [], result["errors"]


async def book(gql, token: str, staff_factory) -> dict:
    """Seven customers over two branches: name -> customer, and the relationship manager of one of them."""
    rm, _ = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=THERE)
    people = {
        "张伟": await new_customer(gql, token, name="张伟", tags=["VIP"], riskLevel="C1", branch=HERE),
        "李娜": await new_customer(
            gql, token, name="李娜", phone="13900000002", email="li.na@example.cn", branch=THERE, riskLevel="C4",
            relationshipManagerId=to_global_id("Staff", rm.id), tags=["VIP", "老客户"],
        ),
        "王芳": await new_customer(gql, token, name="王芳", phone="13700000004", email=None, branch=HERE),
        "赵强": await new_customer(gql, token, name="赵强", branch=THERE, tags=["老客户"]),
        "陈静": await new_customer(gql, token, name="陈静", branch=HERE, riskLevel="C5"),
        "刘洋": await new_customer(gql, token, name="刘洋", branch=THERE, email="liu.yang@example.cn"),
        "杨敏": await new_customer(gql, token, name="杨敏", branch=HERE, tags=["VIP"]),
    }  # fmt: skip
    accounts = iter(range(6222000000000001, 6222000000001000))

    async def hold(name: str, product: str, balance: str, closed: str | None = None) -> None:
        await holding(gql, token, people[name]["id"], str(next(accounts)), product, balance, closed)

    await hold("张伟", "TIME_DEPOSIT", "600000.00")  # WEALTH
    await hold("张伟", "MORTGAGE", "900000.00")  # debt, not AUM
    await hold("李娜", "WEALTH_MANAGEMENT", "7000000")  # PRIVATE_BANKING
    await hold("王芳", "CURRENT_DEPOSIT", "60000")  # AFFLUENT
    await hold("赵强", "FUND", "100000", closed="2024-01-01")  # closed: MASS
    await hold("陈静", "TIME_DEPOSIT", "50000")  # AFFLUENT
    await hold("杨敏", "CREDIT_CARD", "3000")  # debt only: MASS
    await Customer.filter(name="赵强").update(status="DORMANT")
    await stored_churn_risk(int_pk(people["赵强"]["id"], "Customer"), 0.8)
    await Customer.filter(name="刘洋").update(status="CLOSED")
    return {"people": people, "rm": rm}
