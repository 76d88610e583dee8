"""Passwords (argon2, hashed and verified in a worker thread so that the event loop keeps serving), opaque
bearer tokens stored as keyed hashes, the login lockout and the sign-in rate limits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.expressions import F, Q

from core.db import atomic
from core.sql import update_returning
from models.staff import Staff, StaffToken
from services import audit, clock, limits
from services.access import Caller
from services.errors import DomainError, ErrorCode

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
_hasher = PasswordHasher()
# argon2 costs tens of milliseconds of CPU by design: it runs in these threads, never on the event loop, and no more
# hashes at once than there are CPUs (a burst of sign-ins waits its turn instead of starving the loop's thread).
_argon2_threads = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")
# Verified against when the username is unknown or the account locked, so that every failure takes as long as a
# wrong password: made with the hasher in use (its parameters set the time), again if that hasher changes.
_dummy: tuple[PasswordHasher, str] = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))


async def _off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(_argon2_threads, function, *args)


async def hash_password(password: str) -> str:
    return await _off_loop(_hasher.hash, password)


async def _dummy_hash() -> str:
    global _dummy
    if _dummy[0] is not _hasher:
        hasher = _hasher
        _dummy = (hasher, await _off_loop(hasher.hash, secrets.token_urlsafe(16)))
    return _dummy[1]


def _verify_now(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _verify(password_hash: str, password: str) -> bool:
    return await _off_loop(_verify_now, password_hash, password)


def hash_token(token: str, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime
    staff: Staff


LOGIN_FAILED = "Wrong username or password, or the account is locked or inactive"


async def login(caller: Caller, username: str, password: str, *, secret_key: str, ttl: timedelta) -> Session:
    """Every attempt is audited; the error never says which part was wrong, nor that the account is locked.
    Rate limited per address and per username first (LIMIT_EXCEEDED; a success gives its tokens back)."""
    name = username.strip().lower()
    taken: list[tuple[limits.Rule, str]] = []
    checks = ((limits.LOGIN_IP, caller.ip, "address_limited"), (limits.LOGIN_USER, name, "user_limited"))
    for rule, subject, limited in checks:
        if not subject:
            continue
        try:
            await limits.take(rule, subject)
        except limits.RateLimited:
            await audit.record(caller, "login.failed", actor_name=username[:64], detail={"reason": limited})
            raise
        taken.append((rule, subject))
    staff = await Staff.get_or_none(username=name)
    reason = None
    if staff is None:
        await _verify(await _dummy_hash(), password)
        reason = "unknown_user"
    elif not await _claim_attempt(staff.id):
        await _verify(await _dummy_hash(), password)  # as long as a wrong password
        reason = "locked"
    elif not await _verify(staff.password_hash, password):
        reason = "bad_password"
    elif not staff.active:
        reason = "inactive"
    if reason is None or reason == "inactive":  # the right password: the attempt claimed was no failure
        await Staff.filter(id=staff.id).update(failed_logins=0, locked_until=None)
    if reason is not None:
        await audit.record(
            caller,
            "login.failed",
            subject_type="Staff" if staff else None,
            subject_id=str(staff.id) if staff else None,
            actor_name=username[:64],
            detail={"reason": reason},
        )
        raise DomainError(ErrorCode.INVALID, LOGIN_FAILED, ["password"])

    for rule, subject in taken:
        await limits.give_back(rule, subject)
    token = secrets.token_urlsafe(32)
    expires_at = clock.now() + ttl
    async with atomic():
        await StaffToken.create(staff=staff, token_hash=hash_token(token, secret_key), expires_at=expires_at)
        await audit.record(
            Caller(staff, caller.request_id, caller.ip), "login.success", subject_type="Staff", subject_id=str(staff.id)
        )
    return Session(token, expires_at, staff)


async def _claim_attempt(staff_id: int) -> bool:
    """Counts a failure *before* the password is verified, with conditional UPDATEs that only an unlocked account
    passes, so that the attempts of one batch, aliases and parallel requests (on any API process) get no more than
    MAX_FAILED_LOGINS guesses in all: the one that makes it MAX_FAILED_LOGINS locks the account in the same
    transaction (a concurrent claim waits for it, then finds the account locked). A right password then resets the
    count (and lifts that lock). False: the account is locked."""
    now = clock.now()
    async with atomic():
        claimed = await update_returning(
            Staff.filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now), id=staff_id).update(
                failed_logins=F("failed_logins") + 1
            ),
            "failed_logins",
        )
        if not claimed:
            return False
        if claimed[0]["failed_logins"] >= MAX_FAILED_LOGINS:
            await Staff.filter(id=staff_id).update(failed_logins=0, locked_until=now + LOCKOUT)
    return True


async def authenticate(token: str, *, secret_key: str) -> Staff | None:
    """The active staff member a live token belongs to, in one query; None otherwise."""
    row = (
        await StaffToken.filter(
            token_hash=hash_token(token, secret_key),
            revoked_at__isnull=True,
            expires_at__gt=clock.now(),
            staff__active=True,
        )
        .select_related("staff")
        .first()
    )
    return row.staff if row else None


async def logout(caller: Caller, token: str | None, *, secret_key: str) -> bool:
    """Revokes the caller's own token `token` (the one their request was sent with); True when it was live."""
    if caller.staff is None or not token:
        return False
    revoked = await StaffToken.filter(
        token_hash=hash_token(token, secret_key), staff_id=caller.staff.id, revoked_at__isnull=True
    ).update(revoked_at=clock.now())
    return revoked > 0


async def revoke_tokens(staff_id: int) -> int:
    return await StaffToken.filter(staff_id=staff_id, revoked_at__isnull=True).update(revoked_at=clock.now())


async def purge_expired_tokens(older_than: timedelta = timedelta(days=30)) -> int:
    """Scheduled housekeeping: expired or revoked tokens are useless after a while."""
    cutoff = clock.now() - older_than
    return await StaffToken.filter(expires_at__lt=cutoff).delete()
