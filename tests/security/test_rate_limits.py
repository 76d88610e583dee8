"""Rate limits (services/limits.py): token buckets per client address and per username / survey link, in Redis
when CRM_REDIS_URL is set, in the process otherwise. A refused attempt is LIMIT_EXCEEDED, with `Retry-After` on
the HTTP answer (429 for the survey page). The Redis tests run when CRM_TEST_REDIS_URL is set."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from app import create_app
from core import settings as core_settings
from models.audit import AuditEntry
from models.customers import Customer, CustomerKind
from models.staff import Role
from models.surveys import Channel, SurveyInvitation
from services import clock, limits, surveys
from services.errors import ErrorCode
from services.limits import LimitSettings, RateLimited
from tests.conftest import PASSWORD, TEST_REDIS_URL, RunningApp, make_staff, with_overrides
from tests.database import empty_all_tables

LOGIN = """mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token errors { field message code } }
}"""
PUBLIC = "query($t: String!) { surveyByToken(token: $t) { title } }"
SUBMIT = """mutation($t: String!) { submitSurveyResponse(input: {token: $t, answers: []}) {
  accepted errors { field code } } }"""
needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="CRM_TEST_REDIS_URL is not set")
BACKENDS = ["process", pytest.param("redis", marks=needs_redis)]
SMALL = LimitSettings(
    limit_login_ip_burst=3,
    limit_login_ip_per_hour=60,  # a token a minute
    limit_login_user_burst=4,
    limit_login_user_per_hour=60,
    limit_survey_read_ip_burst=3,
    limit_survey_read_ip_per_hour=60,
    limit_survey_read_token_burst=2,
    limit_survey_read_token_per_hour=60,
    limit_survey_submit_ip_burst=2,
    limit_survey_submit_ip_per_hour=60,
    limit_survey_submit_token_burst=2,
    limit_survey_submit_token_per_hour=60,
)


def _tuned(settings, backend: str, sizes: LimitSettings = SMALL):
    return with_overrides(
        settings,
        redis_url=TEST_REDIS_URL if backend == "redis" else None,
        sections={**settings.sections, LimitSettings: sizes},
    )


@pytest.fixture(autouse=True)
def _empty_redis_buckets() -> None:
    """Every test starts with full buckets in Redis too (the in-process ones belong to each test's settings)."""
    if TEST_REDIS_URL:
        import redis

        client = redis.Redis.from_url(TEST_REDIS_URL)
        try:
            for key in client.scan_iter(match="crm:limit:*"):
                client.delete(key)
        finally:
            client.close()


def _redis_keys(pattern: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        return list(client.scan_iter(match=pattern))
    finally:
        client.close()


@pytest.fixture
def frozen() -> Iterator[None]:
    with clock.freeze(clock.now()):
        yield


@pytest.fixture
def using(settings) -> Iterator:
    """`using(backend)`: the process runs with small limits on that backend (for the service-level tests)."""
    previous = core_settings._active

    def use(backend: str):
        tuned = _tuned(settings, backend)
        core_settings.use(tuned)
        return tuned

    yield use
    core_settings.use(previous)


@asynccontextmanager
async def _http(settings, backend: str, peer: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    tuned = _tuned(settings, backend)
    async with RunningApp(create_app(tuned)).running() as running:
        await empty_all_tables()
        async with _client(running, peer) as http:
            yield http


def _client(running, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=running, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _subject() -> str:
    return secrets.token_hex(8)


# ---------------------------------------------------------------- the buckets


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_burst_passes_the_next_is_refused_and_a_token_comes_back_in_time(using, backend, frozen):
    using(backend)
    who = _subject()
    for _ in range(3):
        await limits.take(limits.LOGIN_IP, who)
    with pytest.raises(RateLimited) as refused:
        await limits.take(limits.LOGIN_IP, who)
    assert refused.value.code == ErrorCode.LIMIT_EXCEEDED and refused.value.field == ["username"]
    assert 59 <= refused.value.retry_after <= 60 and "try again in" in refused.value.message
    clock.travel(timedelta(seconds=61))
    await limits.take(limits.LOGIN_IP, who)
    with pytest.raises(RateLimited):
        await limits.take(limits.LOGIN_IP, who)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_subjects_and_rules_are_counted_apart(using, backend, frozen):
    using(backend)
    who, other = _subject(), _subject()
    for _ in range(3):
        await limits.take(limits.LOGIN_IP, who)
    await limits.take(limits.LOGIN_IP, other)
    await limits.take(limits.LOGIN_USER, who)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_takes_get_no_more_than_the_burst(using, backend, frozen):
    using(backend)
    who = _subject()

    async def attempt() -> bool:
        try:
            await limits.take(limits.LOGIN_USER, who)
            return True
        except RateLimited:
            return False

    results = await asyncio.gather(*[attempt() for _ in range(12)])
    assert sorted(results) == [False] * 8 + [True] * 4


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_token_given_back_can_be_taken_again_but_never_more_than_the_burst(using, backend, frozen):
    using(backend)
    who = _subject()
    for _ in range(5):
        await limits.give_back(limits.LOGIN_IP, who)  # a full bucket stays full
    for _ in range(3):
        await limits.take(limits.LOGIN_IP, who)
    await limits.give_back(limits.LOGIN_IP, who)
    await limits.take(limits.LOGIN_IP, who)
    with pytest.raises(RateLimited):
        await limits.take(limits.LOGIN_IP, who)


@needs_redis
async def test_redis_keeps_no_subject_in_clear(using, frozen):
    import redis.asyncio as aioredis

    using("redis")
    who = f"203.0.113.{secrets.randbelow(250)}-{_subject()}"
    await limits.take(limits.LOGIN_IP, who)
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    try:
        keys = [k.decode() async for k in client.scan_iter(match="crm:limit:login:ip:*")]
        assert keys and not any(who in k for k in keys)
        ttls = [await client.ttl(k) for k in keys]
        assert all(0 < ttl <= 3 * 60 + 60 for ttl in ttls)  # a full bucket's worth of refill, and a minute
    finally:
        await client.aclose()


def test_limits_are_settings_with_checked_values():
    settings = core_settings.Settings.from_env({"CRM_LIMIT_LOGIN_IP_BURST": "7", "CRM_LIMIT_LOGIN_IP_PER_HOUR": "30"})
    assert settings.of(LimitSettings).limit_login_ip_burst == 7
    with pytest.raises(core_settings.SettingsError, match="CRM_LIMIT_SURVEY_READ_IP_BURST"):
        core_settings.Settings.from_env({"CRM_LIMIT_SURVEY_READ_IP_BURST": "0"})


# ---------------------------------------------------------------- sign-in


@pytest.mark.parametrize("backend", BACKENDS)
async def test_login_is_limited_per_address_with_retry_after(settings, backend, frozen):
    async with _http(settings, backend) as http:
        member = await make_staff(Role.ANALYST)
        for n in range(3):
            answer = await http.post("/graphql", json={"query": LOGIN, "variables": {"u": f"guess-{n}", "p": "x"}})
            assert answer.json()["data"]["login"]["errors"][0]["code"] == "INVALID"
            assert "retry-after" not in answer.headers
        answer = await http.post("/graphql", json={"query": LOGIN, "variables": {"u": member.username, "p": PASSWORD}})
        login = answer.json()["data"]["login"]
        assert login["token"] is None and [e["code"] for e in login["errors"]] == ["LIMIT_EXCEEDED"]
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        assert (await AuditEntry.filter(action="login.failed").order_by("-id").first()).detail == {
            "reason": "address_limited"
        }
    if backend == "redis":  # counted in Redis indeed, not in the process
        assert _redis_keys("crm:limit:login:ip:*")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_login_is_limited_per_username_across_addresses(settings, backend, frozen):
    async with _http(settings, backend) as http:
        member = await make_staff(Role.ANALYST)
        for n in range(4):  # from 4 addresses: the lockout counts these too, but not to 5
            async with _client(http._transport.app, f"198.51.100.{n + 1}") as other:
                await other.post("/graphql", json={"query": LOGIN, "variables": {"u": member.username, "p": "x"}})
        answer = await http.post("/graphql", json={"query": LOGIN, "variables": {"u": member.username, "p": PASSWORD}})
        assert [e["code"] for e in answer.json()["data"]["login"]["errors"]] == ["LIMIT_EXCEEDED"]
        assert int(answer.headers["retry-after"]) >= 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_successful_logins_do_not_use_up_the_limits(settings, backend, frozen):
    async with _http(settings, backend) as http:
        member = await make_staff(Role.ANALYST)
        for _ in range(8):  # more than either burst
            answer = await http.post(
                "/graphql", json={"query": LOGIN, "variables": {"u": member.username, "p": PASSWORD}}
            )
            assert answer.json()["data"]["login"]["token"]


async def test_a_batch_of_logins_gets_no_more_attempts_than_the_address_limit(settings, frozen):
    async with _http(settings, "process") as http:
        batch = [{"query": LOGIN, "variables": {"u": f"guess-{n}", "p": "x"}} for n in range(12)]
        answer = await http.post("/graphql", json=batch)
        codes = [r["data"]["login"]["errors"][0]["code"] for r in answer.json()]
        assert codes.count("INVALID") == 3 and codes.count("LIMIT_EXCEEDED") == 9
        assert int(answer.headers["retry-after"]) >= 1


# ---------------------------------------------------------------- the public survey operations


async def _invitation() -> str:
    """A live survey link's token."""
    token = secrets.token_urlsafe(32)
    template = (await surveys.ready_made())[0]
    customer = await Customer.create(
        customer_no=f"T{secrets.randbelow(10**9):09d}", kind=CustomerKind.INDIVIDUAL, name="王芳"
    )
    await SurveyInvitation.create(
        template=template,
        customer=customer,
        channel=Channel.SMS,
        token_hash=surveys.hash_token(token),
        expires_at=clock.now() + timedelta(days=14),
    )
    return token


@pytest.mark.parametrize("backend", BACKENDS)
async def test_survey_by_token_is_limited_per_address(settings, backend, frozen):
    async with _http(settings, backend) as http:
        for _ in range(3):
            answer = await http.post("/graphql", json={"query": PUBLIC, "variables": {"t": secrets.token_urlsafe(32)}})
            assert answer.json()["data"]["surveyByToken"] is None
        answer = await http.post("/graphql", json={"query": PUBLIC, "variables": {"t": secrets.token_urlsafe(32)}})
        assert answer.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert 1 <= int(answer.headers["retry-after"]) <= 60


@pytest.mark.parametrize("backend", BACKENDS)
async def test_survey_by_token_is_limited_per_link(settings, backend, frozen):
    async with _http(settings, backend) as http:
        link = await _invitation()
        for n in range(2):
            async with _client(http._transport.app, f"198.51.100.{n + 1}") as other:
                body = (await other.post("/graphql", json={"query": PUBLIC, "variables": {"t": link}})).json()
                assert body["data"]["surveyByToken"]["title"]
        answer = await http.post("/graphql", json={"query": PUBLIC, "variables": {"t": link}})
        assert answer.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert int(answer.headers["retry-after"]) >= 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_survey_page_answers_429_with_retry_after(settings, backend, frozen):
    async with _http(settings, backend) as http:
        link = await _invitation()
        assert (await http.get(f"/s/{link}")).status_code == 200
        assert (await http.get(f"/s/{link}")).status_code == 200
        refused = await http.get(f"/s/{link}")  # the link's own limit (2)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        async with _client(http._transport.app, "198.51.100.9") as other:
            for _ in range(3):
                assert (await other.get(f"/s/{secrets.token_urlsafe(32)}")).status_code == 404
            refused = await other.get(f"/s/{secrets.token_urlsafe(32)}")  # the address's limit (3)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_submissions_are_limited_with_retry_after(settings, backend, frozen):
    async with _http(settings, backend) as http:
        link = await _invitation()
        for _ in range(2):
            body = (await http.post("/graphql", json={"query": SUBMIT, "variables": {"t": link}})).json()
            assert [e["code"] for e in body["data"]["submitSurveyResponse"]["errors"]] == ["REQUIRED"]
        answer = await http.post("/graphql", json={"query": SUBMIT, "variables": {"t": link}})
        errors = answer.json()["data"]["submitSurveyResponse"]["errors"]
        assert [e["code"] for e in errors] == ["LIMIT_EXCEEDED"]
        assert int(answer.headers["retry-after"]) >= 1


async def test_api_requests_are_limited_per_token_and_per_address(settings):
    """Every GraphQL request takes from its bearer token's bucket, or from its address's when it has none."""
    sizes = replace(
        settings.of(LimitSettings),
        limit_api_token_burst=3,
        limit_api_token_per_hour=1,
        limit_api_ip_burst=2,
        limit_api_ip_per_hour=1,
    )
    small = with_overrides(settings, sections={**settings.sections, LimitSettings: sizes})
    async with RunningApp(create_app(small)).running() as running, _client(running, "203.0.113.9") as http:
        query = {"query": "{ __typename }"}
        for _ in range(2):
            assert (await http.post("/graphql", json=query)).status_code == 200
        refused = await http.post("/graphql", json=query)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert refused.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        bearer = {"Authorization": "Bearer some-token"}  # its own bucket, valid or not
        codes = [(await http.post("/graphql", json=query, headers=bearer)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
