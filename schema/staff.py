from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from models.staff import Department as DepartmentEnum, Role as RoleEnum, Staff as StaffModel
from schema import loaders
from schema.base import Node, UserError, to_global_id
from services.access import Caller

Role = strawberry.enum(RoleEnum, name="Role")
Department = strawberry.enum(DepartmentEnum, name="Department")


@strawberry.type(description="A member of the bank's staff who signs in to the CRM.")
class Staff(Node):
    id: strawberry.ID
    username: str
    display_name: str
    role: Role
    department: Department
    branch: str | None
    active: bool
    created_at: datetime

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Staff]:
        return await cls.nodes_in(StaffModel.all(), pks)

    @classmethod
    def from_model(cls, m: StaffModel) -> Staff:
        return cls(
            id=to_global_id("Staff", m.id),
            username=m.username,
            display_name=m.display_name,
            role=m.role,
            department=m.department,
            branch=m.branch,
            active=m.active,
            created_at=m.created_at,
        )


loaders.register("staff", loaders.by_id(StaffModel))


async def load_staff(info: Info, staff_id: int | None) -> Staff | None:
    """A staff member that a list item points at, through the per-request DataLoader."""
    if staff_id is None:
        return None
    member = await info.context.loaders.staff.load(staff_id)
    return Staff.from_model(member) if member else None


@strawberry.input
class CreateStaffInput:
    username: str
    display_name: str
    password: str
    role: Role
    department: Department
    branch: str | None = None


@strawberry.input
class UpdateStaffInput:
    id: strawberry.ID
    display_name: str | None = strawberry.UNSET
    role: Role | None = strawberry.UNSET
    department: Department | None = strawberry.UNSET
    branch: str | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    password: str | None = strawberry.UNSET


@strawberry.type
class StaffPayload:
    staff: Staff | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class LoginInput:
    username: str
    password: str


@strawberry.type
class LoginPayload:
    token: str | None = None
    expires_at: datetime | None = None
    staff: Staff | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LogoutPayload:
    revoked: bool = strawberry.field(default=False, description="True when the token of this request was revoked.")
    errors: list[UserError] = strawberry.field(default_factory=list)
