"""The complaint state machine of docs/DOMAIN.md, walked through HTTP -> GraphQL -> the database.

Every status is reached through allowed moves only; from there every move is tried. An allowed move
lands on its to-status with one ComplaintEvent (type, fromStatus, toStatus, actor); a disallowed one is
INVALID_TRANSITION and changes nothing (status, version, events).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from models.complaints import Complaint as ComplaintModel, ComplaintEvent as ComplaintEventModel
from models.staff import Role, Staff
from schema.base import to_global_id
from tests.complaints.helpers import codes, do, fetch, file, new_customer, pk

OPEN = frozenset({"RECEIVED", "ACKNOWLEDGED", "IN_PROGRESS", "ESCALATED", "REOPENED"})
STATUSES = ["RECEIVED", "ACKNOWLEDGED", "IN_PROGRESS", "ESCALATED", "RESOLVED", "CLOSED", "REOPENED", "WITHDRAWN"]
MOVES = ["acknowledge", "assign", "start", "escalate", "extend", "resolve", "close", "reopen", "withdraw"]

# Written from docs/DOMAIN.md, independently of services/complaint_rules.py:
# move -> (statuses it is allowed from, to-status (None: stays), event type)
RULES: dict[str, tuple[frozenset[str], str | None, str]] = {
    "acknowledge": (frozenset({"RECEIVED"}), "ACKNOWLEDGED", "ACKNOWLEDGED"),
    "assign": (OPEN, None, "ASSIGNED"),
    "start": (frozenset({"ACKNOWLEDGED", "ESCALATED", "REOPENED"}), "IN_PROGRESS", "STARTED"),
    "escalate": (OPEN, "ESCALATED", "ESCALATED"),
    "extend": (OPEN, None, "DEADLINE_EXTENDED"),
    "resolve": (frozenset({"IN_PROGRESS", "ESCALATED"}), "RESOLVED", "RESOLVED"),
    "close": (frozenset({"RESOLVED"}), "CLOSED", "CLOSED"),
    "reopen": (frozenset({"RESOLVED", "CLOSED"}), "REOPENED", "REOPENED"),
    "withdraw": (OPEN, "WITHDRAWN", "WITHDRAWN"),
}

# How each status is reached from RECEIVED, through allowed moves only.
PATHS: dict[str, list[str]] = {
    "RECEIVED": [],
    "ACKNOWLEDGED": ["acknowledge"],
    "IN_PROGRESS": ["acknowledge", "start"],
    "ESCALATED": ["escalate"],
    "RESOLVED": ["acknowledge", "start", "resolve"],
    "CLOSED": ["acknowledge", "start", "resolve", "close"],
    "REOPENED": ["acknowledge", "start", "resolve", "reopen"],
    "WITHDRAWN": ["withdraw"],
}


def fields_for(move: str, complaint: dict) -> dict:
    """A complete, valid input for the move on this complaint."""
    base = {"id": complaint["id"]}
    extra = {
        "acknowledge": {"message": "已收到"},
        "assign": {"department": "COMPLAINTS"},
        "start": {},
        "escalate": {"reason": "客户要求上级处理"},
        "extend": {"reason": "案情复杂，需调取录音"},
        "resolve": {"version": complaint["version"], "resolution": "退还年费", "compensationAmount": "300.00"},
        "close": {"customerAccepted": True},
        "reopen": {"reason": "客户不接受处理结果"},
        "withdraw": {"reason": "客户撤回投诉"},
    }[move]
    return {**base, **extra}


@dataclass
class Desk:
    gql: object
    admin_token: str
    handler: Staff
    token: str
    customer_id: str

    async def complaint(self, **overrides) -> dict:
        return await file(self.gql, self.admin_token, self.customer_id, **overrides)

    async def move(self, name: str, complaint: dict, **overrides) -> dict:
        return await do(self.gql, self.token, name, **{**fields_for(name, complaint), **overrides})

    async def walk(self, complaint: dict, path: list[str]) -> dict:
        for name in path:
            result = await self.move(name, complaint)
            assert result["errors"] == [], (name, result["errors"])
            complaint = result["complaint"]
        return complaint

    async def reach(self, status: str) -> dict:
        reached = await self.walk(await self.complaint(), PATHS[status])
        assert reached["status"] == status
        return reached

    async def get(self, complaint: dict) -> dict:
        return await fetch(self.gql, self.token, complaint["id"])


@pytest.fixture
async def desk(gql, admin, staff_factory) -> Desk:
    _, admin_token = admin
    handler, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_customer(gql, admin_token)
    return Desk(gql, admin_token, handler, token, customer["id"])


def test_every_status_has_a_path_and_the_rules_cover_every_move():
    assert set(PATHS) == set(STATUSES) and set(RULES) == set(MOVES)


@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize("status", STATUSES)
async def test_every_move_from_every_status(desk: Desk, status: str, move: str):
    before = await desk.reach(status)
    allowed_from, to_status, event_type = RULES[move]
    result = await desk.move(move, before)
    after = await desk.get(before)
    db_events = await ComplaintEventModel.filter(complaint_id=pk(before["id"])).count()

    if status not in allowed_from:
        assert codes(result) == ["INVALID_TRANSITION"], result
        assert result["complaint"] is None
        assert (after["status"], after["version"], after["events"]) == (
            before["status"],
            before["version"],
            before["events"],
        )
        assert db_events == len(before["events"])
        # Nothing else moved either.
        for name in (
            "department",
            "extensionCount",
            "escalationLevel",
            "resolution",
            "resolvedAt",
            "closedAt",
            "customerAccepted",
            "dueAt",
        ):
            assert after[name] == before[name], name
        return

    assert result["errors"] == [], result["errors"]
    moved = result["complaint"]
    expected_status = to_status or status
    assert moved["status"] == after["status"] == expected_status
    assert moved["version"] == before["version"] + 1
    new_events = after["events"][len(before["events"]) :]
    assert after["events"][: len(before["events"])] == before["events"]
    assert new_events[0] == {
        **new_events[0],
        "type": event_type,
        "fromStatus": status,
        "toStatus": expected_status,
        "actor": {"username": desk.handler.username},
    }
    # Only an extension adds another event: the customer was told (system, no actor).
    assert [e["type"] for e in new_events[1:]] == (["CUSTOMER_NOTIFIED"] if move == "extend" else [])
    assert db_events == len(after["events"])

    # What each move changes besides the status.
    if move == "assign":
        assert after["department"] == "COMPLAINTS"
    if move == "extend":
        assert after["extensionCount"] == before["extensionCount"] + 1
        assert after["dueAt"] != before["dueAt"]
    if move == "escalate":
        assert after["escalationLevel"] == before["escalationLevel"] + 1
        assert new_events[0]["message"] == "客户要求上级处理"
    if move == "resolve":
        assert after["resolution"] == "退还年费" and after["resolvedAt"] is not None
        assert after["compensationAmount"] in ("300.00", "300")
    if move == "close":
        assert after["closedAt"] is not None and after["customerAccepted"] is True
    if move == "reopen":
        assert (after["resolvedAt"], after["closedAt"], after["customerAccepted"]) == (None, None, None)
    if move == "withdraw":
        assert new_events[0]["message"] == "客户撤回投诉"


async def test_the_full_happy_path_records_one_event_per_move(desk: Desk):
    closed = await desk.reach("CLOSED")
    assert [(e["type"], e["fromStatus"], e["toStatus"]) for e in closed["events"]] == [
        ("RECEIVED", None, "RECEIVED"),
        ("ACKNOWLEDGED", "RECEIVED", "ACKNOWLEDGED"),
        ("STARTED", "ACKNOWLEDGED", "IN_PROGRESS"),
        ("RESOLVED", "IN_PROGRESS", "RESOLVED"),
        ("CLOSED", "RESOLVED", "CLOSED"),
    ]
    assert closed["version"] == 5


async def test_escalated_may_be_resolved_directly_or_started(desk: Desk):
    escalated = await desk.reach("ESCALATED")
    resolved = await desk.walk(escalated, ["resolve"])
    assert resolved["status"] == "RESOLVED"
    other = await desk.walk(await desk.reach("ESCALATED"), ["start", "resolve"])
    assert [e["type"] for e in other["events"]] == ["RECEIVED", "ESCALATED", "STARTED", "RESOLVED"]


# ---------------------------------------------------------------- optimistic version


async def test_resolve_with_an_old_version_is_stale_and_changes_nothing(desk: Desk):
    started = await desk.reach("IN_PROGRESS")
    assigned = await desk.walk(started, ["assign"])  # someone else changed it meanwhile
    result = await desk.move("resolve", started)  # carries started["version"]
    assert codes(result) == ["STALE_VERSION"] and result["errors"][0]["field"] == ["version"]
    after = await desk.get(started)
    assert (after["status"], after["version"], len(after["events"])) == (
        "IN_PROGRESS",
        assigned["version"],
        len(assigned["events"]),
    )
    assert after["resolution"] is None
    # With the current version it goes through.
    assert (await desk.move("resolve", after))["complaint"]["status"] == "RESOLVED"


async def test_resolve_with_a_future_version_is_stale(desk: Desk):
    started = await desk.reach("IN_PROGRESS")
    result = await desk.move("resolve", started, version=started["version"] + 5)
    assert codes(result) == ["STALE_VERSION"]


async def test_two_concurrent_resolves_of_one_version_one_wins(desk: Desk):
    started = await desk.reach("IN_PROGRESS")
    results = await asyncio.gather(
        desk.move("resolve", started, resolution="甲方案"), desk.move("resolve", started, resolution="乙方案")
    )
    outcomes = sorted(tuple(codes(r)) for r in results)
    assert outcomes in ([(), ("STALE_VERSION",)], [(), ("INVALID_TRANSITION",)]), results
    after = await desk.get(started)
    assert after["status"] == "RESOLVED" and after["version"] == started["version"] + 1
    assert [e["type"] for e in after["events"]].count("RESOLVED") == 1


# ---------------------------------------------------------------- required reasons


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
@pytest.mark.parametrize(
    ("move", "status"),
    [
        ("escalate", "IN_PROGRESS"),
        ("extend", "IN_PROGRESS"),
        ("reopen", "RESOLVED"),
        ("reopen", "CLOSED"),
        ("withdraw", "ACKNOWLEDGED"),
    ],
)
async def test_a_blank_reason_is_required_and_changes_nothing(desk: Desk, move: str, status: str, blank: str):
    before = await desk.reach(status)
    result = await desk.move(move, before, reason=blank)
    assert codes(result) == ["REQUIRED"] and result["errors"][0]["field"] == ["reason"]
    after = await desk.get(before)
    assert (after["status"], after["version"], after["events"], after["extensionCount"]) == (
        before["status"],
        before["version"],
        before["events"],
        before["extensionCount"],
    )


async def test_a_blank_resolution_is_required(desk: Desk):
    started = await desk.reach("IN_PROGRESS")
    result = await desk.move("resolve", started, resolution="  ")
    assert codes(result) == ["REQUIRED"] and result["errors"][0]["field"] == ["resolution"]
    assert (await desk.get(started))["status"] == "IN_PROGRESS"


# ---------------------------------------------------------------- escalation, reopening, withdrawal


async def test_each_escalation_raises_the_level(desk: Desk):
    complaint = await desk.complaint()
    assert complaint["escalationLevel"] == 0
    first = (await desk.move("escalate", complaint, reason="第一次升级"))["complaint"]
    assert (first["status"], first["escalationLevel"]) == ("ESCALATED", 1)
    started = await desk.walk(first, ["start"])
    assert started["escalationLevel"] == 1  # starting work does not lower it
    second = (await desk.move("escalate", started, reason="第二次升级"))["complaint"]
    assert (second["status"], second["escalationLevel"]) == ("ESCALATED", 2)
    third = (await desk.move("escalate", second, reason="再次升级"))["complaint"]  # ESCALATED is open
    assert third["escalationLevel"] == 3
    escalations = [e for e in third["events"] if e["type"] == "ESCALATED"]
    assert [(e["fromStatus"], e["message"]) for e in escalations] == [
        ("RECEIVED", "第一次升级"),
        ("IN_PROGRESS", "第二次升级"),
        ("ESCALATED", "再次升级"),
    ]
    resolved = await desk.walk(third, ["resolve"])
    assert resolved["escalationLevel"] == 3


async def test_reopen_then_resolve_and_close_again(desk: Desk):
    closed = await desk.reach("CLOSED")
    reopened = (await desk.move("reopen", closed, reason="客户再次来电"))["complaint"]
    assert reopened["status"] == "REOPENED"
    assert (reopened["resolvedAt"], reopened["closedAt"], reopened["customerAccepted"]) == (None, None, None)
    assert reopened["slaState"] in ("ON_TRACK", "AT_RISK")  # open again
    assert reopened["resolution"] == "退还年费"  # the earlier resolution is kept for the record
    again = await desk.walk(reopened, ["start"])
    resolved = (await desk.move("resolve", again, resolution="补发赔偿"))["complaint"]
    assert (resolved["status"], resolved["resolution"], resolved["slaState"]) == ("RESOLVED", "补发赔偿", "MET")
    closed_again = (await desk.move("close", resolved, customerAccepted=False))["complaint"]
    assert closed_again["status"] == "CLOSED" and closed_again["customerAccepted"] is False
    assert [e["type"] for e in closed_again["events"]] == [
        "RECEIVED",
        "ACKNOWLEDGED",
        "STARTED",
        "RESOLVED",
        "CLOSED",
        "REOPENED",
        "STARTED",
        "RESOLVED",
        "CLOSED",
    ]
    row = await ComplaintModel.get(id=pk(closed["id"]))
    assert row.reopen_count == 1
    # Reopened from RESOLVED (not closed) also works, and counts.
    twice = (await desk.move("reopen", await desk.walk(closed_again, ["reopen", "start", "resolve"]), reason="第三次"))[
        "complaint"
    ]
    assert twice["status"] == "REOPENED"
    assert (await ComplaintModel.get(id=pk(closed["id"]))).reopen_count == 3


async def test_withdrawn_is_final(desk: Desk):
    withdrawn = await desk.reach("WITHDRAWN")
    assert withdrawn["events"][-1] == {
        **withdrawn["events"][-1],
        "type": "WITHDRAWN",
        "fromStatus": "RECEIVED",
        "toStatus": "WITHDRAWN",
    }
    for name in MOVES:
        result = await desk.move(name, withdrawn)
        assert codes(result) == ["INVALID_TRANSITION"], (name, result)
    after = await desk.get(withdrawn)
    assert (after["status"], after["version"], after["events"]) == (
        "WITHDRAWN",
        withdrawn["version"],
        withdrawn["events"],
    )
    # Never resolved, so no outcome (MET/MISSED): its clock stopped before the due time (test_withdrawn_sla.py).
    assert after["slaState"] == "ON_TRACK"


@pytest.mark.parametrize("status", sorted(OPEN))
async def test_any_open_state_may_be_withdrawn(desk: Desk, status: str):
    before = await desk.reach(status)
    result = await desk.move("withdraw", before)
    assert result["errors"] == [] and result["complaint"]["status"] == "WITHDRAWN"


async def test_an_assign_keeps_the_status_and_names_the_handler(desk: Desk, staff_factory):
    other, _ = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    acknowledged = await desk.reach("ACKNOWLEDGED")
    result = await desk.move(
        "assign",
        acknowledged,
        department="COMPLIANCE",
        handlerId=to_global_id("Staff", other.id),
        message="请合规部协助",
    )
    moved = result["complaint"]
    assert (moved["status"], moved["department"], moved["handler"]) == (
        "ACKNOWLEDGED",
        "COMPLIANCE",
        {"username": other.username},
    )
    assert other.username in moved["events"][-1]["message"] and "请合规部协助" in moved["events"][-1]["message"]


async def test_a_move_on_an_unknown_complaint_is_not_found(desk: Desk):
    for name in MOVES:
        result = await desk.move(name, {"id": to_global_id("Complaint", 999999), "version": 1})
        assert codes(result) == ["NOT_FOUND"], (name, result)
        result = await desk.move(name, {"id": to_global_id("Customer", 1), "version": 1})
        assert codes(result) == ["NOT_FOUND"], (name, result)


@pytest.mark.parametrize("extensions", [1, 2])
@pytest.mark.parametrize("end", ["resolve", "withdraw"])
async def test_extending_an_ended_complaint_is_an_invalid_transition_whatever_its_extensions(
    desk: Desk, staff_factory, extensions: int, end: str
):
    _, manager_token = await staff_factory(Role.MANAGER)
    complaint = await desk.reach("IN_PROGRESS")
    complaint = (await desk.move("extend", complaint))["complaint"]
    if extensions == 2:  # made by the manager themselves
        second = await do(desk.gql, manager_token, "extend", **fields_for("extend", complaint))
        complaint = second["complaint"]
    assert complaint["extensionCount"] == extensions
    ended = await desk.walk(complaint, [end])
    result = await desk.move("extend", ended)  # no approver: it would not help anyway
    assert codes(result) == ["INVALID_TRANSITION"], result


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT, Role.ANALYST])
async def test_only_a_handler_manager_or_admin_may_be_assigned(desk: Desk, staff_factory, role):
    somebody, _ = await staff_factory(role)
    received = await desk.reach("RECEIVED")
    result = await desk.move("assign", received, handlerId=to_global_id("Staff", somebody.id))
    assert codes(result) == ["INVALID"] and result["errors"][0]["field"] == ["handlerId"]
    after = await desk.get(received)
    assert (after["version"], after["department"], after["handler"]) == (received["version"], None, None)
