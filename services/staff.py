"""Staff accounts: creation and changes by an ADMIN, with the rules that keep the bank administrable."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet

from models.staff import Department, Role, Staff
from services import auth
from services.access import ALL_ROLES, BRANCH_BOUND, STAFF_ADMINS, Caller, require_role
from services.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD, MAX_PASSWORD = 12, 128
UNSET = object()


@dataclass
class StaffChanges:
    display_name: str | None = None
    role: Role | None = None
    department: Department | None = None
    branch: object = UNSET  # None clears it
    active: bool | None = None
    password: str | None = None


def listing(caller: Caller) -> QuerySet[Staff]:
    require_role(caller, ALL_ROLES)
    return Staff.all()


async def get(caller: Caller, staff_id: int) -> Staff:
    require_role(caller, ALL_ROLES)
    staff = await Staff.get_or_none(id=staff_id)
    if staff is None:
        raise not_found("Staff member")
    return staff


def _check_password(password: str, field_name: str = "password") -> DomainError | None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return invalid(field_name, f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if password.isdigit() or password.isalpha():
        return invalid(field_name, "Password must mix letters with digits or symbols")
    return None


def generated_password() -> str:
    """A random password that the password rule accepts (a random one may, rarely, be letters only)."""
    while True:
        password = secrets.token_urlsafe(12)
        if _check_password(password) is None:
            return password


def _check_display_name(name: str) -> DomainError | None:
    if not name.strip() or len(name) > 128:
        return invalid("displayName", "Display name must be 1 to 128 characters")
    return None


def _clean_branch(branch: str | None) -> str | None:
    return branch.strip() or None if branch is not None else None


def _check_branch(role: Role, department: Department, branch: str | None) -> DomainError | None:
    """A relationship manager or service agent (access.BRANCH_BOUND) of the BRANCH department works at one
    branch and sees only its customers, so the branch must be named: left out by mistake, it would make them
    bank-wide. The same roles in another department (the call centre, head office) are bank-wide on purpose."""
    if role in BRANCH_BOUND and department == Department.BRANCH and branch is None:
        return invalid(
            "branch",
            f"A {role.value} of the BRANCH department works at one branch: give its branch "
            "(only in another department, e.g. CALL_CENTER, is this role bank-wide, without a branch)",
        )
    return None


async def create(
    caller: Caller,
    *,
    username: str,
    display_name: str,
    password: str,
    role: Role,
    department: Department,
    branch: str | None = None,
) -> Staff:
    require_role(caller, STAFF_ADMINS)
    username = username.strip().lower()
    problems = [
        p
        for p in (
            None
            if USERNAME.match(username)
            else invalid(
                "username", "Username must be 3 to 64 characters: lower-case letters, digits, '.', '_' or '-'"
            ),
            _check_display_name(display_name),
            _check_password(password),
            _check_branch(role, department, _clean_branch(branch)),
        )
        if p
    ]
    if problems:
        raise DomainErrors(problems)
    if await Staff.exists(username=username):
        raise DomainError(ErrorCode.DUPLICATE, "A staff member with this username exists", "username")
    try:
        return await Staff.create(
            username=username,
            display_name=display_name.strip(),
            password_hash=await auth.hash_password(password),
            role=role,
            department=department,
            branch=_clean_branch(branch),
        )
    except IntegrityError:  # a concurrent create won the race for the username
        raise DomainError(ErrorCode.DUPLICATE, "A staff member with this username exists", "username") from None


def _branch_after(staff: Staff, changes: StaffChanges) -> DomainError | None:
    """The branch rule on the member as the changes leave them, when they touch role, department or branch."""
    if changes.role is None and changes.department is None and changes.branch is UNSET:
        return None
    branch = staff.branch if changes.branch is UNSET else _clean_branch(changes.branch)  # type: ignore[arg-type]
    return _check_branch(changes.role or staff.role, changes.department or staff.department, branch)


async def update(caller: Caller, staff_id: int, changes: StaffChanges) -> Staff:
    admin = require_role(caller, STAFF_ADMINS)
    staff = await Staff.get_or_none(id=staff_id)
    if staff is None:
        raise not_found("Staff member")
    problems = [
        p
        for p in (
            _check_display_name(changes.display_name) if changes.display_name is not None else None,
            _check_password(changes.password) if changes.password is not None else None,
            _branch_after(staff, changes),
        )
        if p
    ]
    if problems:
        raise DomainErrors(problems)
    loses_admin = staff.role == Role.ADMIN and (
        changes.active is False or (changes.role is not None and changes.role != Role.ADMIN)
    )
    # The caller is an active ADMIN, so refusing their own demotion keeps at least one ADMIN.
    if loses_admin and admin is not None and staff.id == admin.id:
        raise invalid(
            "active" if changes.active is False else "role",
            "You cannot remove your own ADMIN access; ask another ADMIN",
        )

    if changes.display_name is not None:
        staff.display_name = changes.display_name.strip()
    if changes.role is not None:
        staff.role = changes.role
    if changes.department is not None:
        staff.department = changes.department
    if changes.branch is not UNSET:
        staff.branch = _clean_branch(changes.branch)  # type: ignore[arg-type]
    if changes.active is not None:
        staff.active = changes.active
    if changes.password is not None:
        staff.password_hash = await auth.hash_password(changes.password)
        staff.failed_logins, staff.locked_until = 0, None
    await staff.save()
    # A deactivated account or a new password ends every session at once.
    if changes.active is False or changes.password is not None:
        await auth.revoke_tokens(staff.id)
    return staff


async def ensure_admin(username: str, password: str) -> Staff | None:
    """Start-up bootstrap: create this ADMIN when the bank has no staff at all."""
    if await Staff.exists():
        return None
    try:
        return await Staff.create(
            username=username.strip().lower(),
            display_name="Administrator",
            password_hash=await auth.hash_password(password),
            role=Role.ADMIN,
            department=Department.OPERATIONS,
        )
    except IntegrityError:  # another API process bootstrapped it first
        return None
