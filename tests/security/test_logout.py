"""`logout` revokes the bearer token the request was sent with (docs/DOMAIN.md), and only that one; it is audited."""

from __future__ import annotations

from models.audit import AuditEntry
from models.staff import Role, StaffToken
from tests.conftest import token_for

LOGOUT = "mutation { logout { revoked errors { field message code } } }"
ME = "{ me { username } }"


async def test_logout_revokes_the_token_of_the_request(gql, staff_factory):
    member, token = await staff_factory(Role.RELATIONSHIP_MANAGER)
    assert (await gql(ME, token=token))["me"]["username"] == member.username
    assert (await gql(LOGOUT, token=token))["logout"] == {"revoked": True, "errors": []}
    assert (await gql(ME, token=token))["me"] is None
    errors = await gql.errors("{ staff { totalCount } }", token=token)
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    again = await gql.errors(LOGOUT, token=token)
    assert again[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await StaffToken.filter(staff_id=member.id, revoked_at__isnull=True).count() == 0


async def test_logout_leaves_the_other_sessions_alone(gql, app, settings, staff_factory):
    member, token = await staff_factory(Role.ANALYST)
    other = await token_for(member, settings)  # the same staff member on another device
    _, someone_else = await staff_factory(Role.ANALYST)
    assert (await gql(LOGOUT, token=token))["logout"]["revoked"] is True
    assert (await gql(ME, token=other))["me"]["username"] == member.username
    assert (await gql(ME, token=someone_else))["me"] is not None


async def test_logout_is_audited(gql, staff_factory):
    member, token = await staff_factory(Role.AUDITOR)
    await gql(LOGOUT, token=token)
    entry = await AuditEntry.get(action="logout")
    assert entry.actor_id == member.id and entry.ip == "203.0.113.7"
    assert token not in str(entry.detail)


async def test_logout_needs_a_token(gql, app):
    errors = await gql.errors(LOGOUT)
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not await AuditEntry.filter(action="logout").exists()
