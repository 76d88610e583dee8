"""A masked viewer cannot rebuild a resident ID from its birth date (docs/DOMAIN.md "Roles and what they may do").

The hidden digits 7-14 of a masked ID (`110105********1234`) are the birth date: a viewer who sees IDs masked
gets `birthDate: null` wherever a customer's birth date leaves the server (the Customer type, so also the
customers list, `node`, `possibleDuplicates`, and the change history)."""

from __future__ import annotations

import pytest

from models.staff import Role
from tests.customers.helpers import UPDATE, create, resident_id

UNMASKED = [Role.ADMIN, Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.COMPLAINT_HANDLER]
MASKED = [Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR]

EVERYWHERE = """query($id: ID!) {
  customer(id: $id) { idNumber birthDate possibleDuplicates { birthDate }
    history { edges { node { field oldValue newValue } } } }
  node(id: $id) { ... on Customer { birthDate } }
  nodes(ids: [$id]) { ... on Customer { birthDate } }
  customers(filter: {search: "张伟"}) { edges { node { birthDate } } }
}"""


@pytest.fixture
async def customer(gql, admin):
    _, token = admin
    created = await create(gql, token)  # born 1985-04-12 (digits 7-14 of the ID)
    # A twin record (same name, birth date and phone): a possible duplicate.
    await create(gql, token, idType=None, idNumber=None, birthDate="1985-04-12", email=None)
    # A birth date change is in the history.
    other = await create(
        gql, token, name="李娜", idType=None, idNumber=None, birthDate="1990-03-07", phone=None, email=None
    )
    changed = (await gql(UPDATE, {"input": {"id": other["id"], "version": 1, "birthDate": "1990-03-08"}}, token=token))[
        "updateCustomer"
    ]
    assert changed["errors"] == []
    return created, other


def birth_dates(data: dict) -> list:
    found = [data["customer"]["birthDate"], data["node"]["birthDate"], data["nodes"][0]["birthDate"]]
    found += [d["birthDate"] for d in data["customer"]["possibleDuplicates"]]
    found += [e["node"]["birthDate"] for e in data["customers"]["edges"]]
    return found


@pytest.mark.parametrize("role", MASKED)
async def test_masked_viewers_get_no_birth_date_anywhere(gql, staff_factory, customer, role):
    created, other = customer
    _, token = await staff_factory(role)
    data = await gql(EVERYWHERE, {"id": created["id"]}, token=token)
    assert data["customer"]["idNumber"] == "110105********" + resident_id()[-4:]
    assert birth_dates(data) and set(birth_dates(data)) == {None}
    assert len(data["customers"]["edges"]) == 2

    history = (await gql(EVERYWHERE, {"id": other["id"]}, token=token))["customer"]["history"]["edges"]
    changes = [e["node"] for e in history if e["node"]["field"] == "birthDate"]
    assert changes == [{"field": "birthDate", "oldValue": None, "newValue": None}]


@pytest.mark.parametrize("role", UNMASKED)
async def test_viewers_of_personal_data_see_it(gql, staff_factory, customer, role):
    created, other = customer
    _, token = await staff_factory(role)
    data = await gql(EVERYWHERE, {"id": created["id"]}, token=token)
    assert set(birth_dates(data)) == {"1985-04-12"}

    history = (await gql(EVERYWHERE, {"id": other["id"]}, token=token))["customer"]["history"]["edges"]
    changes = [e["node"] for e in history if e["node"]["field"] == "birthDate"]
    assert changes == [{"field": "birthDate", "oldValue": "1990-03-07", "newValue": "1990-03-08"}]


async def test_an_unmasked_birth_date_is_an_audited_personal_data_read(gql, staff_factory, customer):
    from models.audit import AuditEntry

    created, _ = customer
    member, token = await staff_factory(Role.RELATIONSHIP_MANAGER)
    query = "query($id: ID!) { customer(id: $id) { birthDate } }"
    assert (await gql(query, {"id": created["id"]}, token=token))["customer"]["birthDate"] == "1985-04-12"
    reads = await AuditEntry.filter(action="customer.pii_read", actor_id=member.id)
    assert [r.detail["fields"] for r in reads] == [["birthDate"]]
