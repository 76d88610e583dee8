"""Notes through HTTP: on a customer, INTERNAL or CUSTOMER, who may add them, and where they show."""

from __future__ import annotations

import pytest

from models.audit import AuditEntry
from models.notes import Note
from models.staff import Role
from schema.base import to_global_id
from tests.customers.helpers import create, resident_id
from tests.interactions.helpers import HERE, THERE, codes, pk

ADD = """mutation($input: AddNoteInput!) { addNote(input: $input) {
  note { id body visibility createdAt author { id username } } errors { field message code } } }"""
NOTES = """query($id: ID!) { customer(id: $id) { notes { id body visibility author { username } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id ... on Note { body visibility author { username } } } }"""


async def add(gql, token: str, subject_id: str, body: str = "客户偏好上午来电", **fields) -> dict:
    return (await gql(ADD, {"input": {"subjectId": subject_id, "body": body, **fields}}, token=token))["addNote"]


async def added(gql, token: str, subject_id: str, body: str = "客户偏好上午来电", **fields) -> dict:
    result = await add(gql, token, subject_id, body, **fields)
    assert result["errors"] == [], result["errors"]
    return result["note"]


async def test_a_note_is_internal_by_default_and_written_by_the_caller(gql, staff_factory, customer):
    author, token = await staff_factory(Role.RELATIONSHIP_MANAGER)
    note = await added(gql, token, customer["id"], body="  客户偏好上午来电  ")
    assert note["body"] == "客户偏好上午来电" and note["visibility"] == "INTERNAL"
    assert note["author"] == {"id": to_global_id("Staff", author.id), "username": author.username}
    assert note["createdAt"]
    stored = await Note.get(id=pk(note["id"]))
    assert (stored.customer_id, stored.author_id, stored.visibility) == (pk(customer["id"]), author.id, "INTERNAL")
    audit = await AuditEntry.get(action="note.add")
    assert (audit.actor_id, audit.subject_type, audit.subject_id) == (author.id, "Note", str(stored.id))


async def test_a_note_told_to_the_customer(gql, admin, customer):
    note = await added(gql, admin[1], customer["id"], body="已告知客户补卡需5个工作日", visibility="CUSTOMER")
    assert note["visibility"] == "CUSTOMER"
    assert (await Note.get(id=pk(note["id"]))).visibility == "CUSTOMER"
    internal = await added(gql, admin[1], customer["id"], visibility="INTERNAL")
    assert internal["visibility"] == "INTERNAL"


@pytest.mark.parametrize("body", ["", "  \n\t "])
async def test_a_blank_body_is_required(gql, admin, customer, body):
    result = await add(gql, admin[1], customer["id"], body=body)
    assert result["note"] is None and codes(result) == [("REQUIRED", ["body"])]
    assert await Note.all().count() == 0
    assert await AuditEntry.filter(action="note.add.rejected").count() == 1


async def test_a_too_long_body_is_invalid(gql, admin, customer):
    result = await add(gql, admin[1], customer["id"], body="字" * 10_001)
    assert codes(result) == [("INVALID", ["body"])]
    assert await Note.all().count() == 0


async def test_an_unknown_or_foreign_subject_is_not_found(gql, admin, customer):
    _, token = admin
    same_number = pk(customer["id"])  # other kinds of id with the number of an existing customer
    for subject in (
        to_global_id("Staff", same_number),
        to_global_id("AuditEntry", same_number),
        to_global_id("Interaction", same_number),
        to_global_id("Customer", same_number + 1000),
        to_global_id("Customer", "abc"),
        "not-an-id",
    ):
        result = await add(gql, token, subject)
        assert result["note"] is None and codes(result) == [("NOT_FOUND", ["subjectId"])], subject
    assert await Note.all().count() == 0


async def test_an_erased_customer_takes_no_new_notes(gql, admin, customer):
    erased = await gql(
        """mutation($input: EraseCustomerInput!) { eraseCustomer(input: $input) { errors { code } } }""",
        {"input": {"id": customer["id"], "reason": "PIPL art. 47 request, ticket 7"}},
        token=admin[1],
    )
    assert erased["eraseCustomer"]["errors"] == []
    result = await add(gql, admin[1], customer["id"])
    assert codes(result) == [("INVALID", ["subjectId"])]
    assert await Note.all().count() == 0


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_a_hidden_customer_of_another_branch_is_not_found(gql, admin, staff_factory, role):
    there = await create(gql, admin[1], branch=THERE)
    _, bound = await staff_factory(role, branch=HERE)
    result = await add(gql, bound, there["id"])
    assert codes(result) == [("NOT_FOUND", ["subjectId"])]
    assert await Note.all().count() == 0


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
async def test_read_only_roles_may_not_add_notes(gql, staff_factory, customer, role):
    _, token = await staff_factory(role)
    result = await add(gql, token, customer["id"])
    assert result["note"] is None and codes(result) == [("FORBIDDEN", None)]
    assert await Note.all().count() == 0


@pytest.mark.parametrize("role", [Role.COMPLAINT_HANDLER, Role.SERVICE_AGENT, Role.MANAGER])
async def test_working_roles_may_add_notes(gql, staff_factory, customer, role):
    member, token = await staff_factory(role)
    note = await added(gql, token, customer["id"])
    assert note["author"]["username"] == member.username
    assert await Note.filter(author_id=member.id).count() == 1


async def test_customer_notes_newest_first_with_their_authors(gql, admin, staff_factory, customer):
    other = await create(gql, admin[1], name="李四", idNumber=resident_id(sequence="135"), phone=None, email=None)
    agent, agent_token = await staff_factory(Role.SERVICE_AGENT)
    handler, handler_token = await staff_factory(Role.COMPLAINT_HANDLER)
    await added(gql, agent_token, customer["id"], body="first")
    await added(gql, handler_token, customer["id"], body="second", visibility="CUSTOMER")
    await added(gql, admin[1], other["id"], body="about someone else")
    await added(gql, agent_token, customer["id"], body="third")
    notes = (await gql(NOTES, {"id": customer["id"]}, token=admin[1]))["customer"]["notes"]
    assert [(n["body"], n["visibility"], n["author"]["username"]) for n in notes] == [
        ("third", "INTERNAL", agent.username),
        ("second", "CUSTOMER", handler.username),
        ("first", "INTERNAL", agent.username),
    ]
    others = (await gql(NOTES, {"id": other["id"]}, token=admin[1]))["customer"]["notes"]
    assert [n["body"] for n in others] == ["about someone else"]


async def test_a_note_by_its_node_id(gql, admin, staff_factory):
    here = await create(gql, admin[1], branch=HERE)
    there = await create(
        gql, admin[1], name="李四", idNumber=resident_id(sequence="135"), phone=None, email=None, branch=THERE
    )
    shown = await added(gql, admin[1], here["id"], body="北京的备注", visibility="CUSTOMER")
    hidden = await added(gql, admin[1], there["id"], body="上海的备注")
    assert (await gql(NODE, {"id": shown["id"]}, token=admin[1]))["node"] == {
        "__typename": "Note",
        "id": shown["id"],
        "body": "北京的备注",
        "visibility": "CUSTOMER",
        "author": {"username": admin[0].username},
    }
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=HERE)
    assert (await gql(NODE, {"id": shown["id"]}, token=bound))["node"]["body"] == "北京的备注"
    assert (await gql(NODE, {"id": hidden["id"]}, token=bound))["node"] is None
    assert (await gql(NODE, {"id": to_global_id("Note", pk(hidden["id"]) + 1000)}, token=admin[1]))["node"] is None
    _, auditor = await staff_factory(Role.AUDITOR)
    assert (await gql(NODE, {"id": hidden["id"]}, token=auditor))["node"]["body"] == "上海的备注"
