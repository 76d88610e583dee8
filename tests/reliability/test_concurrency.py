"""Many clients at once against a real `crm serve` process over HTTP (docs/RELIABILITY.md, "Concurrency"): of
concurrent writes of one thing, exactly one wins and the others are told why (STALE_VERSION, INVALID_TRANSITION);
nothing is lost, counted twice or numbered with a gap.

The in-process versions of two of these (two clients, and fifty filings through the in-process app) are
tests/customers/test_customer_file.py::test_two_concurrent_updates_exactly_one_wins and
tests/complaints/test_intake.py::test_fifty_concurrent_filings_get_fifty_gap_free_numbers; here the requests
cross a socket and the API's own connection pool, as in production."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import httpx
import pytest

from models.audit import AuditEntry
from models.complaints import Complaint, ComplaintDaySequence, ComplaintEvent
from models.customers import ChangeEntry, Customer
from models.follow_ups import FollowUp
from models.staff import Role
from tests.complaints.helpers import FILE, codes, do, file, new_customer, pk
from tests.conftest import GraphQLClient
from tests.customers.helpers import UPDATE
from tests.reliability.harness import NO_RATE_LIMITS, Api, crm_env, free_port, processes

CLIENTS = 20
REFERENCE = re.compile(r"^CMP-(\d{8})-(\d{6})$")
CREATE_FOLLOW_UP = """mutation($input: CreateFollowUpInput!) { createFollowUp(input: $input) {
  followUp { id status } errors { field code } } }"""
UPDATE_FOLLOW_UP = """mutation($input: UpdateFollowUpInput!) { updateFollowUp(input: $input) {
  followUp { id status completedAt } errors { field code } } }"""

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def api(migrated_database):
    """One API process for the module (embedded broker: nothing here needs Redis)."""
    with processes() as started:
        api = Api(crm_env(migrated_database, None, **NO_RATE_LIMITS), free_port())
        started.append(api)
        await api.ready(60)
        yield api


@pytest.fixture
async def client(app, api):
    """A GraphQL client of the API process (`app`, the test's own, empties the database first)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=api.url, timeout=60, limits=limits) as http:
        yield GraphQLClient(http)


async def at_once(count: int, make) -> list:
    """`count` calls of `make(i)` started together (all connections open first, then every request sent)."""
    gate = asyncio.Event()

    async def one(i: int):
        await gate.wait()
        return await make(i)

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks)


async def test_twenty_updates_of_one_version_exactly_one_wins(client, admin):
    _, token = admin
    customer = await new_customer(client, token)
    before = await ChangeEntry.filter(customer_id=pk(customer["id"])).count()

    async def update(i: int) -> dict:
        variables = {"input": {"id": customer["id"], "version": customer["version"], "occupation": f"职业{i}"}}
        return (await client(UPDATE, variables, token=token))["updateCustomer"]

    results = await at_once(CLIENTS, update)
    winners = [r for r in results if not r["errors"]]
    assert len(winners) == 1, results
    assert Counter(code for r in results for code in codes(r)) == {"STALE_VERSION": CLIENTS - 1}
    stored = await Customer.get(id=pk(customer["id"]))
    assert stored.version == customer["version"] + 1
    assert stored.occupation == winners[0]["customer"]["occupation"]
    history = await ChangeEntry.filter(customer_id=stored.id).offset(before)
    assert [(e.field, e.new_value) for e in history] == [("occupation", stored.occupation)]
    audit = Counter(
        await AuditEntry.filter(subject_id=str(stored.id), action__startswith="customer.update").values_list(
            "action", flat=True
        )
    )
    assert audit == {"customer.update": 1, "customer.update.rejected": CLIENTS - 1}


async def test_twenty_moves_of_one_complaint_lose_nothing(client, admin, staff_factory):
    _, admin_token = admin
    _, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_customer(client, admin_token)
    complaint = await file(client, admin_token, customer["id"])
    for name in ("acknowledge", "start"):
        result = await do(
            client, token, name, **({"id": complaint["id"]} | ({"message": "已收到"} if name == "acknowledge" else {}))
        )
        assert result["errors"] == [], result
        complaint = result["complaint"]
    start_version = complaint["version"]
    # Escalations (allowed again and again while open, each adds a level), assignments, and resolutions of the
    # version read: whatever order they land in, each that succeeds is one version and one event.
    plan = ["escalate"] * 4 + ["assign"] + ["escalate"] * 4 + ["resolve"]
    plan *= CLIENTS // len(plan)
    inputs = {
        "escalate": {"reason": "客户要求上级处理"},
        "assign": {"department": "COMPLAINTS"},
        "resolve": {"version": start_version, "resolution": "退还年费"},
    }

    async def act(i: int) -> tuple[str, dict]:
        name = plan[i]
        return name, await do(client, token, name, id=complaint["id"], **inputs[name])

    results = await at_once(CLIENTS, act)
    won = [name for name, r in results if not r["errors"]]
    lost = Counter(code for _, r in results for code in codes(r))
    assert won, results
    assert set(lost) <= {"STALE_VERSION", "INVALID_TRANSITION"}, lost
    assert len(won) + sum(lost.values()) == CLIENTS

    stored = await Complaint.get(id=pk(complaint["id"]))
    events = await ComplaintEvent.filter(complaint_id=stored.id).order_by("id")
    later = events[len(events) - len(won) :]
    # One version and one event per success, in a chain: each event starts where the previous one ended.
    assert stored.version == start_version + len(won)
    assert len(events) == 3 + len(won)  # RECEIVED, ACKNOWLEDGED, STARTED before
    assert sorted(e.type.value for e in later) == sorted(
        {"escalate": "ESCALATED", "assign": "ASSIGNED", "resolve": "RESOLVED"}[n] for n in won
    )
    status = "IN_PROGRESS"
    for event in later:
        assert event.from_status.value == status, [(e.type, e.from_status, e.to_status) for e in events]
        status = event.to_status.value
    assert stored.status.value == status
    # No lost update: the level counts every escalation that succeeded.
    assert stored.escalation_level == won.count("escalate")
    assert won.count("resolve") <= 1


async def test_twenty_completions_of_one_follow_up_complete_it_once(client, admin):
    _, token = admin
    customer = await new_customer(client, token)
    created = (
        await client(
            CREATE_FOLLOW_UP,
            {"input": {"title": "回访客户", "customerId": customer["id"], "department": "OPERATIONS"}},
            token=token,
        )
    )["createFollowUp"]
    assert created["errors"] == [], created

    async def complete(i: int) -> dict:
        variables = {"input": {"id": created["followUp"]["id"], "status": "DONE"}}
        return (await client(UPDATE_FOLLOW_UP, variables, token=token))["updateFollowUp"]

    results = await at_once(CLIENTS, complete)
    assert sum(1 for r in results if not r["errors"]) == 1, results
    assert Counter(code for r in results for code in codes(r)) == {"INVALID_TRANSITION": CLIENTS - 1}
    stored = await FollowUp.get(id=pk(created["followUp"]["id"]))
    assert stored.status.value == "DONE" and stored.completed_at is not None
    [winner] = [r for r in results if not r["errors"]]
    assert winner["followUp"]["completedAt"] is not None


async def test_fifty_concurrent_filings_over_http_get_fifty_gap_free_numbers(client, admin):
    _, token = admin
    owners = [(await new_customer(client, token))["id"] for _ in range(5)]

    async def filing(i: int) -> dict:
        data = {
            "customerId": owners[i % len(owners)],
            "channel": "PHONE",
            "summary": f"并发投诉 {i}",
            "description": "客户称未被告知信用卡年费，要求退还。",
        }
        return (await client(FILE, {"input": data}, token=token))["fileComplaint"]

    results = await at_once(50, filing)
    assert [r["errors"] for r in results] == [[]] * 50
    references = [REFERENCE.match(r["complaint"]["referenceNo"]) for r in results]
    assert len({m.group(1) for m in references}) == 1
    assert sorted(int(m.group(2)) for m in references) == list(range(1, 51))
    assert await Complaint.all().count() == 50
    [sequence] = await ComplaintDaySequence.all()
    assert sequence.last_number == 50
