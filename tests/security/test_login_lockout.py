"""The login lockout (docs/DOMAIN.md, "Limits and protection"): 5 failures lock the account for 15 minutes, counted
atomically, so that the operations of one batched request, the aliases of one operation and parallel requests
get no more than 5 guesses in all; a locked account answers like a wrong password, and takes as long."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher

from app import create_app
from models.audit import AuditEntry
from models.staff import Role, Staff
from services import auth, clock
from services.limits import LimitSettings
from tests.conftest import PASSWORD, RunningApp, make_staff, with_overrides
from tests.database import empty_all_tables

LOGIN = """mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token errors { field message code } }
}"""
WRONG = "wrong-password-1"
GUESSES = 19
RIGHT_AT = 14  # the 15th of 19


def _batch(username: str) -> list[dict]:
    return [
        {"query": LOGIN, "variables": {"u": username, "p": PASSWORD if n == RIGHT_AT else f"{WRONG}{n}"}}
        for n in range(GUESSES)
    ]


async def _reasons(member: Staff) -> list[str]:
    entries = await AuditEntry.filter(action="login.failed", subject_id=str(member.id)).order_by("id")
    return [e.detail["reason"] for e in entries]


@asynccontextmanager
async def _roomy(settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with rate limits too wide to matter: the lockout alone stands between a guesser and the account."""
    wide = LimitSettings(
        limit_login_ip_burst=1000,
        limit_login_ip_per_hour=1000,
        limit_login_user_burst=1000,
        limit_login_user_per_hour=1000,
    )
    tuned = with_overrides(settings, sections={**settings.sections, LimitSettings: wide})
    async with RunningApp(create_app(tuned)).running() as running:
        await empty_all_tables()
        transport = httpx.ASGITransport(app=running, client=("203.0.113.7", 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_a_batch_with_the_right_password_at_15_of_19_does_not_sign_in(settings):
    async with _roomy(settings) as http:
        member = await make_staff(Role.ANALYST)
        results = (await http.post("/graphql", json=_batch(member.username))).json()
        assert len(results) == GUESSES
        assert [r["data"]["login"]["token"] for r in results] == [None] * GUESSES
        reasons = await _reasons(member)
        assert reasons.count("bad_password") == 5 and reasons.count("locked") == GUESSES - 5
        assert (await Staff.get(id=member.id)).locked_until > clock.now() + timedelta(minutes=14)


async def test_the_same_batch_with_default_limits_does_not_sign_in(gql, app):
    member = await make_staff(Role.ANALYST)
    results = (await gql.http.post("/graphql", json=_batch(member.username))).json()
    assert [r["data"]["login"]["token"] for r in results] == [None] * GUESSES
    assert (await _reasons(member)).count("bad_password") <= 5


async def test_aliases_of_one_operation_get_five_guesses_in_all(settings):
    fields = " ".join(
        f'a{n}: login(input: {{username: $u, password: "{PASSWORD if n == RIGHT_AT else WRONG + str(n)}"}}) {{ token }}'
        for n in range(GUESSES)
    )
    async with _roomy(settings) as http:
        member = await make_staff(Role.ANALYST)
        body = (
            await http.post(
                "/graphql", json={"query": f"mutation($u: String!) {{ {fields} }}", "variables": {"u": member.username}}
            )
        ).json()
        assert [v["token"] for v in body["data"].values()] == [None] * GUESSES
        assert (await _reasons(member)).count("bad_password") == 5


async def test_parallel_requests_get_five_guesses_in_all(settings):
    """Separate requests run in any order, so which five are checked is chance: with wrong passwords only,
    exactly five are checked against the account's hash, every other one finds it locked."""
    async with _roomy(settings) as http:
        member = await make_staff(Role.ANALYST)
        wrong = [{"query": LOGIN, "variables": {"u": member.username, "p": f"{WRONG}{n}"}} for n in range(GUESSES)]
        answers = await asyncio.gather(*[http.post("/graphql", json=one) for one in wrong])
        assert [a.json()["data"]["login"]["token"] for a in answers] == [None] * GUESSES
        reasons = await _reasons(member)
    assert reasons.count("bad_password") == 5 and reasons.count("locked") == GUESSES - 5


async def test_a_locked_account_answers_exactly_like_a_wrong_password(gql, app):
    member = await make_staff(Role.SERVICE_AGENT)
    wrong = [(await gql(LOGIN, {"u": member.username, "p": WRONG}))["login"] for _ in range(5)]
    locked = (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]
    assert (
        locked
        == wrong[0]
        == {"token": None, "errors": [{"field": ["password"], "message": auth.LOGIN_FAILED, "code": "INVALID"}]}
    )
    assert (await _reasons(member))[-1] == "locked"
    clock.travel(timedelta(minutes=15, seconds=1))
    try:
        assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"]
    finally:
        clock.travel(-timedelta(minutes=15, seconds=1))


async def test_a_locked_account_verifies_a_password_hash_too(gql, app, monkeypatch):
    member = await make_staff(Role.SERVICE_AGENT)
    await Staff.filter(id=member.id).update(locked_until=clock.now() + timedelta(minutes=10))
    verified: list[str] = []
    original = auth._verify_now
    monkeypatch.setattr(auth, "_verify_now", lambda h, p: verified.append(p) or original(h, p))
    assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"] is None
    assert verified == [PASSWORD]


@pytest.mark.timeout(120)
async def test_a_locked_account_takes_as_long_as_a_wrong_password(gql, app, monkeypatch):
    # Hashes of a cost where verification dominates the answer's time (~10-20 ms).
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1))
    # Two of each, interleaved: 8 samples a side, so that a busy machine (the suite runs in parallel) moves both
    # medians alike; 17 attempts in all stay below the per-address burst, 4 per wrong user below its lockout.
    wrong_users = [await make_staff(Role.ANALYST) for _ in range(2)]
    locked_users = [await make_staff(Role.ANALYST) for _ in range(2)]
    await Staff.filter(id__in=[m.id for m in locked_users]).update(locked_until=clock.now() + timedelta(minutes=10))

    async def timed(username: str) -> float:
        started = time.perf_counter()
        await gql(LOGIN, {"u": username, "p": WRONG})
        return time.perf_counter() - started

    await timed(locked_users[0].username)  # warm-up (the dummy hash is made once)
    wrong, locked = [], []
    for _ in range(4):
        for wrong_user, locked_user in zip(wrong_users, locked_users, strict=True):
            wrong.append(await timed(wrong_user.username))
            locked.append(await timed(locked_user.username))
    assert statistics.median(locked) > 0.6 * statistics.median(wrong), (locked, wrong)


async def test_a_success_resets_the_count_and_the_right_password_counts_no_failure(gql, app):
    member = await make_staff(Role.SERVICE_AGENT)
    for _ in range(4):
        await gql(LOGIN, {"u": member.username, "p": WRONG})
    assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"]
    reloaded = await Staff.get(id=member.id)
    assert (reloaded.failed_logins, reloaded.locked_until) == (0, None)
