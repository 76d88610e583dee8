"""A segment's size and members are the customers list for the same filter, evaluated live: for many filters,
in the same order, page by page; for the viewer (branch scoping, masking); and the filter a segment shows is
one a client can send straight back to `customers`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.audit import AuditEntry
from models.customers import Customer
from models.staff import Role
from schema.base import to_global_id
from services import access, segments as segment_service
from services.access import Caller
from services.errors import DomainError, ErrorCode
from tests.segments.helpers import (
    CUSTOMERS,
    HERE,
    MEMBERS,
    THERE,
    book,
    create_segment,
    every_page,
    update_raw,
)
from tests.surveys.helpers import pk

EVERYONE = ["张伟", "李娜", "王芳", "赵强", "陈静", "刘洋", "杨敏"]
# (filter made from the book, the names it must find); the book: tests/segments/helpers.py
FILTERS = {
    "nothing: everyone": (lambda b: {}, EVERYONE),
    "status": (lambda b: {"status": ["DORMANT", "CLOSED"]}, ["赵强", "刘洋"]),
    "one tag": (lambda b: {"tags": ["VIP"]}, ["张伟", "李娜", "杨敏"]),
    "every tag": (lambda b: {"tags": ["VIP", "老客户"]}, ["李娜"]),
    "tiers": (lambda b: {"valueTier": ["AFFLUENT", "WEALTH"]}, ["张伟", "王芳", "陈静"]),
    "minAum": (lambda b: {"minAum": "50000"}, ["张伟", "李娜", "王芳", "陈静"]),
    "tier and status": (lambda b: {"valueTier": ["MASS"], "status": ["ACTIVE"]}, ["杨敏"]),
    "holdsProduct": (lambda b: {"holdsProduct": "TIME_DEPOSIT"}, ["张伟", "陈静"]),
    "lacksProduct and minAum": (lambda b: {"lacksProduct": "TIME_DEPOSIT", "minAum": "1"}, ["李娜", "王芳"]),
    "search by name": (lambda b: {"search": "李"}, ["李娜"]),
    "search by phone": (lambda b: {"search": "139 0000"}, ["李娜"]),
    "createdAfter": (lambda b: {"createdAfter": "2022-01-01T00:00:00+08:00"}, ["赵强", "陈静", "刘洋", "杨敏"]),
    "branch and risk": (lambda b: {"branch": HERE, "riskLevel": ["C3", "C5"]}, ["王芳", "陈静", "杨敏"]),
    "relationship manager": (lambda b: {"relationshipManagerId": to_global_id("Staff", b["rm"].id)}, ["李娜"]),
    "churn risk": (lambda b: {"minChurnRisk": 0.5}, ["赵强"]),
    "nobody": (lambda b: {"kind": "CORPORATE"}, []),
}


@pytest.fixture
async def customers_book(gql, admin, staff_factory) -> dict:
    _, token = admin
    made = await book(gql, token, staff_factory)
    # Three customers who came before 2022, for createdAfter.
    await Customer.filter(name__in=["张伟", "李娜", "王芳"]).update(created_at=datetime(2021, 6, 1, tzinfo=UTC))
    return {**made, "token": token}


async def _ids(gql, token: str, query: str, variables: dict, path: str) -> list[str]:
    return [node["id"] for node in await every_page(gql, token, query, variables, path)]


@pytest.mark.parametrize(("make_filter", "expected"), FILTERS.values(), ids=FILTERS.keys())
async def test_members_are_the_customers_list_of_the_same_filter(gql, customers_book, make_filter, expected):
    token = customers_book["token"]
    wanted = make_filter(customers_book)
    segment = await create_segment(gql, token, filter=wanted)
    members = await every_page(gql, token, MEMBERS, {"id": segment["id"]}, "node.members")
    listed = await _ids(gql, token, CUSTOMERS, {"filter": wanted}, "customers")
    assert [m["id"] for m in members] == listed  # the same customers in the same order, page by page
    assert sorted(m["name"] for m in members) == sorted(expected)
    assert segment["size"] == len(expected)
    # The filter the segment shows, sent back as it is, finds the same customers.
    assert await _ids(gql, token, CUSTOMERS, {"filter": segment["filter"]}, "customers") == listed


async def test_membership_is_evaluated_live(gql, customers_book):
    token = customers_book["token"]
    segment = await create_segment(gql, token, filter={"status": ["DORMANT"]})
    assert segment["size"] == 1
    await Customer.filter(name__in=["王芳", "陈静"]).update(status="DORMANT")
    members = await every_page(gql, token, MEMBERS, {"id": segment["id"]}, "node.members")
    assert sorted(m["name"] for m in members) == sorted(["赵强", "王芳", "陈静"])
    # A new filter, a new membership.
    changed = await update_raw(gql, token, segment["id"], filter={"tags": ["老客户"]})
    assert changed["segment"]["size"] == 2


async def test_members_page_like_the_customers_list(gql, customers_book):
    token = customers_book["token"]
    segment = await create_segment(gql, token)
    first = (await gql(MEMBERS, {"id": segment["id"], "first": 3}, token=token))["node"]
    assert first["size"] == first["members"]["totalCount"] == 7
    assert len(first["members"]["edges"]) == 3 and first["members"]["pageInfo"]["hasNextPage"]
    for size in (1, 2, 3, 7):
        members = await every_page(gql, token, MEMBERS, {"id": segment["id"]}, "node.members", size=size)
        assert [m["id"] for m in members] == await _ids(gql, token, CUSTOMERS, {}, "customers")
    too_many = await gql.errors(MEMBERS, {"id": segment["id"], "first": 101}, token=token)
    assert too_many[0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_a_branch_bound_reader_counts_only_their_branch(gql, customers_book, staff_factory, monkeypatch):
    """No segment reader is branch-bound today (access.BRANCH_BOUND); members are scoped exactly like the customers
    list all the same, so that they keep to a branch the day a reader is bound to one."""
    token = customers_book["token"]
    segment = await create_segment(gql, token, filter={"tags": ["VIP"]})  # 张伟 and 杨敏 here, 李娜 there
    monkeypatch.setattr(access, "BRANCH_BOUND", access.BRANCH_BOUND | {Role.ANALYST})
    _, bound = await staff_factory(Role.ANALYST, branch=HERE)
    seen = (await gql(MEMBERS, {"id": segment["id"], "first": 10}, token=bound))["node"]
    assert seen["size"] == seen["members"]["totalCount"] == 2
    assert {e["node"]["name"] for e in seen["members"]["edges"]} == {"张伟", "杨敏"}
    assert {e["node"]["branch"] for e in seen["members"]["edges"]} == {HERE}
    # A filter naming another branch finds nobody: it narrows what the reader sees, never widens it.
    elsewhere = await create_segment(gql, token, name="上海", filter={"branch": THERE})
    assert (await gql(MEMBERS, {"id": elsewhere["id"]}, token=bound))["node"]["size"] == 0
    _, bank_wide = await staff_factory(Role.ANALYST)
    assert (await gql(MEMBERS, {"id": segment["id"]}, token=bank_wide))["node"]["size"] == 3


async def test_member_ids_query_scopes_like_the_members(customers_book, staff_factory, gql, monkeypatch):
    token = customers_book["token"]
    segment = await create_segment(gql, token, filter={"tags": ["VIP"]})
    monkeypatch.setattr(access, "BRANCH_BOUND", access.BRANCH_BOUND | {Role.MANAGER})
    manager, _ = await staff_factory(Role.MANAGER, branch=THERE)
    members = await segment_service.member_ids_query(Caller(manager), pk(segment["id"]))
    assert await members.values_list("name", flat=True) == ["李娜"]
    with pytest.raises(DomainError) as missing:
        await segment_service.member_ids_query(Caller(manager), pk(segment["id"]) + 99)
    assert (missing.value.code, missing.value.field) == (ErrorCode.NOT_FOUND, ["segmentId"])
    agent, _ = await staff_factory(Role.SERVICE_AGENT)
    with pytest.raises(DomainError) as refused:
        await segment_service.member_ids_query(Caller(agent), pk(segment["id"]))
    assert refused.value.code == ErrorCode.FORBIDDEN


async def test_members_are_masked_as_in_the_customers_list(gql, customers_book, staff_factory):
    token = customers_book["token"]
    segment = await create_segment(gql, token, filter={"search": "李娜"})
    _, analyst = await staff_factory(Role.ANALYST)
    reads = AuditEntry.filter(action="customer.pii_read")
    before = await reads.count()  # those of building the book
    masked = (await gql(MEMBERS, {"id": segment["id"]}, token=analyst))["node"]["members"]["edges"][0]["node"]
    listed = (await gql(CUSTOMERS, {"filter": {"search": "李娜"}}, token=analyst))["customers"]["edges"][0]["node"]
    assert masked == listed
    assert masked["phone"] == "139****0002" and masked["email"] == "l***@example.cn"
    assert await reads.count() == before

    unmasked = (await gql(MEMBERS, {"id": segment["id"]}, token=token))["node"]["members"]["edges"][0]["node"]
    assert unmasked["phone"] == "13900000002"
    [read] = await reads.offset(before).order_by("id")
    assert (read.subject_type, read.subject_id) == ("Customer", str(pk(unmasked["id"])))
