"""Passwords (argon2), opaque bearer tokens stored as keyed hashes, and the login lockout."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.expressions import F

from core.db import atomic
from models.audit import AuditEntry
from models.staff import Staff, StaffToken
from services import audit, clock
from services.access import Caller
from services.errors import DomainError, ErrorCode

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Guessing across many usernames from one address is stopped too (counted from the audit trail).
MAX_FAILURES_PER_IP = 20
_hasher = PasswordHasher()
# Verified against when the username is unknown, so that both failures take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime
    staff: Staff


LOGIN_FAILED = "Wrong username or password, or the account is locked or inactive"


async def login(caller: Caller, username: str, password: str, *, secret_key: str, ttl: timedelta) -> Session:
    """Every attempt is audited; the error never says which part was wrong."""
    if (
        caller.ip
        and await AuditEntry.filter(action="login.failed", ip=caller.ip, at__gte=clock.now() - LOCKOUT).count()
        >= MAX_FAILURES_PER_IP
    ):
        await audit.record(caller, "login.failed", actor_name=username[:64], detail={"reason": "address_limited"})
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED, "Too many failed sign-ins from your address; try again later", ["username"]
        )
    staff = await Staff.get_or_none(username=username.strip().lower())
    reason = None
    if staff is None:
        _verify(_DUMMY_HASH, password)
        reason = "unknown_user"
    elif staff.locked_until and staff.locked_until > clock.now():
        reason = "locked"
    elif not _verify(staff.password_hash, password):
        reason = "bad_password"
    elif not staff.active:
        reason = "inactive"
    if reason is not None:
        async with atomic():
            if reason == "bad_password":
                await _count_failure(staff)
            await audit.record(
                caller,
                "login.failed",
                subject_type="Staff" if staff else None,
                subject_id=str(staff.id) if staff else None,
                actor_name=username[:64],
                detail={"reason": reason},
            )
        raise DomainError(ErrorCode.INVALID, LOGIN_FAILED, ["password"])

    token = secrets.token_urlsafe(32)
    expires_at = clock.now() + ttl
    async with atomic():
        if staff.failed_logins or staff.locked_until:
            await Staff.filter(id=staff.id).update(failed_logins=0, locked_until=None)
        await StaffToken.create(staff=staff, token_hash=hash_token(token, secret_key), expires_at=expires_at)
        await audit.record(
            Caller(staff, caller.request_id, caller.ip), "login.success", subject_type="Staff", subject_id=str(staff.id)
        )
    return Session(token, expires_at, staff)


async def _count_failure(staff: Staff) -> None:
    # Counted in the database so that concurrent attempts on several API processes all add up.
    await Staff.filter(id=staff.id).update(failed_logins=F("failed_logins") + 1)
    await Staff.filter(id=staff.id, failed_logins__gte=MAX_FAILED_LOGINS).update(
        failed_logins=0, locked_until=clock.now() + LOCKOUT
    )


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


async def revoke_tokens(staff_id: int) -> int:
    return await StaffToken.filter(staff_id=staff_id, revoked_at__isnull=True).update(revoked_at=clock.now())


async def purge_expired_tokens(older_than: timedelta = timedelta(days=30)) -> int:
    """Scheduled housekeeping: expired or revoked tokens are useless after a while."""
    cutoff = clock.now() - older_than
    return await StaffToken.filter(expires_at__lt=cutoff).delete()
