"""Follow-ups through HTTP: assignment to a person or a department, who may complete, overdue, filters, scoping."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from models.audit import AuditEntry
from models.follow_ups import FollowUp
from models.staff import Department, Role, Staff
from schema.base import to_global_id
from services import clock
from tests.customers.helpers import create
from tests.interactions.helpers import HERE, THERE, at, audit_of, codes, pk, second_customer

FIELDS = """id title description department priority status dueAt overdue createdAt completedAt
  customer { id } assignee { id username } createdBy { username }"""
CREATE = f"""mutation($input: CreateFollowUpInput!) {{ createFollowUp(input: $input) {{
  followUp {{ {FIELDS} }} errors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateFollowUpInput!) {{ updateFollowUp(input: $input) {{
  followUp {{ {FIELDS} }} errors {{ field message code }} }} }}"""
LIST = """query($filter: FollowUpFilter, $first: Int) { followUps(filter: $filter, first: $first) {
  totalCount edges { node { id title overdue } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id ... on FollowUp { title overdue status } } }"""
CUSTOMER_FOLLOW_UPS = """query($id: ID!, $first: Int, $after: String) { customer(id: $id) {
  followUps(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { title customer { id } } } } } }"""


def sid(member: Staff) -> str:
    return to_global_id("Staff", member.id)


async def create_follow_up(gql, token: str, **fields) -> dict:
    """The createFollowUp payload."""
    return (await gql(CREATE, {"input": {"title": "回电客户确认材料", **fields}}, token=token))["createFollowUp"]


async def created(gql, token: str, **fields) -> dict:
    result = await create_follow_up(gql, token, **fields)
    assert result["errors"] == [], result["errors"]
    return result["followUp"]


async def update(gql, token: str, follow_up_id: str, **fields) -> dict:
    return (await gql(UPDATE, {"input": {"id": follow_up_id, **fields}}, token=token))["updateFollowUp"]


# --- creating --------------------------------------------------------------------------------------------


async def test_assigned_to_a_person_the_department_defaults_to_theirs(gql, staff_factory, customer):
    author, token = await staff_factory(Role.RELATIONSHIP_MANAGER, department=Department.BRANCH, branch="北京朝阳支行")
    assignee, _ = await staff_factory(Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS)
    due = (clock.now() + timedelta(days=2)).replace(microsecond=0)
    made = await created(
        gql,
        token,
        assigneeId=sid(assignee),
        customerId=customer["id"],
        dueAt=due.isoformat(),
        description="  请核对身份证复印件  ",
    )
    assert made["assignee"] == {"id": sid(assignee), "username": assignee.username}
    assert made["department"] == "COMPLAINTS"
    assert (made["status"], made["priority"], made["overdue"]) == ("OPEN", "NORMAL", False)
    assert made["completedAt"] is None and at(made["dueAt"]) == due
    assert made["description"] == "请核对身份证复印件" and made["title"] == "回电客户确认材料"
    assert made["customer"] == {"id": customer["id"]}
    assert made["createdBy"] == {"username": author.username}
    stored = await FollowUp.get(id=pk(made["id"]))
    assert (stored.assignee_id, stored.department, stored.created_by_id) == (assignee.id, "COMPLAINTS", author.id)
    assert stored.customer_id == pk(customer["id"])
    audit = await audit_of("follow_up.create", made["id"])
    assert audit.actor_id == author.id and audit.subject_type == "FollowUp"


async def test_a_department_given_with_a_person_is_kept(gql, admin, staff_factory):
    assignee, _ = await staff_factory(Role.SERVICE_AGENT, department=Department.CALL_CENTER)
    made = await created(gql, admin[1], assigneeId=sid(assignee), department="RISK", priority="URGENT")
    assert (made["department"], made["priority"]) == ("RISK", "URGENT")


async def test_assigned_to_a_department_only_and_about_no_customer(gql, admin):
    made = await created(gql, admin[1], department="COMPLIANCE", title="  季度双录抽检  ")
    assert made["assignee"] is None and made["department"] == "COMPLIANCE"
    assert made["customer"] is None and made["dueAt"] is None and made["overdue"] is False
    assert made["title"] == "季度双录抽检"
    stored = await FollowUp.get(id=pk(made["id"]))
    assert stored.assignee_id is None and stored.customer_id is None


async def test_neither_a_person_nor_a_department_is_required(gql, admin, customer):
    result = await create_follow_up(gql, admin[1], customerId=customer["id"])
    assert result["followUp"] is None and codes(result) == [("REQUIRED", ["assigneeId"])]
    assert await FollowUp.all().count() == 0
    assert await AuditEntry.filter(action="follow_up.create.rejected").count() == 1


async def test_an_unknown_or_inactive_assignee_is_not_found(gql, admin, staff_factory, customer):
    gone, _ = await staff_factory(Role.SERVICE_AGENT)
    await Staff.filter(id=gone.id).update(active=False)
    for assignee in (to_global_id("Staff", gone.id + 1000), customer["id"], sid(gone)):
        result = await create_follow_up(gql, admin[1], assigneeId=assignee, department="BRANCH")
        assert codes(result) == [("NOT_FOUND", ["assigneeId"])], assignee
    assert await FollowUp.all().count() == 0


async def test_an_unknown_or_hidden_customer_is_not_found(gql, admin, staff_factory):
    there = await create(gql, admin[1], branch=THERE)
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=HERE)
    hidden = await create_follow_up(gql, bound, customerId=there["id"], department="BRANCH")
    assert codes(hidden) == [("NOT_FOUND", ["customerId"])]
    unknown = await create_follow_up(
        gql, admin[1], customerId=to_global_id("Customer", pk(there["id"]) + 99), department="BRANCH"
    )
    assert codes(unknown) == [("NOT_FOUND", ["customerId"])]
    assert await FollowUp.all().count() == 0


async def test_a_due_time_in_the_past_is_invalid(gql, admin):
    result = await create_follow_up(
        gql, admin[1], department="BRANCH", dueAt=(clock.now() - timedelta(hours=1)).isoformat()
    )
    assert codes(result) == [("INVALID", ["dueAt"])]
    assert await FollowUp.all().count() == 0


@pytest.mark.parametrize("title", ["", "   "])
async def test_a_blank_title_is_required(gql, admin, title):
    result = await create_follow_up(gql, admin[1], department="BRANCH", title=title)
    assert codes(result) == [("REQUIRED", ["title"])]
    assert await FollowUp.all().count() == 0


async def test_a_too_long_title_is_invalid(gql, admin):
    result = await create_follow_up(gql, admin[1], department="BRANCH", title="x" * 201)
    assert codes(result) == [("INVALID", ["title"])]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
async def test_read_only_roles_may_not_create(gql, staff_factory, role):
    _, token = await staff_factory(role)
    result = await create_follow_up(gql, token, department="BRANCH")
    assert codes(result) == [("FORBIDDEN", None)]
    assert await FollowUp.all().count() == 0


@pytest.mark.parametrize("role", [Role.COMPLAINT_HANDLER, Role.SERVICE_AGENT, Role.RELATIONSHIP_MANAGER, Role.MANAGER])
async def test_working_roles_may_create(gql, staff_factory, customer, role):
    member, token = await staff_factory(role)
    made = await created(gql, token, department="COMPLAINTS", customerId=customer["id"])
    assert made["createdBy"]["username"] == member.username


async def test_a_due_time_without_an_offset_is_a_client_error_not_a_server_error(gql, admin):
    body = (
        await gql.raw(
            CREATE, {"input": {"title": "t", "department": "BRANCH", "dueAt": "2099-05-01T10:00:00"}}, token=admin[1]
        )
    ).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "UTC offset" in body["errors"][0]["message"]


# --- updating: completing, reassigning, cancelling -------------------------------------------------------


@pytest.fixture
async def team(staff_factory):
    """A call-centre agent, a colleague in the same department, someone from another, and a manager."""
    return {
        "agent": await staff_factory(Role.SERVICE_AGENT, department=Department.CALL_CENTER),
        "colleague": await staff_factory(Role.SERVICE_AGENT, department=Department.CALL_CENTER),
        "outsider": await staff_factory(Role.RELATIONSHIP_MANAGER, department=Department.OPERATIONS),  # bank-wide
        "handler": await staff_factory(Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS),
        "manager": await staff_factory(Role.MANAGER, department=Department.OPERATIONS),
    }


async def test_the_assignee_completes_it(gql, admin, team, customer):
    agent, token = team["agent"]
    made = await created(
        gql,
        admin[1],
        assigneeId=sid(agent),
        customerId=customer["id"],
        dueAt=(clock.now() + timedelta(hours=3)).isoformat(),
    )
    before = clock.now()
    result = await update(gql, token, made["id"], status="DONE")
    assert result["errors"] == []
    done = result["followUp"]
    assert done["status"] == "DONE" and at(done["completedAt"]) >= before and done["overdue"] is False
    assert done["assignee"]["id"] == sid(agent) and done["department"] == "CALL_CENTER"
    stored = await FollowUp.get(id=pk(made["id"]))
    assert stored.status == "DONE" and stored.completed_at is not None
    audit = await audit_of("follow_up.update", made["id"])
    assert audit.actor_id == agent.id and audit.subject_type == "FollowUp"
    assert audit.detail["input"] == ["id", "status"]


async def test_the_assignee_completes_it_though_it_names_another_department(gql, admin, team):
    agent, token = team["agent"]  # in CALL_CENTER
    made = await created(gql, admin[1], assigneeId=sid(agent), department="RISK")
    result = await update(gql, token, made["id"], status="DONE")
    assert result["errors"] == [] and result["followUp"]["status"] == "DONE"


async def test_a_member_of_the_assigned_department_completes_it(gql, admin, team):
    _colleague, token = team["colleague"]
    made = await created(gql, admin[1], department="CALL_CENTER")
    result = await update(gql, token, made["id"], status="DONE")
    assert result["errors"] == [] and result["followUp"]["status"] == "DONE"


@pytest.mark.parametrize("who", ["manager", "admin"])
async def test_a_manager_or_admin_completes_anyones(gql, admin, team, who):
    made = await created(gql, admin[1], assigneeId=sid(team["handler"][0]))
    token = admin[1] if who == "admin" else team["manager"][1]
    result = await update(gql, token, made["id"], status="DONE")
    assert result["errors"] == [] and result["followUp"]["status"] == "DONE"


async def test_someone_else_may_not_complete_it(gql, admin, team):
    made = await created(gql, admin[1], assigneeId=sid(team["agent"][0]))
    outsider, token = team["outsider"]
    result = await update(gql, token, made["id"], status="DONE")
    assert result["followUp"] is None and [e["code"] for e in result["errors"]] == ["FORBIDDEN"]
    assert (await FollowUp.get(id=pk(made["id"]))).status == "OPEN"
    rejected = await AuditEntry.get(action="follow_up.update.rejected")
    assert rejected.actor_id == outsider.id and rejected.subject_id == str(pk(made["id"]))
    # Nor may they take it over by reassigning it to themselves.
    grab = await update(gql, token, made["id"], assigneeId=sid(outsider))
    assert [e["code"] for e in grab["errors"]] == ["FORBIDDEN"]
    assert (await FollowUp.get(id=pk(made["id"]))).assignee_id == team["agent"][0].id


async def test_a_department_follow_up_is_closed_to_other_departments(gql, admin, team):
    made = await created(gql, admin[1], department="COMPLAINTS")
    result = await update(gql, team["agent"][1], made["id"], status="DONE")
    assert [e["code"] for e in result["errors"]] == ["FORBIDDEN"]
    ok = await update(gql, team["handler"][1], made["id"], status="DONE")
    assert ok["errors"] == []


async def test_completing_twice_is_an_invalid_transition(gql, admin, team):
    agent, token = team["agent"]
    made = await created(gql, admin[1], assigneeId=sid(agent))
    assert (await update(gql, token, made["id"], status="DONE"))["errors"] == []
    first_completed = (await FollowUp.get(id=pk(made["id"]))).completed_at
    again = await update(gql, token, made["id"], status="DONE")
    assert codes(again) == [("INVALID_TRANSITION", ["id"])]
    assert (await FollowUp.get(id=pk(made["id"]))).completed_at == first_completed


async def test_cancelling_closes_it(gql, admin, team):
    agent, token = team["agent"]
    made = await created(gql, admin[1], assigneeId=sid(agent), dueAt=(clock.now() + timedelta(hours=1)).isoformat())
    result = await update(gql, token, made["id"], status="CANCELLED")
    assert result["errors"] == []
    assert result["followUp"]["status"] == "CANCELLED" and result["followUp"]["completedAt"] is not None
    clock.travel(timedelta(hours=2))
    assert (await gql(NODE, {"id": made["id"]}, token=admin[1]))["node"]["overdue"] is False
    done = await update(gql, token, made["id"], status="DONE")
    assert codes(done) == [("INVALID_TRANSITION", ["id"])]
    assert (await FollowUp.get(id=pk(made["id"]))).status == "CANCELLED"


async def test_reassigning_to_a_person_and_a_department(gql, admin, team):
    agent, agent_token = team["agent"]
    handler, handler_token = team["handler"]
    made = await created(gql, admin[1], assigneeId=sid(agent))
    moved = await update(
        gql, agent_token, made["id"], assigneeId=sid(handler), department="COMPLAINTS", priority="HIGH"
    )
    assert moved["errors"] == []
    assert moved["followUp"]["assignee"]["id"] == sid(handler)
    assert (moved["followUp"]["department"], moved["followUp"]["priority"], moved["followUp"]["status"]) == (
        "COMPLAINTS",
        "HIGH",
        "OPEN",
    )
    stored = await FollowUp.get(id=pk(made["id"]))
    assert (stored.assignee_id, stored.department) == (handler.id, "COMPLAINTS")
    # It is no longer the agent's to complete, but the new assignee's.
    assert [e["code"] for e in (await update(gql, agent_token, made["id"], status="DONE"))["errors"]] == ["FORBIDDEN"]
    assert (await update(gql, handler_token, made["id"], status="DONE"))["errors"] == []


async def test_handing_over_to_the_department_alone(gql, admin, team):
    agent, token = team["agent"]
    made = await created(gql, admin[1], assigneeId=sid(agent))
    result = await update(gql, token, made["id"], assigneeId=None)
    assert result["errors"] == []
    assert result["followUp"]["assignee"] is None and result["followUp"]["department"] == "CALL_CENTER"
    assert (await FollowUp.get(id=pk(made["id"]))).assignee_id is None
    # The colleague in the department can now complete it.
    assert (await update(gql, team["colleague"][1], made["id"], status="DONE"))["errors"] == []


async def test_leaving_neither_a_person_nor_a_department_is_required(gql, admin, team):
    agent, token = team["agent"]
    made = await created(gql, admin[1], assigneeId=sid(agent))
    result = await update(gql, token, made["id"], assigneeId=None, department=None)
    assert codes(result) == [("REQUIRED", ["assigneeId"])]
    stored = await FollowUp.get(id=pk(made["id"]))
    assert (stored.assignee_id, stored.department) == (agent.id, "CALL_CENTER")


async def test_reassigning_to_an_unknown_person_is_not_found(gql, admin):
    made = await created(gql, admin[1], department="BRANCH")
    result = await update(gql, admin[1], made["id"], assigneeId=to_global_id("Staff", 999_999))
    assert codes(result) == [("NOT_FOUND", ["assigneeId"])]


async def test_updating_an_unknown_or_hidden_follow_up_is_not_found(gql, admin, staff_factory):
    there = await create(gql, admin[1], branch=THERE)
    made = await created(gql, admin[1], department="BRANCH", customerId=there["id"])
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=HERE, department=Department.BRANCH)
    hidden = await update(gql, bound, made["id"], status="DONE")
    assert codes(hidden) == [("NOT_FOUND", ["id"])]
    unknown = await update(gql, admin[1], to_global_id("FollowUp", pk(made["id"]) + 1000), status="DONE")
    assert codes(unknown) == [("NOT_FOUND", ["id"])]
    assert (await FollowUp.get(id=pk(made["id"]))).status == "OPEN"


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
async def test_read_only_roles_may_not_update(gql, admin, staff_factory, role):
    made = await created(gql, admin[1], department="OPERATIONS")
    _, token = await staff_factory(role, department=Department.OPERATIONS)
    result = await update(gql, token, made["id"], status="DONE")
    assert codes(result) == [("FORBIDDEN", None)]
    assert (await FollowUp.get(id=pk(made["id"]))).status == "OPEN"


# --- overdue ---------------------------------------------------------------------------------------------


async def test_overdue_is_derived_from_the_due_time(gql, admin):
    token = admin[1]
    timed = await created(
        gql, token, department="BRANCH", title="timed", dueAt=(clock.now() + timedelta(hours=2)).isoformat()
    )
    untimed = await created(gql, token, department="BRANCH", title="untimed")
    assert timed["overdue"] is False and untimed["overdue"] is False
    clock.travel(timedelta(hours=1))
    assert (await gql(NODE, {"id": timed["id"]}, token=token))["node"]["overdue"] is False
    clock.travel(timedelta(hours=2))
    assert (await gql(NODE, {"id": timed["id"]}, token=token))["node"]["overdue"] is True
    assert (await gql(NODE, {"id": untimed["id"]}, token=token))["node"]["overdue"] is False
    listed = (await gql(LIST, {}, token=token))["followUps"]["edges"]
    assert {e["node"]["title"]: e["node"]["overdue"] for e in listed} == {"timed": True, "untimed": False}
    # Completing it late: no longer overdue.
    done = await update(gql, token, timed["id"], status="DONE")
    assert done["followUp"]["overdue"] is False
    assert (await gql(NODE, {"id": timed["id"]}, token=token))["node"]["overdue"] is False


async def test_moving_the_due_time_later_clears_overdue(gql, admin):
    token = admin[1]
    made = await created(gql, token, department="BRANCH", dueAt=(clock.now() + timedelta(hours=1)).isoformat())
    clock.travel(timedelta(hours=2))
    assert (await gql(NODE, {"id": made["id"]}, token=token))["node"]["overdue"] is True
    moved = await update(gql, token, made["id"], dueAt=(clock.now() + timedelta(days=1)).isoformat())
    assert moved["errors"] == [] and moved["followUp"]["overdue"] is False
    cleared = await update(gql, token, made["id"], dueAt=None)
    assert cleared["followUp"]["dueAt"] is None and cleared["followUp"]["overdue"] is False


# --- the list and its filters ----------------------------------------------------------------------------


@pytest.fixture
async def seeded(gql, admin, staff_factory):
    """Five follow-ups; two hours after they were made only F1 is overdue (F4 is done, F5 cancelled)."""
    token = admin[1]
    c1 = await create(gql, token, branch=HERE)
    c2 = await second_customer(gql, token, branch=THERE)
    a1, _ = await staff_factory(Role.SERVICE_AGENT, department=Department.CALL_CENTER)
    a2, _ = await staff_factory(Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS)

    def due(hours: int) -> str:
        return (clock.now() + timedelta(hours=hours)).isoformat()

    f = {
        1: await created(gql, token, title="F1", assigneeId=sid(a1), customerId=c1["id"], dueAt=due(1)),
        2: await created(gql, token, title="F2", department="COMPLAINTS", customerId=c2["id"], dueAt=due(5)),
        3: await created(gql, token, title="F3", assigneeId=sid(a2)),
        4: await created(gql, token, title="F4", department="OPERATIONS", customerId=c1["id"], dueAt=due(1)),
        5: await created(gql, token, title="F5", assigneeId=sid(a1), customerId=c2["id"], dueAt=due(1)),
    }
    assert (await update(gql, token, f[4]["id"], status="DONE"))["errors"] == []
    assert (await update(gql, token, f[5]["id"], status="CANCELLED"))["errors"] == []
    clock.travel(timedelta(hours=2))
    return {"c1": c1, "c2": c2, "a1": a1, "a2": a2, "f": f, "token": token}


async def titles(gql, token: str, filter_: dict | None) -> set[str]:
    data = (await gql(LIST, {"filter": filter_}, token=token))["followUps"]
    found = [e["node"]["title"] for e in data["edges"]]
    assert data["totalCount"] == len(found) and len(set(found)) == len(found)
    return set(found)


def named(*numbers: int) -> set[str]:
    return {f"F{n}" for n in numbers}


async def test_the_list_without_a_filter_is_newest_first(gql, seeded):
    data = (await gql(LIST, {}, token=seeded["token"]))["followUps"]
    assert [e["node"]["title"] for e in data["edges"]] == ["F5", "F4", "F3", "F2", "F1"]


async def test_filter_by_assignee(gql, seeded):
    token = seeded["token"]
    assert await titles(gql, token, {"assigneeId": sid(seeded["a1"])}) == named(1, 5)
    assert await titles(gql, token, {"assigneeId": sid(seeded["a2"])}) == named(3)


async def test_filter_by_department(gql, seeded):
    token = seeded["token"]
    assert await titles(gql, token, {"department": "COMPLAINTS"}) == named(2, 3)  # F3 through its assignee
    assert await titles(gql, token, {"department": "CALL_CENTER"}) == named(1, 5)
    assert await titles(gql, token, {"department": "RISK"}) == set()


async def test_filter_by_status(gql, seeded):
    token = seeded["token"]
    assert await titles(gql, token, {"status": ["OPEN"]}) == named(1, 2, 3)
    assert await titles(gql, token, {"status": ["DONE", "CANCELLED"]}) == named(4, 5)
    assert await titles(gql, token, {"status": ["CANCELLED"]}) == named(5)


async def test_filter_by_customer(gql, seeded):
    token = seeded["token"]
    assert await titles(gql, token, {"customerId": seeded["c1"]["id"]}) == named(1, 4)
    assert await titles(gql, token, {"customerId": seeded["c2"]["id"]}) == named(2, 5)


async def test_filter_by_overdue(gql, seeded):
    token = seeded["token"]
    assert await titles(gql, token, {"overdue": True}) == named(1)
    assert await titles(gql, token, {"overdue": False}) == named(2, 3, 4, 5)
    clock.travel(timedelta(hours=4))  # now past F2's due time too
    assert await titles(gql, token, {"overdue": True}) == named(1, 2)
    assert await titles(gql, token, {"overdue": False}) == named(3, 4, 5)


async def test_filters_combine(gql, seeded):
    token = seeded["token"]
    assert await titles(gql, token, {"department": "CALL_CENTER", "status": ["OPEN"]}) == named(1)
    assert await titles(gql, token, {"customerId": seeded["c1"]["id"], "overdue": False}) == named(4)


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_may_read_the_list(gql, staff_factory, seeded, role):
    _, token = await staff_factory(role)
    assert await titles(gql, token, None) == named(1, 2, 3, 4, 5)


# --- branch scoping and a customer's follow-ups ----------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_branch_bound_staff_see_follow_ups_of_their_branch_and_those_about_no_customer(
    gql, staff_factory, seeded, role
):
    _, bound = await staff_factory(role, branch=HERE)
    assert await titles(gql, bound, None) == named(1, 3, 4)
    assert await titles(gql, bound, {"customerId": seeded["c2"]["id"]}) == set()
    assert await titles(gql, bound, {"assigneeId": sid(seeded["a1"])}) == named(1)
    f = seeded["f"]
    assert (await gql(NODE, {"id": f[2]["id"]}, token=bound))["node"] is None
    assert (await gql(NODE, {"id": f[1]["id"]}, token=bound))["node"] == {
        "__typename": "FollowUp",
        "id": f[1]["id"],
        "title": "F1",
        "overdue": True,
        "status": "OPEN",
    }


async def test_customer_follow_ups_newest_first(gql, seeded):
    token = seeded["token"]
    data = (await gql(CUSTOMER_FOLLOW_UPS, {"id": seeded["c1"]["id"]}, token=token))["customer"]["followUps"]
    assert data["totalCount"] == 2
    assert [e["node"]["title"] for e in data["edges"]] == ["F4", "F1"]
    assert {e["node"]["customer"]["id"] for e in data["edges"]} == {seeded["c1"]["id"]}
    first = (await gql(CUSTOMER_FOLLOW_UPS, {"id": seeded["c2"]["id"], "first": 1}, token=token))["customer"][
        "followUps"
    ]
    assert [e["node"]["title"] for e in first["edges"]] == ["F5"] and first["pageInfo"]["hasNextPage"] is True
    rest = (
        await gql(
            CUSTOMER_FOLLOW_UPS,
            {"id": seeded["c2"]["id"], "first": 1, "after": first["pageInfo"]["endCursor"]},
            token=token,
        )
    )["customer"]["followUps"]
    assert [e["node"]["title"] for e in rest["edges"]] == ["F2"] and rest["pageInfo"]["hasNextPage"] is False


async def test_a_due_time_given_in_beijing_time_on_create_counts_by_instant(gql, admin):
    token, beijing = admin[1], timezone(timedelta(hours=8))
    made = await created(
        gql, token, department="BRANCH", dueAt=(clock.now() + timedelta(hours=1)).astimezone(beijing).isoformat()
    )
    clock.travel(timedelta(hours=2))
    assert (await gql(NODE, {"id": made["id"]}, token=token))["node"]["overdue"] is True
    assert await titles(gql, token, {"overdue": True}) == {made["title"]}
    assert await titles(gql, token, {"overdue": False}) == set()


async def test_a_due_time_given_in_beijing_time_on_update_counts_by_instant(gql, admin):
    token, beijing = admin[1], timezone(timedelta(hours=8))
    made = await created(gql, token, department="BRANCH")
    moved = await update(
        gql, token, made["id"], dueAt=(clock.now() + timedelta(hours=1)).astimezone(beijing).isoformat()
    )
    assert moved["errors"] == []
    clock.travel(timedelta(hours=2))
    assert (await gql(NODE, {"id": made["id"]}, token=token))["node"]["overdue"] is True
    assert await titles(gql, token, {"overdue": True}) == {made["title"]}
    assert await titles(gql, token, {"overdue": False}) == set()


async def test_reassigning_to_a_person_moves_the_department_with_them(gql, admin, staff_factory):
    token = admin[1]
    agent, _ = await staff_factory(Role.SERVICE_AGENT, department=Department.CALL_CENTER)
    handler, _ = await staff_factory(Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS)
    made = await created(gql, token, assigneeId=sid(agent))
    assert made["department"] == "CALL_CENTER"
    moved = await update(gql, token, made["id"], assigneeId=sid(handler))
    assert moved["errors"] == [] and moved["followUp"]["department"] == "COMPLAINTS"
    kept = await update(gql, token, made["id"], assigneeId=sid(agent), department="BRANCH")
    assert kept["followUp"]["department"] == "BRANCH"


async def test_update_refuses_a_due_time_in_the_past_like_create(gql, admin):
    token = admin[1]
    made = await created(gql, token, department="BRANCH")
    past = (clock.now() - timedelta(days=1)).isoformat()
    result = await update(gql, token, made["id"], dueAt=past)
    assert codes(result) == [("INVALID", ["dueAt"])]
