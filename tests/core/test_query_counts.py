"""Lists resolve their relations through DataLoaders: the number of SQL statements does not grow with the page."""

from models.jobs import Job
from models.staff import Role
from services import audit
from services.access import Caller
from tests.conftest import QueryCounter, make_staff

JOBS = "query($n: Int) { jobs(first: $n) { totalCount edges { node { id createdBy { username } } } } }"
AUDIT = "query($n: Int) { auditLog(first: $n) { totalCount edges { node { id actor { username } } } } }"
STAFF = "query($n: Int) { staff(first: $n) { totalCount edges { node { id username } } } }"


async def _statements(gql, token, query, n) -> int:
    with QueryCounter() as counter:
        await gql(query, {"n": n}, token=token)
    return counter.count


async def test_lists_run_a_constant_number_of_queries(gql, admin):
    _member, token = admin
    creators = [await make_staff(Role.AUDITOR) for _ in range(10)]
    for i in range(40):
        creator = creators[i % len(creators)]
        await Job.create(kind="AUDIT_EXPORT", created_by=creator)
        await audit.record(Caller(creator), "test.event")
    for query in (JOBS, AUDIT, STAFF):
        small, large = await _statements(gql, token, query, 2), await _statements(gql, token, query, 40)
        assert small == large, (query, small, large)
        # authentication + page + count (+ one batched staff load)
        assert 3 <= large <= 4, (query, large)
