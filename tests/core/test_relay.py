import pytest

from models.jobs import Job, JobStatus
from models.staff import Role, Staff
from schema.base import to_global_id
from tests.conftest import make_staff

NODE = """query($id: ID!) { node(id: $id) { __typename id ... on Staff { username } ... on Job { kind status } } }"""
NODES = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"""
PAGE = """query($first: Int, $after: String, $last: Int, $before: String) {
  staff(first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id username } }
  }
}"""


async def test_node_round_trip_for_staff_and_job(gql, admin):
    member, token = admin
    job = await Job.create(kind="AUDIT_EXPORT", created_by=member)
    me = (await gql("{ me { id } }", token=token))["me"]
    assert (await gql(NODE, {"id": me["id"]}, token=token))["node"] == {
        "__typename": "Staff",
        "id": me["id"],
        "username": member.username,
    }
    jobs = await gql("{ jobs { edges { node { id } } } }", token=token)
    job_id = jobs["jobs"]["edges"][0]["node"]["id"]
    assert job_id == to_global_id("Job", job.id)
    assert (await gql(NODE, {"id": job_id}, token=token))["node"] == {
        "__typename": "Job",
        "id": job_id,
        "kind": "AUDIT_EXPORT",
        "status": "QUEUED",
    }
    both = (await gql(NODES, {"ids": [job_id, "nonsense", me["id"], to_global_id("Staff", 10**9)]}, token=token))[
        "nodes"
    ]
    assert both == [{"__typename": "Job", "id": job_id}, None, {"__typename": "Staff", "id": me["id"]}, None]


async def test_ids_are_opaque_and_unforgeable_into_other_types(gql, admin):
    member, token = admin
    gid = to_global_id("Staff", member.id)
    assert "Staff" not in gid and str(member.id) != gid
    # The same primary key under another type name does not resolve to the staff member.
    assert (await gql(NODE, {"id": to_global_id("Job", member.id)}, token=token))["node"] is None
    assert (await gql(NODE, {"id": to_global_id("Unknown", member.id)}, token=token))["node"] is None


async def test_jobs_of_others_are_hidden_from_node_unless_overseer(gql, staff_factory):
    owner, owner_token = await staff_factory(Role.ANALYST)
    _, other_token = await staff_factory(Role.ANALYST)
    _, auditor_token = await staff_factory(Role.AUDITOR)
    job = await Job.create(kind="AUDIT_EXPORT", created_by=owner)
    gid = to_global_id("Job", job.id)
    assert (await gql(NODE, {"id": gid}, token=owner_token))["node"]["kind"] == "AUDIT_EXPORT"
    assert (await gql(NODE, {"id": gid}, token=other_token))["node"] is None
    assert (await gql("query($id: ID!) { job(id: $id) { id } }", {"id": gid}, token=other_token))["job"] is None
    assert (await gql(NODE, {"id": gid}, token=auditor_token))["node"]["kind"] == "AUDIT_EXPORT"


async def test_audit_entries_through_node_only_for_audit_readers(gql, staff_factory):
    _, reader_token = await staff_factory(Role.AUDITOR)
    _, agent_token = await staff_factory(Role.SERVICE_AGENT)
    entry_id = (await gql("{ auditLog(first: 1) { edges { node { id } } } }", token=reader_token))["auditLog"]["edges"][
        0
    ]["node"]["id"]
    assert (await gql(NODE, {"id": entry_id}, token=reader_token))["node"]["__typename"] == "AuditEntry"
    assert (await gql(NODE, {"id": entry_id}, token=agent_token))["node"] is None


async def test_node_needs_a_token(gql, admin):
    member, _ = admin
    errors = await gql.errors(NODE, {"id": to_global_id("Staff", member.id)})
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def _make_many(count: int) -> list[Staff]:
    return [await make_staff(Role.ANALYST, username=f"analyst-{i:03d}") for i in range(count)]


async def test_forward_paging_is_continuous_without_overlap(gql, admin):
    _, token = admin
    await _make_many(44)  # 45 with the admin
    seen, after, pages = [], None, 0
    while True:
        data = (await gql(PAGE, {"first": 20, "after": after}, token=token))["staff"]
        assert data["totalCount"] == 45
        seen += [e["node"]["username"] for e in data["edges"]]
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        pages += 1
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        assert after == data["edges"][-1]["cursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 45
    assert seen == sorted(seen)


async def test_backward_paging_mirrors_forward(gql, admin):
    _, token = admin
    await _make_many(24)
    forward = (await gql(PAGE, {"first": 25}, token=token))["staff"]["edges"]
    last_page = (await gql(PAGE, {"last": 10}, token=token))["staff"]
    assert [e["node"]["id"] for e in last_page["edges"]] == [e["node"]["id"] for e in forward[-10:]]
    assert last_page["pageInfo"]["hasPreviousPage"] is True and last_page["pageInfo"]["hasNextPage"] is False
    before = (await gql(PAGE, {"last": 10, "before": last_page["pageInfo"]["startCursor"]}, token=token))["staff"]
    assert [e["node"]["id"] for e in before["edges"]] == [e["node"]["id"] for e in forward[-20:-10]]
    assert before["pageInfo"]["hasNextPage"] is True


async def test_rows_added_between_pages_do_not_shift_the_next_page(gql, admin):
    _, token = admin
    await _make_many(10)
    first = (await gql(PAGE, {"first": 5}, token=token))["staff"]
    await make_staff(Role.ANALYST, username="aaa-first-in-order")  # sorts before everything already seen
    second = (await gql(PAGE, {"first": 5, "after": first["pageInfo"]["endCursor"]}, token=token))["staff"]
    first_names = [e["node"]["username"] for e in first["edges"]]
    second_names = [e["node"]["username"] for e in second["edges"]]
    assert not set(first_names) & set(second_names)
    assert second_names[0] > first_names[-1]


async def test_default_page_is_twenty(gql, admin):
    _, token = admin
    await _make_many(25)
    data = (await gql(PAGE, {}, token=token))["staff"]
    assert len(data["edges"]) == 20 and data["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"first": 101}, "LIMIT_EXCEEDED"),
        ({"last": 101}, "LIMIT_EXCEEDED"),
        ({"first": -1}, "INVALID"),
        ({"first": 5, "last": 5}, "INVALID"),
        ({"first": 5, "after": "not-a-cursor"}, "INVALID"),
    ],
)
async def test_bad_paging_arguments_are_coded_errors(gql, admin, variables, code):
    _, token = admin
    errors = await gql.errors(PAGE, variables, token=token)
    assert errors[0]["extensions"]["code"] == code


async def test_first_100_is_allowed(gql, admin):
    _, token = admin
    assert (await gql(PAGE, {"first": 100}, token=token))["staff"]["totalCount"] == 1


async def test_jobs_connection_filters_and_orders_newest_first(gql, admin):
    member, token = admin
    done = await Job.create(kind="AUDIT_EXPORT", status=JobStatus.SUCCEEDED, created_by=member)
    queued = await Job.create(kind="AUDIT_EXPORT", created_by=member)
    other = await Job.create(kind="COMPLAINT_REPORT", created_by=member)
    query = """query($kind: JobKind, $status: [JobStatus!]) { jobs(kind: $kind, status: $status) {
        totalCount edges { node { id createdBy { username } } } } }"""
    everything = (await gql(query, token=token))["jobs"]
    assert [e["node"]["id"] for e in everything["edges"]] == [to_global_id("Job", j.id) for j in (other, queued, done)]
    assert everything["edges"][0]["node"]["createdBy"]["username"] == member.username
    only = (await gql(query, {"kind": "AUDIT_EXPORT", "status": ["QUEUED"]}, token=token))["jobs"]
    assert only["totalCount"] == 1 and only["edges"][0]["node"]["id"] == to_global_id("Job", queued.id)
