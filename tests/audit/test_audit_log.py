from datetime import UTC, datetime, timedelta

import pytest

from models.audit import AuditEntry
from models.staff import Role
from schema.base import to_global_id
from services import audit
from services.access import Caller

LOG = """query($filter: AuditFilter, $first: Int) { auditLog(filter: $filter, first: $first) {
  totalCount
  edges { node { id action actor { username } actorName subjectType subjectId detail requestId ip at } } } }"""
CREATE = """mutation($input: CreateStaffInput!) { createStaff(input: $input) { staff { id } errors { code } } }"""
READERS = [Role.ADMIN, Role.MANAGER, Role.AUDITOR]


@pytest.mark.parametrize("role", READERS)
async def test_audit_readers_see_the_log(gql, staff_factory, role):
    member, token = await staff_factory(role)
    data = (await gql(LOG, token=token))["auditLog"]
    assert data["totalCount"] == 1
    assert data["edges"][0]["node"]["action"] == "login.success"
    assert data["edges"][0]["node"]["actor"]["username"] == member.username


@pytest.mark.parametrize("role", [r for r in Role if r not in READERS])
async def test_other_roles_are_forbidden(gql, staff_factory, role):
    _, token = await staff_factory(role)
    errors = await gql.errors(LOG, token=token)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql.raw(LOG, token=token)).json()["data"] is None


async def test_every_mutation_writes_one_entry_with_request_id_and_ip(gql, admin):
    member, token = admin
    staff_input = {
        "username": "wang.fang",
        "displayName": "王芳",
        "password": "strong-pass-2026",
        "role": "AUDITOR",
        "department": "COMPLIANCE",
    }
    created = (await gql(CREATE, {"input": staff_input}, token=token, headers={"X-Request-ID": "req-create-1"}))[
        "createStaff"
    ]
    log = (await gql(LOG, {"filter": {"action": "staff.create"}}, token=token))["auditLog"]
    assert log["totalCount"] == 1
    entry = log["edges"][0]["node"]
    assert entry["requestId"] == "req-create-1" and entry["ip"] == "203.0.113.7"
    assert entry["actor"]["username"] == member.username
    assert entry["subjectType"] == "Staff" and entry["subjectId"] == created["staff"]["id"]
    assert "strong-pass-2026" not in str(entry["detail"])


async def test_rejected_mutations_are_audited_too(gql, admin):
    _, token = admin
    staff_input = {
        "username": "x",
        "displayName": "X",
        "password": "short",
        "role": "AUDITOR",
        "department": "COMPLIANCE",
    }
    await gql(CREATE, {"input": staff_input}, token=token)
    entry = await AuditEntry.get(action="staff.create.rejected")
    assert entry.detail["errors"] == ["INVALID", "INVALID"]
    assert not await AuditEntry.exists(action="staff.create")


async def test_filters(gql, admin, staff_factory):
    member, token = admin
    other, _ = await staff_factory(Role.ANALYST)
    start = datetime.now(UTC)
    await audit.record(Caller(member), "staff.update", subject_type="Staff", subject_id=str(other.id))
    by_action_prefix = (await gql(LOG, {"filter": {"action": "login"}}, token=token))["auditLog"]
    assert {e["node"]["action"] for e in by_action_prefix["edges"]} == {"login.success"}
    assert by_action_prefix["totalCount"] == 2
    by_actor = (await gql(LOG, {"filter": {"actorId": to_global_id("Staff", other.id)}}, token=token))["auditLog"]
    assert [e["node"]["action"] for e in by_actor["edges"]] == ["login.success"]
    by_subject = (await gql(LOG, {"filter": {"subjectId": to_global_id("Staff", other.id)}}, token=token))["auditLog"]
    assert [e["node"]["action"] for e in by_subject["edges"]] == ["staff.update", "login.success"]
    window = {"from": start.isoformat(), "to": (start + timedelta(minutes=1)).isoformat()}
    by_time = (await gql(LOG, {"filter": window}, token=token))["auditLog"]
    assert [e["node"]["action"] for e in by_time["edges"]] == ["staff.update"]
    backwards = {"from": window["to"], "to": window["from"]}
    errors = await gql.errors(LOG, {"filter": backwards}, token=token)
    assert errors[0]["extensions"]["code"] == "INVALID"


async def test_newest_first(gql, admin):
    member, token = admin
    for i in range(3):
        await audit.record(Caller(member), f"test.step{i}")
    actions = [e["node"]["action"] for e in (await gql(LOG, {"first": 3}, token=token))["auditLog"]["edges"]]
    assert actions == ["test.step2", "test.step1", "test.step0"]


async def test_no_api_changes_or_deletes_an_entry(gql, admin):
    _, token = admin
    mutations = (await gql("{ __schema { mutationType { fields { name } } } }", token=token))["__schema"][
        "mutationType"
    ]["fields"]
    audit_mutations = [f["name"] for f in mutations if "audit" in f["name"].lower()]
    assert audit_mutations == ["exportAuditLog"]


async def test_entries_cannot_be_changed_or_deleted_through_the_model(admin):
    entry = await AuditEntry.first()
    entry.action = "tampered"
    with pytest.raises(PermissionError):
        await entry.save()
    with pytest.raises(PermissionError):
        await entry.delete()
    assert (await AuditEntry.get(id=entry.id)).action == "login.success"
