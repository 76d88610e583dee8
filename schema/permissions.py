"""Role checks declared on fields, with the named role sets of services/access.py."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from models.staff import Role
from schema.base import forbidden, unauthenticated
from services.access import not_allowed


class RolesAllowed(BasePermission):
    """Queries: no valid token is UNAUTHENTICATED, a role outside the set is FORBIDDEN."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        caller = await info.context.caller()
        if caller.staff is None:
            raise unauthenticated()
        if caller.staff.role not in self.roles:
            raise forbidden(not_allowed(self.roles))
        return True


def allow(roles: frozenset[Role]) -> list[PermissionExtension]:
    return [PermissionExtension(permissions=[RolesAllowed(roles)], use_directives=False)]
