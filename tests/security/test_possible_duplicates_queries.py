"""possibleDuplicates in a list of customers: a fixed number of statements, however many customers ask."""

from datetime import date

from models.customers import Customer, CustomerKind, CustomerStatus
from models.staff import Role
from schema.base import to_global_id
from services.customers import MAX_DUPLICATES
from tests.conftest import StatementCounter

LIST = """query($n: Int) { customers(first: $n, orderBy: {field: CUSTOMER_NO, direction: ASC}) {
  edges { node { customerNo possibleDuplicates { customerNo } } } } }"""


async def _customer(n: int, **fields) -> Customer:
    fields = {"name": f"客户{n}", **fields}
    return await Customer.create(customer_no=f"C{n:010d}", kind=CustomerKind.INDIVIDUAL, **fields)


async def _pairs(count: int) -> None:
    """`count` customers, each with one duplicate: the odd ones share a phone, the even ones an email, every
    fourth a name and birth date (the duplicate of n is n + 1000, outside the listed page)."""
    for n in range(1, count + 1):
        if n % 4 == 0:
            key = {"name": f"同名{n}", "birth_date": date(1980, 1, 1 + n % 28)}
        elif n % 2:
            key = {"phone": f"1380000{n:04d}"}
        else:
            key = {"email": f"p{n}@example.com"}
        await _customer(n, **key)
        await _customer(n + 1000, **key)


async def _statements(gql, token: str, count: int) -> tuple[int, dict]:
    with StatementCounter() as counter:
        data = await gql(LIST, {"n": count}, token=token)
    return counter.count, data


async def test_statements_do_not_grow_with_the_customers_listed(gql, admin):
    _, token = admin
    await _pairs(20)
    await gql(LIST, {"n": 1}, token=token)  # the caller's session, read once
    five, data5 = await _statements(gql, token, 5)
    twenty, data20 = await _statements(gql, token, 20)
    assert five == twenty, (five, twenty)
    for data in (data5, data20):
        for edge in data["customers"]["edges"]:
            n = int(edge["node"]["customerNo"][1:])
            if n < 1000:
                assert [d["customerNo"] for d in edge["node"]["possibleDuplicates"]] == [f"C{n + 1000:010d}"]


async def test_each_customer_keeps_its_own_duplicates_in_id_order_and_at_most_fifty(gql, admin):
    _, token = admin
    shared = [await _customer(n, phone="13900000000") for n in range(1, 56)]
    by_email = await _customer(100, email="a@example.com", phone="13911111111")
    twin = await _customer(101, email="a@example.com")
    same_name = await _customer(102, name="张三", birth_date=date(1990, 5, 1))
    other_birth = await _customer(103, name="张三", birth_date=date(1990, 5, 2))
    same_name_2 = await _customer(104, name="张三", birth_date=date(1990, 5, 1))
    await _customer(105, phone="13900000000", status=CustomerStatus.ERASED)
    query = """query($ids: [ID!]!) {
      nodes(ids: $ids) { ... on Customer { customerNo possibleDuplicates { customerNo } } } }"""
    ids = [to_global_id("Customer", c.id) for c in (shared[0], shared[-1], by_email, twin, same_name, other_birth)]
    found = {
        n["customerNo"]: [d["customerNo"] for d in n["possibleDuplicates"]]
        for n in (await gql(query, {"ids": ids}, token=token))["nodes"]
    }
    assert found[shared[0].customer_no] == [c.customer_no for c in shared[1 : MAX_DUPLICATES + 1]]
    assert found[shared[-1].customer_no] == [c.customer_no for c in shared[:MAX_DUPLICATES]]
    assert found[by_email.customer_no] == [twin.customer_no]
    assert found[twin.customer_no] == [by_email.customer_no]
    assert found[same_name.customer_no] == [same_name_2.customer_no]
    assert found[other_birth.customer_no] == []


async def test_duplicates_keep_to_the_callers_branch(gql, staff_factory):
    _, token = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="上海分行")
    mine = await _customer(1, phone="13700000000", branch="上海分行")
    same_branch = await _customer(2, phone="13700000000", branch="上海分行")
    await _customer(3, phone="13700000000", branch="北京分行")
    query = """query($id: ID!) { customer(id: $id) { possibleDuplicates { customerNo } } }"""
    data = await gql(query, {"id": to_global_id("Customer", mine.id)}, token=token)
    assert [d["customerNo"] for d in data["customer"]["possibleDuplicates"]] == [same_branch.customer_no]
