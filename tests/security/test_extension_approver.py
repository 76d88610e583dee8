"""The second complaint extension is made by a MANAGER or ADMIN themselves: `approvedById`, when given, must be
the caller; nobody approves in another's name (docs/DOMAIN.md, "Complaints")."""

from __future__ import annotations

import pytest

from models.audit import AuditEntry
from models.staff import Role
from tests.complaints.helpers import codes, do, fetch, file, new_customer, staff_gid


@pytest.fixture
async def extended_once(gql, admin, staff_factory):
    """A complaint with its first extension, and the handler who made it."""
    _, admin_token = admin
    handler, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_customer(gql, admin_token)
    complaint = await file(gql, admin_token, customer["id"])
    first = await do(gql, token, "extend", id=complaint["id"], reason="案情复杂")
    assert first["errors"] == [] and first["complaint"]["extensionCount"] == 1
    return {"gql": gql, "complaint": first["complaint"], "handler": handler, "token": token}


async def test_a_handler_naming_a_manager_as_approver_is_forbidden(extended_once, staff_factory):
    gql, complaint = extended_once["gql"], extended_once["complaint"]
    manager, _ = await staff_factory(Role.MANAGER)
    result = await do(
        gql, extended_once["token"], "extend", id=complaint["id"], reason="仍需调查", approvedById=staff_gid(manager)
    )
    assert codes(result) == ["FORBIDDEN"] and result["complaint"] is None
    assert result["errors"][0]["field"] == ["approvedById"]
    assert "ADMIN, MANAGER" in result["errors"][0]["message"]
    after = await fetch(gql, extended_once["token"], complaint["id"])
    assert (after["extensionCount"], after["version"]) == (1, complaint["version"])
    # The refusal is audited like any rejected mutation.
    assert await AuditEntry.filter(action="complaint.extend.rejected").count() == 1


async def test_a_handler_without_an_approver_is_forbidden_too(extended_once):
    gql, complaint = extended_once["gql"], extended_once["complaint"]
    result = await do(gql, extended_once["token"], "extend", id=complaint["id"], reason="仍需调查")
    assert codes(result) == ["FORBIDDEN"]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
@pytest.mark.parametrize("naming_themselves", [True, False])
async def test_a_manager_or_admin_makes_it_themselves(extended_once, staff_factory, role, naming_themselves):
    gql, complaint = extended_once["gql"], extended_once["complaint"]
    approver, token = await staff_factory(role)
    extra = {"approvedById": staff_gid(approver)} if naming_themselves else {}
    result = await do(gql, token, "extend", id=complaint["id"], reason="仍需调查", **extra)
    assert result["errors"] == []
    extended = result["complaint"]
    assert extended["extensionCount"] == 2
    event = next(e for e in reversed(extended["events"]) if e["type"] == "DEADLINE_EXTENDED")
    assert event["actor"]["username"] == approver.username and approver.username in event["message"]


@pytest.mark.parametrize("other_role", [Role.MANAGER, Role.ADMIN])
async def test_a_manager_cannot_approve_in_another_managers_name(extended_once, staff_factory, other_role):
    gql, complaint = extended_once["gql"], extended_once["complaint"]
    _, token = await staff_factory(Role.MANAGER)
    other, _ = await staff_factory(other_role)
    result = await do(gql, token, "extend", id=complaint["id"], reason="仍需调查", approvedById=staff_gid(other))
    assert codes(result) == ["FORBIDDEN"] and result["errors"][0]["field"] == ["approvedById"]
    assert (await fetch(gql, token, complaint["id"]))["extensionCount"] == 1
