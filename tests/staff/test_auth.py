from datetime import timedelta

from models.audit import AuditEntry
from models.staff import Role, Staff, StaffToken
from services import clock
from tests.conftest import PASSWORD, make_staff

LOGIN = """mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token expiresAt staff { username role } errors { field message code } }
}"""
ME = "{ me { username role department branch active } }"
UPDATE = """mutation($input: UpdateStaffInput!) {
  updateStaff(input: $input) { staff { id active } errors { field message code } }
}"""


async def test_login_gives_a_token_that_works_until_it_expires(gql, app, settings):
    member = await make_staff(Role.RELATIONSHIP_MANAGER, branch="北京朝阳支行")
    data = (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]
    assert data["errors"] == []
    assert data["staff"] == {"username": member.username, "role": "RELATIONSHIP_MANAGER"}
    assert len(data["token"]) >= 40
    me = (await gql(ME, token=data["token"]))["me"]
    assert me["username"] == member.username and me["branch"] == "北京朝阳支行"
    # Only a keyed hash of the token is stored.
    stored = await StaffToken.get(staff_id=member.id)
    assert data["token"] not in stored.token_hash and len(stored.token_hash) == 64

    await StaffToken.filter(id=stored.id).update(expires_at=clock.now() - timedelta(seconds=1))
    assert (await gql(ME, token=data["token"]))["me"] is None
    errors = await gql.errors("{ staff { totalCount } }", token=data["token"])
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_login_is_case_insensitive_for_the_username(gql, app):
    member = await make_staff(Role.ANALYST, username="zhang.wei")
    data = (await gql(LOGIN, {"u": "  Zhang.Wei ", "p": PASSWORD}))["login"]
    assert data["errors"] == [] and data["staff"]["username"] == member.username


async def test_failed_logins_say_nothing_about_which_part_was_wrong(gql, app):
    member = await make_staff(Role.ANALYST)
    wrong_password = (await gql(LOGIN, {"u": member.username, "p": "wrong-password-1"}))["login"]
    unknown_user = (await gql(LOGIN, {"u": "nobody", "p": PASSWORD}))["login"]
    assert wrong_password["token"] is None and unknown_user["token"] is None
    assert wrong_password["errors"] == unknown_user["errors"]
    assert wrong_password["errors"][0]["code"] == "INVALID"
    entries = await AuditEntry.filter(action="login.failed").order_by("id")
    assert [e.detail["reason"] for e in entries] == ["bad_password", "unknown_user"]
    assert [e.actor_name for e in entries] == [member.username, "nobody"]
    assert all(e.ip == "203.0.113.7" and e.request_id for e in entries)


async def test_login_success_is_audited(gql, app):
    member = await make_staff(Role.AUDITOR)
    await gql(LOGIN, {"u": member.username, "p": PASSWORD})
    entry = await AuditEntry.get(action="login.success")
    assert entry.actor_id == member.id and entry.ip == "203.0.113.7"


async def test_five_failures_lock_the_account_for_fifteen_minutes(gql, app):
    member = await make_staff(Role.SERVICE_AGENT)
    for _ in range(5):
        await gql(LOGIN, {"u": member.username, "p": "wrong-password-1"})
    locked = (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]
    assert locked["token"] is None
    reloaded = await Staff.get(id=member.id)
    assert reloaded.locked_until is not None
    assert timedelta(minutes=14) < reloaded.locked_until - clock.now() <= timedelta(minutes=15)
    assert (await AuditEntry.filter(action="login.failed").order_by("-id").first()).detail == {"reason": "locked"}

    await Staff.filter(id=member.id).update(locked_until=clock.now() - timedelta(seconds=1))
    unlocked = (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]
    assert unlocked["token"] and unlocked["errors"] == []


async def test_a_success_resets_the_failure_count(gql, app):
    member = await make_staff(Role.SERVICE_AGENT)
    for _ in range(4):
        await gql(LOGIN, {"u": member.username, "p": "wrong-password-1"})
    assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"]
    for _ in range(4):
        await gql(LOGIN, {"u": member.username, "p": "wrong-password-1"})
    assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"]


async def test_deactivation_revokes_every_session_and_blocks_login(gql, admin, staff_factory):
    _, admin_token = admin
    member, token = await staff_factory(Role.RELATIONSHIP_MANAGER)
    assert (await gql(ME, token=token))["me"]["active"] is True

    from schema.base import to_global_id

    result = (
        await gql(UPDATE, {"input": {"id": to_global_id("Staff", member.id), "active": False}}, token=admin_token)
    )["updateStaff"]
    assert result["errors"] == [] and result["staff"]["active"] is False
    assert (await gql(ME, token=token))["me"] is None
    assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"] is None
    assert await StaffToken.filter(staff_id=member.id, revoked_at__isnull=True).count() == 0


async def test_a_new_password_ends_old_sessions(gql, admin, staff_factory):
    _, admin_token = admin
    member, token = await staff_factory(Role.ANALYST)
    from schema.base import to_global_id

    result = (
        await gql(
            UPDATE,
            {"input": {"id": to_global_id("Staff", member.id), "password": "a-new-secret-99"}},
            token=admin_token,
        )
    )["updateStaff"]
    assert result["errors"] == []
    assert (await gql(ME, token=token))["me"] is None
    assert (await gql(LOGIN, {"u": member.username, "p": "a-new-secret-99"}))["login"]["token"]


async def test_garbage_and_missing_tokens(gql, app):
    assert (await gql(ME))["me"] is None
    assert (await gql(ME, token="not-a-token"))["me"] is None
    raw = await gql.raw(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert raw.json()["data"]["me"] is None
    errors = await gql.errors("{ staff { totalCount } }")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_mutations_other_than_login_need_a_token(gql, app):
    errors = await gql.errors("""mutation { createStaff(input: {username: "x", displayName: "x",
        password: "long-enough-1", role: ADMIN, department: OPERATIONS}) { errors { code } } }""")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_many_failures_from_one_address_are_stopped_across_usernames(gql, app):
    from services.limits import LimitSettings

    member = await make_staff(Role.ANALYST)
    for i in range(LimitSettings().limit_login_ip_burst):
        await gql(LOGIN, {"u": f"guess-{i}", "p": "wrong-password-1"})
    limited = (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]
    assert limited["token"] is None and limited["errors"][0]["code"] == "LIMIT_EXCEEDED"
    assert (await AuditEntry.filter(action="login.failed").order_by("-id").first()).detail == {
        "reason": "address_limited"
    }
    # Another address is not affected.
    import httpx

    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        other = await elsewhere.post(
            "/graphql", json={"query": LOGIN, "variables": {"u": member.username, "p": PASSWORD}}
        )
    assert other.json()["data"]["login"]["token"]
