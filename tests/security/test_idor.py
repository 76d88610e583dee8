"""IDOR through `node`, `nodes` and search: a record of every Node type hangs off a customer of branch A; staff
bound to branch B, and roles that may not read a type, get null for it exactly as for an id that does not exist
(docs/DOMAIN.md: a hidden record is NOT_FOUND, never FORBIDDEN, also through node, nodes, aggregates and search)."""

from __future__ import annotations

import pytest

from models.staff import Role
from schema.base import from_global_id, to_global_id
from services import access
from tests.security.campaign import BRANCH_A, BRANCH_B, build_world, crafted_ids, node_type_names

# Who may read each Node type at all (its list query's role set), and whether it is limited to the customers
# of the reader's branch. Staff are a bank-wide directory every signed-in member reads (assignees, authors).
READERS: dict[str, tuple[frozenset[Role], bool]] = {
    "AuditEntry": (access.AUDIT_READERS, False),
    "Complaint": (access.ALL_ROLES, True),
    "Customer": (access.ALL_ROLES, True),
    "FollowUp": (access.ALL_ROLES, True),
    "Interaction": (access.ALL_ROLES, True),
    "Job": (access.JOB_OVERSEERS, False),  # and whoever started the job
    "Note": (access.ALL_ROLES, True),
    "Notification": (access.ALL_ROLES, True),
    "ProductHolding": (access.ALL_ROLES, True),
    "Segment": (access.SEGMENT_READERS, False),
    "Staff": (access.ALL_ROLES, False),
    "SurveyInvitation": (access.SURVEY_READERS, True),
    "SurveyResponse": (access.SURVEY_READERS, True),
    "SurveyTemplate": (access.SURVEY_READERS, False),
}

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


def test_every_node_type_is_covered():
    assert sorted(READERS) == node_type_names(), "a new Node type: say who reads it in READERS and build one"


def _readers() -> list[tuple[str, Role, str | None]]:
    """(label, role, branch) of every reader to try: each role bank-wide, and the branch-bound ones in B."""
    cases = [(role.value, role, None) for role in Role]
    cases += [
        (f"{role.value}@{BRANCH_B}", role, BRANCH_B) for role in sorted(access.BRANCH_BOUND, key=list(Role).index)
    ]
    cases += [
        (f"{role.value}@{BRANCH_A}", role, BRANCH_A) for role in sorted(access.BRANCH_BOUND, key=list(Role).index)
    ]
    return cases


def _may_see(type_name: str, role: Role, branch: str | None) -> bool:
    roles, branch_scoped = READERS[type_name]
    if role not in roles:
        return False
    return not (branch_scoped and role in access.BRANCH_BOUND and branch not in (None, BRANCH_A))


def _missing(global_id: str) -> str:
    """An id of the same type for no row at all."""
    type_name, _ = from_global_id(global_id)
    return to_global_id(type_name, 987654)


@pytest.fixture
async def world(gql, admin):
    return await build_world(gql, admin[1])


async def _node_answers(gql, token: str, ids: list[str]) -> list[dict]:
    """`node(id:)` for each id, as each would be answered alone: aliases, 15 to a request (the alias limit is
    30), and each alias's errors picked out by their path."""
    answers = []
    for start in range(0, len(ids), 15):
        chunk = ids[start : start + 15]
        variables = {f"i{n}": global_id for n, global_id in enumerate(chunk)}
        declared = ", ".join(f"$i{n}: ID!" for n in range(len(chunk)))
        fields = " ".join(f"n{n}: node(id: $i{n}) {{ __typename id }}" for n in range(len(chunk)))
        body = (await gql.raw(f"query({declared}) {{ {fields} }}", variables, token=token)).json()
        assert body.get("data") is not None, f"the request itself was refused: {body}"
        assert all(e.get("path") for e in body.get("errors") or []), body
        for n in range(len(chunk)):
            errors = [
                {"message": e.get("message"), "code": (e.get("extensions") or {}).get("code")}
                for e in body.get("errors") or []
                if (e.get("path") or [None])[0] == f"n{n}"
            ]
            answers.append({"node": (body.get("data") or {}).get(f"n{n}"), "errors": errors})
    return answers


async def test_node_and_nodes_hide_what_a_reader_may_not_see(gql, world, staff_factory):
    assert sorted(world.ids) == node_type_names(), "the world lacks a record of some Node type"
    wrong: list[str] = []
    all_ids = world.all_ids()
    missing_ids = [_missing(global_id) for global_id in all_ids]
    for label, role, branch in _readers():
        _, token = await staff_factory(role, branch=branch)
        listed_body = (await gql.raw(NODES, {"ids": all_ids}, token=token)).json()
        if listed_body.get("errors"):
            wrong.append(f"{label}: nodes(ids:) answered errors {listed_body['errors']}")
            continue
        listed = dict(zip(all_ids, listed_body["data"]["nodes"], strict=True))
        answers = await _node_answers(gql, token, all_ids + missing_ids)
        present, absent = answers[: len(all_ids)], answers[len(all_ids) :]
        for global_id, answer, nothing in zip(all_ids, present, absent, strict=True):
            type_name = from_global_id(global_id)[0]
            seen = answer["node"]
            if _may_see(type_name, role, branch):
                if seen is None or seen["id"] != global_id:
                    wrong.append(f"{label}: node({type_name}) should be visible, got {answer}")
                continue
            if seen is not None:
                wrong.append(f"{label}: node({type_name}) LEAKS {seen}")
            if any(e["code"] != "NOT_FOUND" for e in answer["errors"]):
                wrong.append(f"{label}: node({type_name}) hidden with {answer['errors']}")
            if answer != nothing:
                wrong.append(f"{label}: node({type_name}) differs from a missing id: {answer} vs {nothing}")
            if listed[global_id] is not None:
                wrong.append(f"{label}: nodes(ids:) LEAKS {type_name} {listed[global_id]}")
    assert wrong == [], "\n".join(wrong)


SEARCHES = {
    name: f"query($s: String!) {{ {name}(filter: {{search: $s}}) {{ totalCount edges {{ node {{ id }} }} }} }}"
    for name in ("customers", "interactions", "complaints")
}


async def test_search_by_staff_of_another_branch_finds_nothing(gql, world, staff_factory):
    customer = world.customer
    terms = {
        "customers": [
            customer["name"], customer["customerNo"], "13900000301", "+86 139 0000 0301", customer["email"],
            customer["idNumber"], "秘密", "%", "_",
        ],
        "interactions": ["咨询", "定期", "%"],
        "complaints": ["年费", "信用卡", "CMP-", "%"],
    }  # fmt: skip
    wrong = []
    # The positive control: an ADMIN finds the customer by each of its own terms.
    for term in terms["customers"][:2]:
        found = (await gql(SEARCHES["customers"], {"s": term}, token=world.admin_token))["customers"]
        assert found["totalCount"] >= 1, term
    for role in sorted(access.BRANCH_BOUND, key=list(Role).index):
        _, token = await staff_factory(role, branch=BRANCH_B)
        for query_name, query_terms in terms.items():
            for term in query_terms:
                body = (await gql.raw(SEARCHES[query_name], {"s": term}, token=token)).json()
                if body.get("errors"):
                    wrong.append(f"{role.value}@B {query_name}({term!r}): errors {body['errors']}")
                    continue
                result = body["data"][query_name]
                if result["totalCount"] or result["edges"]:
                    wrong.append(f"{role.value}@B {query_name}({term!r}) LEAKS {result}")
    assert wrong == [], "\n".join(wrong)


async def test_aggregates_of_another_branch_count_nothing(gql, world, staff_factory):
    """The branch-bound reader of portraits sees no customer, AUM or complaint of branch A in aggregates."""
    _, token = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=BRANCH_B)
    tiers = (await gql("{ tierDistribution { tier customers aum } }", token=token))["tierDistribution"]
    assert all(bucket["customers"] == 0 for bucket in tiers), tiers
    assert all(float(bucket["aum"]) == 0 for bucket in tiers), tiers


async def test_crafted_ids_are_null_through_node_and_nodes(gql, admin):
    """Ids of no row: huge, negative, fractional, non-ASCII digits ("²" passes str.isdigit() but not int()),
    unknown types, garbage. Each is null, as an id of a hidden record is; never an error."""
    ids = crafted_ids(node_type_names())
    wrong = []
    for global_id, answer in zip(ids, await _node_answers(gql, admin[1], ids), strict=True):
        if answer != {"node": None, "errors": []}:
            wrong.append(f"node({global_id!r}): {answer}")
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        body = (await gql.raw(NODES, {"ids": chunk}, token=admin[1])).json()
        if body != {"data": {"nodes": [None] * len(chunk)}}:
            wrong.append(f"nodes({chunk[:3]}...): {str(body)[:500]}")
    assert wrong == [], "\n".join(wrong)
