"""Rate limits: token buckets, in Redis when `CRM_REDIS_URL` is set (shared by every API process, one Lua
script per take: atomic), in this process otherwise.

A bucket holds at most `burst` tokens and gains `per_hour` tokens an hour; each attempt takes one, and an
attempt that finds the bucket empty is refused with LIMIT_EXCEEDED (`RateLimited`, which says how many seconds
until a token is back: the `Retry-After` of HTTP answers). A token is taken *before* the work it guards, so that
the operations of one batched request, aliases and parallel requests all count: no more get through than the
bucket holds. `give_back` returns a token (a successful sign-in does not count against its address).

The rules (`Rule`) and their sizes (`LimitSettings`, CRM_LIMIT_*) are declared here, once; the subject of a
bucket (an address, a username, a survey link) is only ever stored as a keyed hash.

Redis out of reach (down, refusing, hung past REDIS_TIMEOUT): the limits fail over to this process's own buckets
(each process then allows what the bucket holds, as when no Redis is configured), with one WARNING line every
REDIS_REST seconds; a request is never refused nor answered 500 because Redis is down.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from core.settings import Settings, SettingsError, active, section
from services import clock
from services.errors import DomainError, ErrorCode

log = logging.getLogger("crm.limits")


@section
@dataclass(frozen=True)
class LimitSettings:
    # Each limit is a token bucket: CRM_LIMIT_<RULE>_BURST attempts at once, refilled at CRM_LIMIT_<RULE>_PER_HOUR.
    # API requests (GraphQL over HTTP) per bearer token: a stolen or runaway client. Generous for people.
    limit_api_token_burst: int = 300
    limit_api_token_per_hour: int = 36_000
    # API requests per client address without a token (anonymous probing; sign-ins have their own limits too).
    limit_api_ip_burst: int = 120
    limit_api_ip_per_hour: int = 3_600
    # Sign-in attempts per client address (password spraying across usernames); successful ones are given back.
    limit_login_ip_burst: int = 20
    limit_login_ip_per_hour: int = 80
    # Sign-in attempts per username, whatever the address (a distributed guess at one account, and the argon2
    # work it costs us); successful ones are given back. The account lockout (5 failures) applies besides.
    limit_login_user_burst: int = 10
    limit_login_user_per_hour: int = 40
    # Survey links opened (page or surveyByToken) per client address: guessing links.
    limit_survey_read_ip_burst: int = 30
    limit_survey_read_ip_per_hour: int = 180
    # Openings of one survey link (a leaked link being scraped or hammered).
    limit_survey_read_token_burst: int = 20
    limit_survey_read_token_per_hour: int = 120
    # Survey answers submitted per client address (flooding answers).
    limit_survey_submit_ip_burst: int = 10
    limit_survey_submit_ip_per_hour: int = 60
    # Submissions of one survey link (retrying answers on one link).
    limit_survey_submit_token_burst: int = 5
    limit_survey_submit_token_per_hour: int = 30

    def check(self) -> None:
        for name, value in vars(self).items():
            upper = 100_000 if name.endswith("_burst") else 3_600_000
            if not 1 <= value <= upper:
                raise SettingsError(f"CRM_{name.upper()} must be between 1 and {upper}")


@dataclass(frozen=True)
class Rule:
    name: str  # the bucket's key prefix, e.g. "login:ip"
    setting: str  # the LimitSettings prefix of its sizes, e.g. "limit_login_ip"
    what: str  # for the message: "Too many <what>"
    field: str | None = None

    def sizes(self, settings: Settings) -> tuple[int, float]:
        """(burst, tokens per second)."""
        values = settings.of(LimitSettings)
        return getattr(values, f"{self.setting}_burst"), getattr(values, f"{self.setting}_per_hour") / 3600


API_TOKEN = Rule("api:token", "limit_api_token", "requests with this token")
API_IP = Rule("api:ip", "limit_api_ip", "requests without a token from your address")
LOGIN_IP = Rule("login:ip", "limit_login_ip", "sign-in attempts from your address", "username")
LOGIN_USER = Rule("login:user", "limit_login_user", "sign-in attempts for this username", "username")
SURVEY_READ_IP = Rule("survey.read:ip", "limit_survey_read_ip", "survey requests")
SURVEY_READ_TOKEN = Rule("survey.read:token", "limit_survey_read_token", "requests of this survey", "token")
SURVEY_SUBMIT_IP = Rule("survey.submit:ip", "limit_survey_submit_ip", "survey submissions")
SURVEY_SUBMIT_TOKEN = Rule("survey.submit:token", "limit_survey_submit_token", "submissions of this survey", "token")
RULES = (
    *(API_TOKEN, API_IP, LOGIN_IP, LOGIN_USER),
    *(SURVEY_READ_IP, SURVEY_READ_TOKEN, SURVEY_SUBMIT_IP, SURVEY_SUBMIT_TOKEN),
)


class RateLimited(DomainError):
    """LIMIT_EXCEEDED from a rate limit; `retry_after`: whole seconds until the next attempt may pass."""

    def __init__(self, message: str, retry_after: int, field: str | list[str] | None = None) -> None:
        super().__init__(ErrorCode.LIMIT_EXCEEDED, message, field)
        self.retry_after = retry_after


# ---------------------------------------------------------------- the API


async def take(rule: Rule, subject: str) -> None:
    """One attempt of `rule` by `subject` (an address, a username, a survey token): RateLimited when its bucket
    is empty."""
    burst, rate = rule.sizes(active())
    await _take(rule.name, subject, burst, rate, rule.what, rule.field)


async def give_back(rule: Rule, subject: str) -> None:
    """Returns the token an attempt took (never more than the bucket holds)."""
    settings = active()
    burst, rate = rule.sizes(settings)
    await _bucket_op(settings, _key(rule.name, subject, settings), burst, rate, -1)


@contextmanager
def retry_after_on(response: Any) -> Iterator[None]:
    """Around work that may be refused by a rate limit: puts `Retry-After` on `response` (anything with
    `headers`, e.g. the GraphQL context's HTTP response; None for none) when it is, the longest wait of all."""
    try:
        yield
    except RateLimited as error:
        set_retry_after(response, error)
        raise


def set_retry_after(response: Any, error: RateLimited) -> None:
    if response is None:
        return
    current = response.headers.get("retry-after")
    if current is None or not current.isdigit() or int(current) < error.retry_after:
        response.headers["Retry-After"] = str(error.retry_after)


async def take_request(token: str | None, ip: str | None) -> None:
    """One API request: from the bearer token's bucket when it carries one (whoever it turns out to be), else
    from the client address's."""
    if token:
        await take(API_TOKEN, token)
    elif ip:
        await take(API_IP, ip)


# ---------------------------------------------------------------- buckets


async def _take(name: str, subject: str, burst: int, rate: float, what: str, field: str | None) -> None:
    settings = active()
    wait = await _bucket_op(settings, _key(name, subject, settings), burst, rate, 1)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(f"Too many {what}; try again in {_in_words(seconds)}", seconds, field)


def _in_words(seconds: int) -> str:
    return f"{seconds} second(s)" if seconds < 120 else f"{math.ceil(seconds / 60)} minute(s)"


def _key(name: str, subject: str, settings: Settings) -> str:
    # Keyed hash: neither addresses, usernames nor survey tokens are stored (or shown in Redis) as they are.
    digest = hashlib.blake2b(subject.encode(), key=settings.secret_key.encode()[:64], digest_size=16).hexdigest()
    return f"crm:limit:{name}:{digest}"


async def _bucket_op(settings: Settings, key: str, burst: int, rate: float, cost: int) -> float | None:
    """Takes `cost` tokens (gives them back when negative); None when it could, else the seconds to wait."""
    now = clock.now().timestamp()
    if settings.redis_url and not _redis_resting(settings.redis_url):
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                return await _redis_bucket(settings.redis_url, key, now, burst, rate, cost)
        except Exception as error:  # Redis down or hung: each process limits on its own rather than not at all
            _rest_redis(settings.redis_url, error)
    store = _local_store(settings, create=True)
    assert store is not None
    return store.take(key, now, burst, rate, cost)


class _Buckets:
    """In-process buckets: key -> (tokens, at, when it is full again). A lock, as worker threads may count too."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()
        self._ops = 0

    def take(self, key: str, now: float, burst: int, rate: float, cost: int) -> float | None:
        with self._lock:
            tokens, at, _ = self._buckets.get(key, (float(burst), now, now))
            tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
            at = max(at, now)
            wait = None
            if cost <= 0 or tokens >= cost:
                tokens = min(float(burst), tokens - cost)
            else:
                wait = (cost - tokens) / rate
            self._buckets[key] = (tokens, at, at + (burst - tokens) / rate)
            self._ops += 1
            if self._ops % 4096 == 0:
                self._purge(now)
            return wait

    def _purge(self, now: float) -> int:
        # A full bucket is the same as none.
        full = [key for key, (_, _, full_at) in self._buckets.items() if full_at <= now]
        for key in full:
            del self._buckets[key]
        return len(full)


# The in-process buckets belong to the settings the process runs with (`core.settings.use`): an app started
# with other settings (each test's) starts with full buckets.
_local: tuple[weakref.ref, _Buckets] | None = None


def _local_store(settings: Settings, *, create: bool) -> _Buckets | None:
    global _local
    if _local is not None and _local[0]() is settings:
        return _local[1]
    if not create:
        return None
    _local = (weakref.ref(settings), _Buckets())
    return _local[1]


# KEYS[1]: the bucket; ARGV: now (seconds), burst, rate (tokens per second), cost (negative: give back).
# Returns {1, ""} when taken, {0, "<seconds to wait>"} when refused (Lua numbers would be cut to integers).
_LUA = """
local now, burst, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]), tonumber(held[2])
if tokens == nil or at == nil then tokens, at = burst, now end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local taken, wait = 1, ''
if cost <= 0 or tokens >= cost then
  tokens = math.min(burst, tokens - cost)
else
  taken, wait = 0, tostring((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {taken, wait}
"""

# Redis out of reach (down, refusing, hung): the limits fail over to this process's own buckets, never to a 500 nor
# to no limit at all. A take waits at most REDIS_TIMEOUT for Redis; after a failure Redis is left alone for
# REDIS_REST seconds (requests do not each pay the timeout), and one WARNING line says so each time.
REDIS_TIMEOUT = 0.5
REDIS_REST = 5.0
_resting_until: dict[str, float] = {}


def _redis_resting(url: str) -> bool:
    return time.monotonic() < _resting_until.get(url, 0.0)


def _rest_redis(url: str, error: BaseException) -> None:
    _resting_until[url] = time.monotonic() + REDIS_REST
    log.warning(
        "rate limit: Redis unavailable (%s); counting in this process for the next %gs",
        type(error).__name__,
        REDIS_REST,
    )


# One client per Redis URL and event loop (a client's connections belong to the loop that opened them).
_clients: dict[tuple[str, int], tuple[weakref.ref, Any, Any]] = {}


async def _redis_bucket(url: str, key: str, now: float, burst: int, rate: float, cost: int) -> float | None:
    loop = asyncio.get_running_loop()
    held = _clients.get((url, id(loop)))
    if held is None or held[0]() is not loop:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        held = (weakref.ref(loop), client, client.register_script(_LUA))
        _clients[(url, id(loop))] = held
    taken, wait = await held[2](keys=[key], args=[repr(now), burst, repr(rate), cost])
    return None if int(taken) == 1 else float(wait)
