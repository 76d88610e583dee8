"""A mutation sent without a valid token is UNAUTHENTICATED and leaves an audit entry: the mutation's name and
the client's address, never the variables or the token."""

from __future__ import annotations

import json

from models.audit import AuditEntry
from services import auth

FILE = """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) { complaint { id } errors { code } } }"""
SECRET_SUMMARY = "客户身份证 110105199001011234 被冒用"
ACTION = "auth.unauthenticated_mutation"


def _variables() -> dict:
    return {
        "input": {"customerId": "Q3VzdG9tZXI6MQ==", "channel": "PHONE", "summary": SECRET_SUMMARY, "description": "d"}
    }


async def test_a_mutation_without_a_token_is_audited(gql):
    body = (await gql.raw(FILE, _variables())).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    [entry] = await AuditEntry.filter(action=ACTION)
    assert entry.actor_id is None and entry.ip == "203.0.113.7"
    assert entry.detail == {"mutation": "fileComplaint", "token": "missing"}
    assert SECRET_SUMMARY not in json.dumps(entry.detail, ensure_ascii=False)


async def test_a_mutation_with_a_revoked_token_is_audited_without_the_token(gql, staff_factory):
    member, token = await staff_factory()
    await auth.revoke_tokens(member.id)
    body = (await gql.raw(FILE, _variables(), token=token)).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    [entry] = await AuditEntry.filter(action=ACTION)
    assert entry.detail == {"mutation": "fileComplaint", "token": "invalid"}
    assert token not in json.dumps(entry.detail) and entry.actor_id is None


async def test_each_attempt_is_audited_and_public_mutations_are_not(gql):
    query = """mutation { a: exportAuditLog(input: {}) { errors { code } } b: exportAuditLog(input: {}) {
      errors { code } } }"""
    body = (await gql.raw(query)).json()
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}
    # The first refusal nulls the (non-null) payload and ends the serial execution: one entry for the request.
    assert [e.detail["mutation"] for e in await AuditEntry.filter(action=ACTION)] == ["exportAuditLog"]
    await gql.raw("mutation { exportAuditLog(input: {}) { errors { code } } }")
    assert await AuditEntry.filter(action=ACTION).count() == 2
    # login is public: a failed one is audited as login.failed, not as an unauthenticated mutation.
    login = """mutation { login(input: {username: "nobody", password: "wrong-1"}) { errors { code } } }"""
    await gql.raw(login)
    assert await AuditEntry.filter(action=ACTION).count() == 2


async def test_an_authenticated_mutation_leaves_no_such_entry(gql, admin):
    _, token = admin
    await gql("mutation { exportAuditLog(input: {}) { errors { code } } }", token=token)
    assert not await AuditEntry.filter(action=ACTION).exists()
