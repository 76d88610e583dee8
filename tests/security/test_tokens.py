"""Bearer tokens that must not work: expired, revoked, forged (random, right shape, issued under another
secret, empty, with whitespace or non-ASCII), and the token of a deactivated staff member. Each gets
UNAUTHENTICATED on queries and mutations, and nothing is written."""

from __future__ import annotations

import secrets
from datetime import timedelta

from models.staff import Role, Staff, StaffToken
from services import auth, clock
from services.access import COMMAND_LINE
from tests.conftest import PASSWORD
from tests.security.campaign import graphql_schema, row_counts

QUERIES = {
    "customers": "{ customers(first: 1) { totalCount } }",
    "node": '{ node(id: "Q3VzdG9tZXI6MQ") { id } }',
    "auditLog": "{ auditLog(first: 1) { totalCount } }",
}
MUTATIONS = {
    "createCustomer": """mutation { createCustomer(input: {kind: INDIVIDUAL, name: "王芳"}) {
      customer { id } errors { code } } }""",
    "createStaff": """mutation { createStaff(input: {username: "intruder", displayName: "X", password: "longenough-42",
      role: ADMIN, department: OPERATIONS}) { staff { id } errors { code } } }""",
    "createSegment": """mutation { createSegment(input: {name: "all", filter: {}}) {
      segment { id } errors { code } } }""",
}


async def _expired(client, member: Staff, token: str) -> str:
    await StaffToken.filter(staff_id=member.id).update(expires_at=clock.now() - timedelta(seconds=1))
    return token


async def _revoked(client, member: Staff, token: str) -> str:
    await auth.revoke_tokens(member.id)
    return token


async def _logged_out(client, member: Staff, token: str) -> str:
    """Revoked by `logout` when the schema has it (else as `revoked`)."""
    if "logout" not in graphql_schema().mutation_type.fields:
        await auth.revoke_tokens(member.id)
        return token
    headers = {"Authorization": f"Bearer {token}"}
    body = (await client.post("/graphql", json={"query": "mutation { logout { __typename } }"}, headers=headers)).json()
    assert not body.get("errors"), body
    return token


async def _deactivated(client, member: Staff, token: str) -> str:
    await Staff.filter(id=member.id).update(active=False)
    return token


async def _other_secret(client, member: Staff, token: str) -> str:
    session = await auth.login(
        COMMAND_LINE, member.username, PASSWORD, secret_key="not-the-servers-secret", ttl=timedelta(hours=1)
    )
    return session.token


async def _right_shape(client, member: Staff, token: str) -> str:
    return secrets.token_urlsafe(32)


async def _altered(client, member: Staff, token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


async def _prefixed(client, member: Staff, token: str) -> str:
    return token + "x"


def _fixed(value: str):
    async def make(client, member: Staff, token: str) -> str:
        return value

    return make


TOKENS = {
    "expired": _expired,
    "revoked": _revoked,
    "deactivated staff": _deactivated,
    "logged out": _logged_out,
    "issued under another secret": _other_secret,
    "right shape, never issued": _right_shape,
    "one character changed": _altered,
    "one character added": _prefixed,
    "random": _fixed("hunter2"),
    "whitespace inside": _fixed("abc def"),
    "unicode": _fixed("tökén—令牌"),
    "very long": _fixed("A" * 8000),
    "sql": _fixed("' OR '1'='1"),
}
# Authorization headers without a usable bearer token at all.
HEADERS = {
    "empty Bearer": "Bearer ",
    "Bearer alone": "Bearer",
    "spaces": "Bearer     ",
    "Basic scheme": "Basic YWRtaW46cGFzc3dvcmQ=",
    "no scheme": "{token}",
    "Token scheme": "Token {token}",
    "tab": "Bearer\t\t",
}


async def _answers(client, header: bytes | str | None) -> dict[str, dict]:
    headers = {"Authorization": header} if header is not None else {}
    out = {}
    for name, query in {**QUERIES, **MUTATIONS}.items():
        response = await client.post("/graphql", json={"query": query}, headers=headers)
        assert response.status_code < 500, (name, response.status_code, response.text)
        out[name] = response.json()
    return out


def _wrong(label: str, answers: dict[str, dict]) -> list[str]:
    wrong = []
    for name, body in answers.items():
        codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
        if codes != ["UNAUTHENTICATED"]:
            wrong.append(f"{label}: {name} answered {body}")
        elif (body.get("data") or {}).get(name) is not None:
            wrong.append(f"{label}: {name} returned data {body['data']}")
    return wrong


async def test_a_token_that_must_not_work_is_unauthenticated_and_writes_nothing(client, staff_factory):
    """Each kind on a staff member of its own (one app for all: each test's app costs a truncation)."""
    wrong = []
    for kind, make in sorted(TOKENS.items()):
        member, token = await staff_factory(Role.ADMIN)
        bad = await make(client, member, token)
        before = await row_counts()
        wrong += _wrong(kind, await _answers(client, f"Bearer {bad}".encode()))
        if await row_counts() != before:
            wrong.append(f"{kind}: rows were written")
    assert wrong == [], "\n".join(wrong)


async def test_a_header_without_a_bearer_token_is_unauthenticated(client, staff_factory):
    _, token = await staff_factory(Role.ADMIN)
    before = await row_counts()
    wrong = []
    for kind, header in sorted(HEADERS.items()):
        wrong += _wrong(kind, await _answers(client, header.format(token=token)))
    assert wrong == []
    assert await row_counts() == before


async def test_no_header_at_all_is_unauthenticated(client, staff_factory):
    await staff_factory(Role.ADMIN)
    before = await row_counts()
    assert _wrong("no header", await _answers(client, None)) == []
    assert await row_counts() == before


async def test_the_valid_token_works_as_the_control(client, staff_factory):
    _, token = await staff_factory(Role.ADMIN)
    response = await client.post(
        "/graphql", json={"query": QUERIES["customers"]}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json() == {"data": {"customers": {"totalCount": 0}}}
