"""Masking per role, branch scoping (hidden is NOT_FOUND, never FORBIDDEN) and the pii_read audit."""

import pytest

from models.audit import AuditEntry
from models.customers import ConsentChange
from models.staff import Role
from schema.base import to_global_id
from tests.customers.helpers import HOLDING, create, resident_id

PII = """query($id: ID!) { customer(id: $id) { id name idNumber phone email address
  holdings { accountNo } history { edges { node { field oldValue newValue } } } } }"""
UNMASKED = [Role.ADMIN, Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.COMPLAINT_HANDLER]
MASKED = [Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR]


@pytest.fixture
async def customer(gql, admin):
    _, token = admin
    created = await create(gql, token)
    await gql(
        HOLDING,
        {
            "input": {
                "customerId": created["id"],
                "accountNo": "6222020200112233",
                "product": "FUND",
                "balance": "10",
                "openedAt": "2020-01-01",
            }
        },
        token=token,
    )
    await gql(
        """mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { errors { code } } }""",
        {"input": {"id": created["id"], "version": 1, "phone": "13900001111"}},
        token=token,
    )
    return created


@pytest.mark.parametrize("role", UNMASKED)
async def test_unmasked_roles_see_personal_data_and_each_read_is_audited(gql, staff_factory, customer, role):
    member, token = await staff_factory(role)
    data = (await gql(PII, {"id": customer["id"]}, token=token, headers={"X-Request-ID": "pii-1"}))["customer"]
    assert data["idNumber"] == resident_id() and data["phone"] == "13900001111"
    assert data["email"] == "Zhang.Wei@example.com" and data["address"] == "北京市朝阳区建国路88号"
    assert data["holdings"][0]["accountNo"] == "6222020200112233"
    assert data["history"]["edges"][0]["node"]["oldValue"] == "13812345678"
    reads = await AuditEntry.filter(action="customer.pii_read", actor_id=member.id)
    assert len(reads) == 1  # one per customer per request, however many fields
    assert reads[0].request_id == "pii-1" and reads[0].subject_type == "Customer"
    assert reads[0].detail["fields"] == ["accountNo", "address", "email", "idNumber", "phone"]


@pytest.mark.parametrize("role", MASKED)
async def test_masked_roles_see_masked_forms_and_nothing_is_audited(gql, staff_factory, customer, role):
    member, token = await staff_factory(role)
    data = (await gql(PII, {"id": customer["id"]}, token=token))["customer"]
    assert data["idNumber"] == resident_id()[:6] + "********" + resident_id()[-4:]
    assert data["phone"] == "139****1111" and data["email"] == "Z***@example.com"
    assert data["address"].endswith("****") and "88号" not in data["address"]
    assert data["holdings"][0]["accountNo"] == "****2233"
    entry = data["history"]["edges"][0]["node"]
    assert (entry["oldValue"], entry["newValue"]) == ("138****5678", "139****1111")
    assert not await AuditEntry.filter(action="customer.pii_read", actor_id=member.id).exists()


async def test_a_list_page_audits_each_customer_once(gql, admin, staff_factory):
    _, token = admin
    for i in range(3):
        await create(
            gql, token, name=f"客户{i}", idNumber=resident_id(sequence=f"1{i}3"), phone=f"1380000000{i}", email=None
        )
    member, rm_token = await staff_factory(Role.RELATIONSHIP_MANAGER)
    await gql("{ customers { edges { node { phone p2: phone idNumber } } } }", token=rm_token)
    await gql("{ customers { edges { node { name } } } }", token=rm_token)  # nothing personal: no entry
    assert await AuditEntry.filter(action="customer.pii_read", actor_id=member.id).count() == 3


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_branch_bound_staff_see_only_their_branch(gql, admin, staff_factory, role):
    _, token = admin
    here = await create(gql, token, branch="北京朝阳支行")
    there = await create(
        gql,
        token,
        name="李四",
        idNumber=resident_id(sequence="135"),
        phone="13700000000",
        email=None,
        branch="上海浦东支行",
    )
    _, bound = await staff_factory(role, branch="北京朝阳支行")
    listed = await gql("{ customers { totalCount edges { node { id } } } }", token=bound)
    assert listed["customers"]["totalCount"] == 1 and listed["customers"]["edges"][0]["node"]["id"] == here["id"]
    assert (await gql(PII, {"id": there["id"]}, token=bound))["customer"] is None
    assert (
        await gql("query($no: String) { customer(customerNo: $no) { id } }", {"no": there["customerNo"]}, token=bound)
    )["customer"] is None
    assert (await gql("query($id: ID!) { node(id: $id) { id } }", {"id": there["id"]}, token=bound))["node"] is None
    nodes = await gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [here["id"], there["id"]]}, token=bound
    )
    assert nodes["nodes"] == [{"id": here["id"]}, None]
    other_branch = await gql('{ customers(filter: {branch: "上海浦东支行"}) { totalCount } }', token=bound)
    assert other_branch["customers"]["totalCount"] == 0
    searched = await gql('{ customers(filter: {search: "李四"}) { totalCount } }', token=bound)
    assert searched["customers"]["totalCount"] == 0


async def test_hidden_customers_are_not_found_in_mutations(gql, admin, staff_factory):
    _, token = admin
    there = await create(gql, token, branch="上海浦东支行")
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="北京朝阳支行")
    update = await gql(
        """mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) {
        errors { code field } } }""",
        {"input": {"id": there["id"], "version": 1, "occupation": "x"}},
        token=bound,
    )
    assert update["updateCustomer"]["errors"] == [{"code": "NOT_FOUND", "field": ["id"]}]
    holding = await gql(
        HOLDING,
        {
            "input": {
                "customerId": there["id"],
                "accountNo": "6222000000000001",
                "product": "FUND",
                "balance": "1",
                "openedAt": "2020-01-01",
            }
        },
        token=bound,
    )
    assert holding["upsertHolding"]["errors"][0]["code"] == "NOT_FOUND"


async def test_branch_bound_staff_create_in_their_own_branch_only(gql, staff_factory):
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="北京朝阳支行")
    defaulted = await create(gql, bound, branch=None)
    assert defaulted["branch"] == "北京朝阳支行"
    from tests.customers.helpers import CREATE, person

    elsewhere = await gql(
        CREATE, {"input": person(branch="上海浦东支行", idNumber=resident_id(sequence="135"))}, token=bound
    )
    assert elsewhere["createCustomer"]["errors"][0]["code"] == "FORBIDDEN"


async def test_bank_wide_staff_see_every_branch(gql, admin, staff_factory):
    _, token = admin
    await create(gql, token, branch="上海浦东支行")
    _, wide = await staff_factory(Role.RELATIONSHIP_MANAGER)  # no branch set
    assert (await gql("{ customers { totalCount } }", token=wide))["customers"]["totalCount"] == 1


SET = """mutation($input: SetConsentsInput!) { setConsents(input: $input) {
  customer { consents { purpose channel granted source } } errors { field code } } }"""


async def test_consents_with_history_and_channel_specific_answers(gql, admin, staff_factory):
    _, token = admin
    customer = await create(gql, token)
    _, agent = await staff_factory(Role.SERVICE_AGENT)
    result = (
        await gql(
            SET,
            {
                "input": {
                    "customerId": customer["id"],
                    "consents": [
                        {"purpose": "SURVEY", "granted": False, "source": "phone call"},
                        {"purpose": "MARKETING", "channel": "SMS", "granted": True, "source": "app"},
                    ],
                }
            },
            token=agent,
        )
    )["setConsents"]
    assert result["errors"] == []
    consents = {(c["purpose"], c["channel"]): (c["granted"], c["source"]) for c in result["customer"]["consents"]}
    assert consents[("SURVEY", None)] == (False, "phone call")
    assert consents[("MARKETING", "SMS")] == (True, "app")
    assert consents[("MARKETING", None)] == (False, "default")
    await gql(
        SET,
        {
            "input": {
                "customerId": customer["id"],
                "consents": [{"purpose": "SURVEY", "granted": True, "source": "branch form"}],
            }
        },
        token=agent,
    )
    history = await ConsentChange.filter(purpose="SURVEY").order_by("id").values_list("granted", "source")
    assert history == [(False, "phone call"), (True, "branch form")]


async def test_consent_rules(gql, admin, staff_factory):
    from models.customers import Channel, ConsentPurpose, Customer
    from services.consents import consent_granted

    _, token = admin
    customer = await create(gql, token)
    pk = (await Customer.get()).id
    assert await consent_granted(pk, ConsentPurpose.SURVEY) is True
    assert await consent_granted(pk, ConsentPurpose.MARKETING) is False
    await gql(
        SET,
        {
            "input": {
                "customerId": customer["id"],
                "consents": [
                    {"purpose": "MARKETING", "granted": True},
                    {"purpose": "MARKETING", "channel": "EMAIL", "granted": False},
                ],
            }
        },
        token=token,
    )
    assert await consent_granted(pk, ConsentPurpose.MARKETING, Channel.SMS) is True
    assert await consent_granted(pk, ConsentPurpose.MARKETING, Channel.EMAIL) is False
    twice = await gql(
        SET,
        {
            "input": {
                "customerId": customer["id"],
                "consents": [{"purpose": "PROFILING", "granted": True}, {"purpose": "PROFILING", "granted": False}],
            }
        },
        token=token,
    )
    assert twice["setConsents"]["errors"][0]["code"] == "INVALID"
    _, analyst = await staff_factory(Role.ANALYST)
    denied = await gql(
        SET,
        {"input": {"customerId": customer["id"], "consents": [{"purpose": "PROFILING", "granted": True}]}},
        token=analyst,
    )
    assert denied["setConsents"]["errors"][0]["code"] == "FORBIDDEN"
    assert to_global_id("Customer", pk) == customer["id"]
