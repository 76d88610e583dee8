"""Role checks declared on fields, with the named role sets of services/access.py."""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from models.staff import Role
from schema.base import forbidden, unauthenticated
from services.access import Caller, not_allowed

# How long a subscription whose socket was closed waits for the connection to end (it is cancelled then).
CLOSE_GRACE_SECONDS = 10.0
UNAUTHORIZED = 4401  # graphql-transport-ws: the connection's credentials no longer hold


class RolesAllowed(BasePermission):
    """Queries: no valid token is UNAUTHENTICATED, a role outside the set is FORBIDDEN."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        require_roles(await info.context.caller(), self.roles)
        return True


def require_roles(caller: Caller, roles: frozenset[Role]) -> None:
    """No valid token is UNAUTHENTICATED, a role outside `roles` is FORBIDDEN."""
    if caller.staff is None:
        raise unauthenticated()
    if caller.staff.role not in roles:
        raise forbidden(not_allowed(roles))


def roles_required(extensions: list) -> frozenset[Role] | None:
    """The roles a field's extensions allow when a role check is all they do (None: they do something else)."""
    roles = None
    for extension in extensions:
        checks = getattr(extension, "permissions", None)
        if type(extension) is not PermissionExtension or not checks or extension.fail_silently:
            return None
        for check in checks:
            if type(check) is not RolesAllowed:
                return None
            roles = check.roles if roles is None else roles & check.roles
    return roles


def allow(roles: frozenset[Role]) -> list[PermissionExtension]:
    return [PermissionExtension(permissions=[RolesAllowed(roles)], use_directives=False)]


async def live_caller(info: Info) -> Caller:
    """Before each message of a live subscription: the token, role and branch again (docs/DOMAIN.md). A revoked or
    expired token, or a deactivated staff member, closes the websocket with 4401 Unauthorized: nothing more is
    delivered on it, this subscription or any other. Over a transport without a socket to close, the subscription
    ends with UNAUTHENTICATED instead. The caller returned carries the current role and branch."""
    context = info.context
    caller = await context.recheck()
    if caller.staff is not None:
        return caller
    if context.is_websocket:
        await context.close_socket(UNAUTHORIZED, "Unauthorized")
        # The handler cancels every operation of the connection once the close completes; until then (or if the
        # peer never answers) this one sends nothing.
        await asyncio.sleep(CLOSE_GRACE_SECONDS)
    raise unauthenticated()
