import asyncio

import pytest

from models.audit import AuditEntry
from models.customers import ChangeEntry, Customer
from models.staff import Role
from schema.base import to_global_id
from tests.customers.helpers import CREATE, GET, UPDATE, create, person, resident_id


async def test_create_normalises_and_derives(gql, admin):
    _, token = admin
    customer = await create(gql, token, consents=[{"purpose": "MARKETING", "granted": True, "source": "branch form"}])
    assert customer["customerNo"].startswith("C") and len(customer["customerNo"]) == 11
    assert customer["phone"] == "13812345678" and customer["email"] == "Zhang.Wei@example.com"
    # Birth date and gender come from the resident ID (sequence 123: odd, so male).
    assert customer["birthDate"] == "1985-04-12" and customer["gender"] == "MALE"
    assert customer["completeness"] == 1.0 and customer["dataIssues"] == []
    assert customer["version"] == 1 and customer["kycStatus"] == "PENDING" and customer["status"] == "ACTIVE"
    consents = {c["purpose"]: (c["granted"], c["source"]) for c in customer["consents"]}
    assert consents == {
        "MARKETING": (True, "branch form"),
        "SURVEY": (True, "default"),
        "PROFILING": (False, "default"),
        "THIRD_PARTY_SHARING": (False, "default"),
    }


async def test_given_customer_number_is_kept(gql, admin):
    _, token = admin
    assert (await create(gql, token, customerNo="c0000000042"))["customerNo"] == "C0000000042"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"name": "  "}, "name", "REQUIRED"),
        ({"idNumber": resident_id()[:-1] + ("0" if resident_id()[-1] != "0" else "1")}, "idNumber", "INVALID"),
        ({"idNumber": "11010519850230123X"}, "idNumber", "INVALID"),  # 30 February
        ({"idNumber": "1101051985041212"}, "idNumber", "INVALID"),  # 16 characters
        ({"birthDate": "1985-04-13"}, "birthDate", "INVALID"),  # does not match the ID
        ({"gender": "FEMALE"}, "gender", "INVALID"),  # the ID says male
        ({"idType": None}, "idType", "REQUIRED"),
        ({"phone": "12812345678"}, "phone", "INVALID"),
        ({"phone": "1381234567"}, "phone", "INVALID"),
        ({"email": "zhang@@example.com"}, "email", "INVALID"),
        ({"email": "zhang@localhost"}, "email", "INVALID"),
        ({"customerNo": "X123"}, "customerNo", "INVALID"),
        ({"idType": "UNIFIED_SOCIAL_CREDIT_CODE", "idNumber": "91350100M000100Y43"}, "idType", "INVALID"),
        ({"idType": "PASSPORT", "idNumber": "E1"}, "idNumber", "INVALID"),
        ({"tags": ["x" * 33]}, "tags", "INVALID"),
    ],
)
async def test_validation(gql, admin, overrides, field, code):
    _, token = admin
    result = (await gql(CREATE, {"input": person(**overrides)}, token=token))["createCustomer"]
    assert result["customer"] is None
    assert {"field": [field], "code": code} in [{"field": e["field"], "code": e["code"]} for e in result["errors"]]
    assert await Customer.all().count() == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"idType": "PASSPORT", "idNumber": "E12345678", "birthDate": "1990-01-01"},
        {"idType": "HK_MACAO_PERMIT", "idNumber": "H12345678"},
        {"phone": "19912345678", "email": None},
        {"idNumber": resident_id(sequence="124"), "gender": "FEMALE"},
        {"idNumber": resident_id()[:-1] + resident_id()[-1].lower()},
    ],
)
async def test_valid_variants(gql, admin, overrides):
    _, token = admin
    await create(gql, token, **overrides)


async def test_corporate_customer_with_a_social_credit_code(gql, admin):
    _, token = admin
    customer = await create(
        gql,
        token,
        kind="CORPORATE",
        name="杭州西湖智能科技有限公司",
        idType="UNIFIED_SOCIAL_CREDIT_CODE",
        idNumber="91350100m000100y43",
        gender=None,
    )
    assert customer["idNumber"] == "91350100M000100Y43"
    assert customer["completeness"] == 1.0  # no birth date asked of an organisation


async def test_duplicate_identity_document(gql, admin):
    _, token = admin
    await create(gql, token)
    again = (await gql(CREATE, {"input": person(name="张伟伟", phone=None)}, token=token))["createCustomer"]
    assert again["errors"][0]["code"] == "DUPLICATE" and again["errors"][0]["field"] == ["idNumber"]
    number = await gql(
        CREATE,
        {"input": person(customerNo=(await Customer.first()).customer_no, idNumber=resident_id(sequence="135"))},
        token=token,
    )
    assert number["createCustomer"]["errors"][0]["code"] == "DUPLICATE"


async def test_completeness_and_data_issues(gql, admin):
    _, token = admin
    customer = await create(gql, token, email=None, address=None, occupation=None, riskLevel=None)
    assert customer["completeness"] == round(5 / 9, 4)
    assert {i["field"] for i in customer["dataIssues"]} == {"email", "address", "occupation", "riskLevel"}


async def test_update_writes_history_and_bumps_version(gql, admin):
    member, token = admin
    customer = await create(gql, token)
    result = (
        await gql(
            UPDATE,
            {
                "input": {
                    "id": customer["id"],
                    "version": 1,
                    "phone": "13900001111",
                    "occupation": None,
                    "tags": ["VIP", "老客户"],
                }
            },
            token=token,
        )
    )["updateCustomer"]
    assert result["errors"] == []
    updated = result["customer"]
    assert updated["version"] == 2 and updated["phone"] == "13900001111" and updated["occupation"] is None
    assert updated["tags"] == ["VIP", "老客户"]
    entries = {e.field: (e.old_value, e.new_value, e.actor_id) for e in await ChangeEntry.all()}
    assert entries == {
        "phone": ("13812345678", "13900001111", member.id),
        "occupation": ("工程师", None, member.id),
        "tags": ("", "VIP, 老客户", member.id),
    }
    history = await gql(
        """query($id: ID!) { customer(id: $id) { history { totalCount edges { node {
        field oldValue newValue actor { username } } } } } }""",
        {"id": customer["id"]},
        token=token,
    )
    assert history["customer"]["history"]["totalCount"] == 3


async def test_an_update_with_nothing_new_changes_nothing(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    result = (
        await gql(UPDATE, {"input": {"id": customer["id"], "version": 1, "phone": "138 1234 5678"}}, token=token)
    )["updateCustomer"]
    assert result["customer"]["version"] == 1 and await ChangeEntry.all().count() == 0


async def test_stale_version_changes_nothing(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    await gql(UPDATE, {"input": {"id": customer["id"], "version": 1, "occupation": "教师"}}, token=token)
    stale = (await gql(UPDATE, {"input": {"id": customer["id"], "version": 1, "occupation": "医生"}}, token=token))[
        "updateCustomer"
    ]
    assert stale["customer"] is None and stale["errors"][0]["code"] == "STALE_VERSION"
    assert (await Customer.get()).occupation == "教师"


async def test_two_concurrent_updates_exactly_one_wins(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    results = await asyncio.gather(
        *[
            gql(UPDATE, {"input": {"id": customer["id"], "version": 1, "occupation": job}}, token=token)
            for job in ("教师", "医生")
        ]
    )
    outcomes = sorted(
        "ok" if not r["updateCustomer"]["errors"] else r["updateCustomer"]["errors"][0]["code"] for r in results
    )
    assert outcomes == ["STALE_VERSION", "ok"]
    stored = await Customer.get()
    assert stored.version == 2 and stored.occupation in ("教师", "医生")
    assert await ChangeEntry.all().count() == 1


async def test_update_validates_like_create(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    for change, field in (
        ({"phone": "123"}, "phone"),
        ({"birthDate": "1990-01-01"}, "birthDate"),
        ({"name": None}, "name"),
        ({"status": "ERASED"}, "status"),
    ):
        result = await gql(UPDATE, {"input": {"id": customer["id"], "version": 1, **change}}, token=token)
        assert result["updateCustomer"]["errors"][0]["field"] == [field], change
    assert (await Customer.get()).version == 1


async def test_lookup_by_customer_number(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    data = await gql(
        "query($no: String) { customer(customerNo: $no) { id } }", {"no": customer["customerNo"].lower()}, token=token
    )
    assert data["customer"]["id"] == customer["id"]
    assert (await gql(GET, {"id": to_global_id("Customer", 999999)}, token=token))["customer"] is None


async def test_possible_duplicates(gql, admin):
    _, token = admin
    original = await create(gql, token)
    same_phone = await create(gql, token, name="李四", idNumber=resident_id(sequence="135"), email=None)
    same_name_birth = await create(
        gql, token, idType="PASSPORT", idNumber="E99887766", birthDate="1985-04-12", phone=None, email=None
    )
    await create(gql, token, name="王五", idNumber=resident_id(sequence="147"), phone="13700000000", email=None)
    data = await gql(
        "query($id: ID!) { customer(id: $id) { possibleDuplicates { id } } }", {"id": original["id"]}, token=token
    )
    assert {c["id"] for c in data["customer"]["possibleDuplicates"]} == {same_phone["id"], same_name_birth["id"]}


@pytest.mark.parametrize("role", [Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR, Role.COMPLAINT_HANDLER])
async def test_read_only_roles_cannot_create_or_update(gql, staff_factory, admin, role):
    _, admin_token = admin
    customer = await create(gql, admin_token)
    _, token = await staff_factory(role)
    created = await gql(CREATE, {"input": person(idNumber=resident_id(sequence="135"))}, token=token)
    assert created["createCustomer"]["errors"][0]["code"] == "FORBIDDEN"
    updated = await gql(UPDATE, {"input": {"id": customer["id"], "version": 1, "occupation": "x"}}, token=token)
    assert updated["updateCustomer"]["errors"][0]["code"] == "FORBIDDEN"
    assert await Customer.all().count() == 1


async def test_relationship_manager_assignment(gql, admin, staff_factory):
    _, token = admin
    rm, _ = await staff_factory(Role.RELATIONSHIP_MANAGER)
    analyst, _ = await staff_factory(Role.ANALYST)
    customer = await create(gql, token, relationshipManagerId=to_global_id("Staff", rm.id))
    assert customer["relationshipManager"]["username"] == rm.username
    wrong = (
        await gql(
            CREATE,
            {
                "input": person(
                    idNumber=resident_id(sequence="135"), relationshipManagerId=to_global_id("Staff", analyst.id)
                )
            },
            token=token,
        )
    )["createCustomer"]
    assert wrong["errors"][0]["field"] == ["relationshipManagerId"]


async def test_mutations_are_audited_without_personal_values(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    entry = await AuditEntry.get(action="customer.create")
    assert entry.subject_type == "Customer" and to_global_id("Customer", entry.subject_id) == customer["id"]
    assert "13812345678" not in str(entry.detail) and "张伟" not in str(entry.detail)
