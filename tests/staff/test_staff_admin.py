import pytest

from models.audit import AuditEntry
from models.staff import Role, Staff
from schema.base import to_global_id

CREATE = """mutation($input: CreateStaffInput!) {
  createStaff(input: $input) {
    staff { id username displayName role department branch active } errors { field message code }
  }
}"""
UPDATE = """mutation($input: UpdateStaffInput!) {
  updateStaff(input: $input) { staff { id role department branch displayName active } errors { field message code } }
}"""
STAFF = "{ staff(first: 100) { totalCount edges { node { username role } } } }"


def new_staff(**overrides):
    return {
        "username": "li.na",
        "displayName": "李娜",
        "password": "strong-pass-2026",
        "role": "SERVICE_AGENT",
        "department": "CALL_CENTER",
        **overrides,
    }


NON_ADMINS = [r for r in Role if r != Role.ADMIN]


async def test_admin_creates_staff(gql, admin):
    _, token = admin
    result = (await gql(CREATE, {"input": new_staff(branch=" 上海浦东支行 ")}, token=token))["createStaff"]
    assert result["errors"] == []
    assert result["staff"]["username"] == "li.na" and result["staff"]["branch"] == "上海浦东支行"
    assert result["staff"]["active"] is True
    entry = await AuditEntry.get(action="staff.create")
    assert entry.subject_type == "Staff" and entry.subject_id == str((await Staff.get(username="li.na")).id)
    # Field names only: values (and never the password) stay out of the audit trail.
    assert entry.detail == {"input": ["branch", "department", "displayName", "role", "username"]}


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admin_manages_staff(gql, staff_factory, role):
    target, _ = await staff_factory(Role.ANALYST)
    _, token = await staff_factory(role)
    created = (await gql(CREATE, {"input": new_staff()}, token=token))["createStaff"]
    assert created["staff"] is None and created["errors"][0]["code"] == "FORBIDDEN"
    updated = (await gql(UPDATE, {"input": {"id": to_global_id("Staff", target.id), "role": "ADMIN"}}, token=token))[
        "updateStaff"
    ]
    assert updated["staff"] is None and updated["errors"][0]["code"] == "FORBIDDEN"
    assert (await Staff.get(id=target.id)).role == Role.ANALYST
    assert not await Staff.exists(username="li.na")
    rejected = await AuditEntry.get(action="staff.create.rejected")
    assert rejected.detail["errors"] == ["FORBIDDEN"] and rejected.actor_name.startswith(role.value.lower()[:5])


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_may_list_staff(gql, staff_factory, role):
    _, token = await staff_factory(role)
    data = await gql(STAFF, token=token)
    assert data["staff"]["totalCount"] == 1


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"username": "ab"}, "username", "INVALID"),
        ({"username": "Has Space"}, "username", "INVALID"),
        ({"password": "short-1"}, "password", "INVALID"),
        ({"password": "onlyletterslong"}, "password", "INVALID"),
        ({"displayName": "   "}, "displayName", "INVALID"),
    ],
)
async def test_create_validation(gql, admin, overrides, field, code):
    _, token = admin
    result = (await gql(CREATE, {"input": new_staff(**overrides)}, token=token))["createStaff"]
    assert result["staff"] is None
    assert {"field": [field], "code": code} in [{"field": e["field"], "code": e["code"]} for e in result["errors"]]


async def test_every_invalid_field_is_reported_at_once(gql, admin):
    _, token = admin
    result = (await gql(CREATE, {"input": new_staff(username="x", password="short")}, token=token))["createStaff"]
    assert sorted(e["field"][0] for e in result["errors"]) == ["password", "username"]


async def test_duplicate_username(gql, admin):
    _, token = admin
    assert (await gql(CREATE, {"input": new_staff()}, token=token))["createStaff"]["errors"] == []
    again = (await gql(CREATE, {"input": new_staff(username="LI.NA")}, token=token))["createStaff"]
    assert again["errors"] == [
        {"field": ["username"], "message": "A staff member with this username exists", "code": "DUPLICATE"}
    ]


async def test_update_changes_only_what_is_given(gql, admin, staff_factory):
    _, token = admin
    member, _ = await staff_factory(Role.SERVICE_AGENT, branch="北京朝阳支行")
    gid = to_global_id("Staff", member.id)
    result = (await gql(UPDATE, {"input": {"id": gid, "role": "RELATIONSHIP_MANAGER"}}, token=token))["updateStaff"]
    assert result["staff"] == {
        "id": gid,
        "role": "RELATIONSHIP_MANAGER",
        "department": "OPERATIONS",
        "branch": "北京朝阳支行",
        "displayName": member.display_name,
        "active": True,
    }
    cleared = (await gql(UPDATE, {"input": {"id": gid, "branch": None}}, token=token))["updateStaff"]
    assert cleared["staff"]["branch"] is None


async def test_update_of_an_unknown_or_foreign_id_is_not_found(gql, admin):
    _, token = admin
    for gid in (to_global_id("Staff", 999999), to_global_id("Job", 1), "garbage"):
        result = (await gql(UPDATE, {"input": {"id": gid, "active": False}}, token=token))["updateStaff"]
        assert result["errors"][0]["code"] == "NOT_FOUND", gid


async def test_admin_cannot_lock_themselves_out(gql, admin):
    member, token = admin
    gid = to_global_id("Staff", member.id)
    for change in ({"active": False}, {"role": "MANAGER"}):
        result = (await gql(UPDATE, {"input": {"id": gid, **change}}, token=token))["updateStaff"]
        assert result["errors"][0]["code"] == "INVALID"
    assert (await Staff.get(id=member.id)).role == Role.ADMIN


async def test_another_admin_can_be_demoted(gql, admin, staff_factory):
    _, token = admin
    other, _other_token = await staff_factory(Role.ADMIN)
    result = (await gql(UPDATE, {"input": {"id": to_global_id("Staff", other.id), "role": "MANAGER"}}, token=token))[
        "updateStaff"
    ]
    assert result["errors"] == [] and result["staff"]["role"] == "MANAGER"


async def test_a_rejected_update_changes_nothing(gql, admin, staff_factory):
    _, token = admin
    member, _ = await staff_factory(Role.ANALYST)
    result = (
        await gql(
            UPDATE,
            {"input": {"id": to_global_id("Staff", member.id), "displayName": "新名字", "password": "short"}},
            token=token,
        )
    )["updateStaff"]
    assert result["errors"][0]["field"] == ["password"]
    assert (await Staff.get(id=member.id)).display_name == member.display_name
