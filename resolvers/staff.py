from __future__ import annotations

from datetime import timedelta

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from schema.base import Connection, require_pk
from schema.conventions import mutation
from schema.permissions import allow
from schema.staff import (
    CreateStaffInput,
    LoginInput,
    LoginPayload,
    LogoutPayload,
    Staff,
    StaffPayload,
    UpdateStaffInput,
)
from services import access, auth, limits, staff as staff_service
from services.pagination import OrderKey, paginate

STAFF_ORDER = [OrderKey("username"), OrderKey("id")]


async def me(info: Info) -> Staff | None:
    caller = await caller_of(info)
    return Staff.from_model(caller.staff) if caller.staff else None


async def staff_list(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Staff]:
    page = await paginate(
        staff_service.listing(await caller_of(info)), STAFF_ORDER, first=first, after=after, last=last, before=before
    )
    return Connection.of(page, Staff.from_model)


async def login(info: Info, input: LoginInput) -> LoginPayload:
    settings = info.context.settings
    with limits.retry_after_on(info.context.response):
        session = await auth.login(
            await caller_of(info),
            input.username,
            input.password,
            secret_key=settings.secret_key,
            ttl=timedelta(minutes=settings.token_ttl_minutes),
        )
    return LoginPayload(token=session.token, expires_at=session.expires_at, staff=Staff.from_model(session.staff))


async def logout(info: Info) -> LogoutPayload:
    revoked = await auth.logout(
        await caller_of(info), info.context._token(), secret_key=info.context.settings.secret_key
    )
    return LogoutPayload(revoked=revoked)


async def create_staff(info: Info, input: CreateStaffInput) -> StaffPayload:
    created = await staff_service.create(
        await caller_of(info),
        username=input.username,
        display_name=input.display_name,
        password=input.password,
        role=input.role,
        department=input.department,
        branch=input.branch,
    )
    return StaffPayload(staff=Staff.from_model(created))


def _given(value):
    return None if value is strawberry.UNSET else value


async def update_staff(info: Info, input: UpdateStaffInput) -> StaffPayload:
    changes = staff_service.StaffChanges(
        display_name=_given(input.display_name),
        role=_given(input.role),
        department=_given(input.department),
        active=_given(input.active),
        password=_given(input.password),
        branch=staff_service.UNSET if input.branch is strawberry.UNSET else input.branch,
    )
    updated = await staff_service.update(await caller_of(info), require_pk(input.id, "Staff"), changes)
    return StaffPayload(staff=Staff.from_model(updated))


@strawberry.type
class Query:
    me: Staff | None = strawberry.field(
        resolver=me, description="The signed-in staff member; null without a valid token."
    )
    staff: Connection[Staff] = strawberry.field(resolver=staff_list, extensions=allow(access.ALL_ROLES))


@strawberry.type
class Mutation:
    login: LoginPayload = mutation(None, None, public=True, resolver=login)
    logout: LogoutPayload = mutation(
        "logout", access.ALL_ROLES, resolver=logout, description="Revokes the bearer token of this request."
    )
    create_staff: StaffPayload = mutation("staff.create", access.STAFF_ADMINS, resolver=create_staff)
    update_staff: StaffPayload = mutation("staff.update", access.STAFF_ADMINS, resolver=update_staff)
