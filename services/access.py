"""Who is calling, and the role table of DOMAIN.md."""

from __future__ import annotations

from dataclasses import dataclass

from models.staff import Role, Staff
from services.errors import forbidden

ALL_ROLES = frozenset(Role)
STAFF_ADMINS = frozenset({Role.ADMIN})
AUDIT_READERS = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})
# Roles that see every job, not only the ones they started.
JOB_OVERSEERS = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})


@dataclass(frozen=True)
class Caller:
    """The staff member behind a request (None for public operations) and where it came from."""

    staff: Staff | None = None
    request_id: str | None = None
    ip: str | None = None
    # The operator at the `crm` command line, who already holds the database: allowed everything.
    operator: bool = False

    @property
    def role(self) -> Role | None:
        return self.staff.role if self.staff else None


COMMAND_LINE = Caller(request_id="command-line", operator=True)


def require_role(caller: Caller, roles: frozenset[Role]) -> Staff | None:
    """The calling staff member when their role is allowed (None for the command-line operator)."""
    if caller.operator:
        return None
    if caller.staff is None or caller.staff.role not in roles:
        raise forbidden()
    return caller.staff
