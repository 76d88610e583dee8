"""A relationship manager or service agent of the BRANCH department must name their branch: left out by
mistake, it would make them bank-wide. In another department (the call centre, head office) the same roles are
bank-wide on purpose, without a branch."""

from __future__ import annotations

import pytest

from models.staff import Department, Role, Staff
from schema.base import to_global_id

CREATE = """mutation($input: CreateStaffInput!) {
  createStaff(input: $input) { staff { id role department branch } errors { field message code } }
}"""
UPDATE = """mutation($input: UpdateStaffInput!) {
  updateStaff(input: $input) { staff { id role department branch } errors { field message code } }
}"""


def new_staff(**overrides) -> dict:
    return {
        "username": "zhang.wei",
        "displayName": "客户经理 张伟",
        "password": "strong-pass-2026",
        "role": "RELATIONSHIP_MANAGER",
        "department": "BRANCH",
        **overrides,
    }


@pytest.mark.parametrize("role", ["RELATIONSHIP_MANAGER", "SERVICE_AGENT"])
@pytest.mark.parametrize("branch", [None, "   "])
async def test_a_branch_role_of_the_branch_department_needs_its_branch(gql, admin, role, branch):
    _, token = admin
    result = (await gql(CREATE, {"input": new_staff(role=role, branch=branch)}, token=token))["createStaff"]
    assert result["staff"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [(["branch"], "INVALID")]
    assert f"A {role} of the BRANCH department works at one branch" in result["errors"][0]["message"]
    assert not await Staff.exists(username="zhang.wei")


async def test_with_a_branch_it_is_created(gql, admin):
    _, token = admin
    result = (await gql(CREATE, {"input": new_staff(branch="北京朝阳支行")}, token=token))["createStaff"]
    assert result["errors"] == []
    assert result["staff"]["branch"] == "北京朝阳支行"


@pytest.mark.parametrize(
    ("role", "department"),
    [("SERVICE_AGENT", "CALL_CENTER"), ("RELATIONSHIP_MANAGER", "OPERATIONS"), ("MANAGER", "BRANCH")],
)
async def test_elsewhere_or_another_role_may_be_bank_wide(gql, admin, role, department):
    _, token = admin
    result = (await gql(CREATE, {"input": new_staff(role=role, department=department)}, token=token))["createStaff"]
    assert result["errors"] == []
    assert result["staff"]["branch"] is None


async def test_an_update_may_not_leave_a_branch_role_without_its_branch(gql, admin, staff_factory):
    _, token = admin
    rm, _ = await staff_factory(Role.RELATIONSHIP_MANAGER, department=Department.BRANCH, branch="北京朝阳支行")
    analyst, _ = await staff_factory(Role.ANALYST, department=Department.BRANCH)
    rm_id, analyst_id = to_global_id("Staff", rm.id), to_global_id("Staff", analyst.id)

    for changes in (
        {"id": rm_id, "branch": None},
        {"id": rm_id, "branch": "  "},
        {"id": analyst_id, "role": "SERVICE_AGENT"},
    ):
        result = (await gql(UPDATE, {"input": changes}, token=token))["updateStaff"]
        assert [(e["field"], e["code"]) for e in result["errors"]] == [(["branch"], "INVALID")], changes
    assert (await Staff.get(id=rm.id)).branch == "北京朝阳支行"
    assert (await Staff.get(id=analyst.id)).role == Role.ANALYST

    # Together with the branch, or moved to another department, it is fine.
    moved = await gql(
        UPDATE, {"input": {"id": analyst_id, "role": "SERVICE_AGENT", "branch": "上海浦东支行"}}, token=token
    )
    assert moved["updateStaff"]["errors"] == []
    head_office = {"id": rm_id, "branch": None, "department": "OPERATIONS"}
    assert (await gql(UPDATE, {"input": head_office}, token=token))["updateStaff"]["errors"] == []
    # Changes that do not touch role, department or branch are not held up by the rule.
    assert (await gql(UPDATE, {"input": {"id": rm_id, "displayName": "张伟"}}, token=token))["updateStaff"][
        "errors"
    ] == []
