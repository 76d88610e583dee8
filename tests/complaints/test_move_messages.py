"""The INVALID_TRANSITION messages name the move in proper English ("cannot be started", not "startd")."""

from __future__ import annotations

import pytest

from models.complaints import ComplaintStatus
from models.staff import Role
from services import complaint_rules as rules
from tests.complaints.helpers import codes, do, file, new_customer

# Written out here, independently of complaint_rules.DONE.
PAST = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "start": "started",
    "escalate": "escalated",
    "extend": "extended",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
    "withdraw": "withdrawn",
}
INPUTS = {
    "acknowledge": {},
    "assign": {"department": "COMPLAINTS"},
    "start": {},
    "escalate": {"reason": "客户要求上级处理"},
    "extend": {"reason": "案情复杂"},
    "resolve": {"version": 0, "resolution": "已处理"},
    "close": {"customerAccepted": True},
    "reopen": {"reason": "客户不接受"},
    "withdraw": {"reason": "客户撤回"},
}


def test_every_move_has_its_past_participle():
    assert rules.DONE == PAST and set(rules.DONE) == set(rules.MOVES)


@pytest.mark.parametrize("move", sorted(rules.MOVES))
@pytest.mark.parametrize("status", list(ComplaintStatus), ids=lambda s: s.value)
def test_every_refusal_reads_as_english(move, status):
    if rules.allowed(move, status):
        return
    message = rules.refusal(move, status)
    assert message == f"A {status.value} complaint cannot be {PAST[move]}"
    assert not any(bad in message for bad in ("startd", "reopend", "withdrawd", "extendd", "assignd"))


async def test_every_move_on_a_withdrawn_complaint_says_which_move_it_refused(gql, admin, staff_factory):
    """WITHDRAWN is final: every move is refused, each with its own message, through the API."""
    _, admin_token = admin
    _, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_customer(gql, admin_token)
    complaint = await file(gql, admin_token, customer["id"])
    withdrawn = await do(gql, token, "withdraw", id=complaint["id"], reason="客户撤回")
    assert withdrawn["complaint"]["status"] == "WITHDRAWN"
    version = withdrawn["complaint"]["version"]
    for move, fields in INPUTS.items():
        fields = {**fields, "version": version} if move == "resolve" else fields
        result = await do(gql, token, move, id=complaint["id"], **fields)
        assert codes(result) == ["INVALID_TRANSITION"], (move, result)
        expected = (
            "A WITHDRAWN complaint has no deadline to extend"
            if move == "extend"
            else f"A WITHDRAWN complaint cannot be {PAST[move]}"
        )
        assert result["errors"][0]["message"] == expected, move


async def test_start_and_reopen_of_a_new_complaint(gql, admin, staff_factory):
    _, admin_token = admin
    _, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_customer(gql, admin_token)
    complaint = await file(gql, admin_token, customer["id"])
    started = await do(gql, token, "start", id=complaint["id"])
    assert started["errors"][0]["message"] == "A RECEIVED complaint cannot be started"
    reopened = await do(gql, token, "reopen", id=complaint["id"], reason="再议")
    assert reopened["errors"][0]["message"] == "A RECEIVED complaint cannot be reopened"
