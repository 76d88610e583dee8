"""Segments over HTTP: create, read, update and delete, what each refuses (with a code, never a 500), who may do
what, the list paged by name, the audit trail, and a stored filter that no longer reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.audit import AuditEntry
from models.segments import Segment
from models.staff import Role
from schema.base import to_global_id
from services import access, clock
from tests.segments.helpers import LIST, create_raw, create_segment, delete_raw, update_raw
from tests.surveys.helpers import pk

NODE = """query($id: ID!) { node(id: $id) { ... on Segment { id name filter size } } }"""


def _problems(payload: dict, key: str = "segment") -> list[tuple[list[str], str]]:
    assert payload[key] is None, payload
    return [(e["field"], e["code"]) for e in payload["errors"]]


async def test_a_segment_is_created_read_updated_and_deleted(gql, admin, staff_factory):
    member, token = admin
    rm, _ = await staff_factory(Role.RELATIONSHIP_MANAGER)
    manager = to_global_id("Staff", rm.id)
    given = {
        "status": ["ACTIVE"],
        "relationshipManagerId": manager,
        "valueTier": ["WEALTH", "PRIVATE_BANKING"],
        "minAum": "500000.00",
        "createdAfter": "2022-01-01T08:00:00+08:00",
    }
    created = await create_segment(gql, token, name="  高净值   客户 ", description=" 季度回访 ", filter=given)
    assert (created["name"], created["description"], created["version"]) == ("高净值 客户", "季度回访", 1)
    assert created["createdBy"] == {"username": member.username} and created["size"] == 0
    # The filter is shown as a client sends it (times in UTC); the database keeps the service filter's params.
    assert created["filter"] == {**given, "createdAfter": "2022-01-01T00:00:00+00:00"}
    stored = await Segment.get(id=pk(created["id"]))
    assert stored.filter_params == {
        "status": ["ACTIVE"],
        "relationship_manager_id": rm.id,
        "value_tier": ["WEALTH", "PRIVATE_BANKING"],
        "min_aum": "500000.00",
        "created_after": "2022-01-01T00:00:00+00:00",
    }
    assert (await gql(NODE, {"id": created["id"]}, token=token))["node"]["name"] == "高净值 客户"
    listed = (await gql(LIST, {}, token=token))["segments"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"] == created

    clock.freeze(clock.now() + timedelta(hours=1))
    try:
        changed = await update_raw(gql, token, created["id"], version=1, name="私行客户", filter={"tags": ["私行"]})
    finally:
        clock.reset()
    assert changed["errors"] == []
    segment = changed["segment"]
    assert (segment["name"], segment["description"], segment["filter"], segment["version"]) == (
        "私行客户",
        "季度回访",
        {"tags": ["私行"]},
        2,
    )
    assert segment["updatedAt"] > created["updatedAt"] and segment["createdAt"] == created["createdAt"]
    # Nothing to change: the same version, the same time.
    same = (await update_raw(gql, token, created["id"], name="私行客户", filter={"tags": ["私行"]}))["segment"]
    assert (same["version"], same["updatedAt"]) == (2, segment["updatedAt"])
    cleared = (await update_raw(gql, token, created["id"], description=None))["segment"]
    assert (cleared["description"], cleared["version"]) == (None, 3)

    deleted = await delete_raw(gql, token, created["id"])
    assert deleted == {"deletedId": created["id"], "errors": []}
    assert await Segment.all().count() == 0
    assert (await gql(NODE, {"id": created["id"]}, token=token))["node"] is None
    assert _problems(await update_raw(gql, token, created["id"], name="x")) == [(["id"], "NOT_FOUND")]
    assert _problems(await delete_raw(gql, token, created["id"]), "deletedId") == [(["id"], "NOT_FOUND")]

    audit = await AuditEntry.filter(action__startswith="segment.").order_by("id").values_list("action", "subject_id")
    subject = str(pk(created["id"]))
    assert audit == [
        ("segment.create", subject),
        ("segment.update", subject),
        ("segment.update", subject),
        ("segment.update", subject),
        ("segment.delete", subject),
        ("segment.update.rejected", subject),
        ("segment.delete.rejected", subject),
    ]


async def test_an_older_version_changes_nothing(gql, admin):
    _, token = admin
    created = await create_segment(gql, token, filter={"branch": "北京朝阳支行"})
    assert (await update_raw(gql, token, created["id"], version=1, name="第一次"))["errors"] == []
    stale = await update_raw(gql, token, created["id"], version=1, name="第二次", filter={})
    assert _problems(stale) == [(["version"], "STALE_VERSION")]
    stored = await Segment.get(id=pk(created["id"]))
    assert (stored.name, stored.version, stored.filter_params) == ("第一次", 2, {"branch": "北京朝阳支行"})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": ""}, [(["name"], "REQUIRED")]),
        ({"name": " \t "}, [(["name"], "REQUIRED")]),
        ({"name": "客" * 121}, [(["name"], "INVALID")]),
        ({"description": "说" * 2001}, [(["description"], "INVALID")]),
        ({"name": "", "description": "说" * 2001}, [(["name"], "REQUIRED"), (["description"], "INVALID")]),
        ({"filter": {"minAum": "NaN"}}, [(["filter", "minAum"], "INVALID")]),
        ({"filter": {"maxAum": "Infinity"}}, [(["filter", "maxAum"], "INVALID")]),
        ({"filter": {"relationshipManagerId": "nonsense"}}, [(["filter", "relationshipManagerId"], "NOT_FOUND")]),
    ],
)
async def test_what_creating_refuses(gql, admin, fields, expected):
    _, token = admin
    assert _problems(await create_raw(gql, token, **fields)) == expected
    assert await Segment.all().count() == 0
    rejected = await AuditEntry.get(action="segment.create.rejected")
    assert rejected.detail["errors"] == [code for _, code in expected]


async def test_names_are_unique_ignoring_case(gql, admin):
    _, token = admin
    first = await create_segment(gql, token, name="VIP客户")
    assert _problems(await create_raw(gql, token, name="vip客户")) == [(["name"], "DUPLICATE")]
    other = await create_segment(gql, token, name="普通客户")
    assert _problems(await update_raw(gql, token, other["id"], name=" VIP客户 ")) == [(["name"], "DUPLICATE")]
    # A segment may change the case of its own name.
    assert (await update_raw(gql, token, first["id"], name="Vip客户"))["segment"]["name"] == "Vip客户"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": None}, [(["name"], "REQUIRED")]),
        ({"name": "   "}, [(["name"], "REQUIRED")]),
        ({"filter": None}, [(["filter"], "REQUIRED")]),
        ({"filter": {"minAum": "NaN"}, "name": "客" * 121}, [(["name"], "INVALID"), (["filter", "minAum"], "INVALID")]),
        ({"id": "nonsense"}, [(["id"], "NOT_FOUND")]),
        ({"id": to_global_id("Customer", 1)}, [(["id"], "NOT_FOUND")]),
    ],
)
async def test_what_updating_refuses(gql, admin, fields, expected):
    _, token = admin
    created = await create_segment(gql, token, filter={"tags": ["VIP"]})
    fields = dict(fields)
    segment_id = fields.pop("id", created["id"])
    assert _problems(await update_raw(gql, token, segment_id, **fields)) == expected
    stored = await Segment.get(id=pk(created["id"]))
    assert (stored.name, stored.version, stored.filter_params) == ("高净值客户", 1, {"tags": ["VIP"]})


@pytest.mark.parametrize("role", sorted(Role, key=lambda r: r.value))
async def test_who_may_read_and_who_may_manage_segments(gql, admin, staff_factory, role):
    _, token = admin
    existing = await create_segment(gql, token, name="已有细分")
    _, caller = await staff_factory(role)

    created = await create_raw(gql, caller, name="新细分")
    updated = await update_raw(gql, caller, existing["id"], name="改名")
    deleted = await delete_raw(gql, caller, existing["id"])
    if role in access.SEGMENT_EDITORS:
        assert created["errors"] == [] and updated["errors"] == [] and deleted["errors"] == []
    else:
        for payload in (created, updated, deleted):
            assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
            assert access.describe(access.SEGMENT_EDITORS) in payload["errors"][0]["message"]
        assert set(await Segment.all().values_list("name", flat=True)) == {"已有细分"}

    await create_segment(gql, token, name="读")
    if role in access.SEGMENT_READERS:
        assert (await gql(LIST, {}, token=caller))["segments"]["totalCount"] >= 1
    else:
        errors = await gql.errors(LIST, {}, token=caller)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
        assert access.describe(access.SEGMENT_READERS) in errors[0]["message"]
        # Through node(id:) a segment is simply not there.
        segment = await Segment.get(name="读")
        assert (await gql(NODE, {"id": to_global_id("Segment", segment.id)}, token=caller))["node"] is None


async def test_the_list_is_by_name_and_paged_in_the_database(gql, admin):
    _, token = admin
    for name in ("E组", "A组", "D组", "B组", "C组"):
        await create_segment(gql, token, name=name)
    first = (await gql(LIST, {"first": 2}, token=token))["segments"]
    assert [e["node"]["name"] for e in first["edges"]] == ["A组", "B组"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (5, True)
    rest = (await gql(LIST, {"first": 10, "after": first["pageInfo"]["endCursor"]}, token=token))["segments"]
    assert [e["node"]["name"] for e in rest["edges"]] == ["C组", "D组", "E组"]
    last = (await gql(LIST, {"last": 2}, token=token))["segments"]
    assert [e["node"]["name"] for e in last["edges"]] == ["D组", "E组"] and last["pageInfo"]["hasPreviousPage"]
    too_many = await gql.errors(LIST, {"first": 101}, token=token)
    assert too_many[0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_a_stored_filter_that_no_longer_reads_is_a_clear_error(gql, admin):
    _, token = admin
    created = await create_segment(gql, token)
    await Segment.filter(id=pk(created["id"])).update(filter_params={"retired_field": 1, "min_aum": "lots"})
    body = (await gql.raw(NODE, {"id": created["id"]}, token=token)).json()
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"INVALID"} and "retired_field" in body["errors"][0]["message"]
    # The segment itself is still there to fix.
    fixed = await update_raw(gql, token, created["id"], filter={"minAum": "100"})
    assert fixed["errors"] == [] and fixed["segment"]["filter"] == {"minAum": "100"}
