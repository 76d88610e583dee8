"""Demo data for a development database: one staff member per role, branch-bound where the role is."""

from __future__ import annotations

import secrets

from core.db import atomic
from models.staff import Department, Role, Staff
from services import audit, staff
from services.access import COMMAND_LINE
from services.demo_data import BRANCHES

DEMO_STAFF = [
    ("admin.demo", "系统管理员 王敏", Role.ADMIN, Department.OPERATIONS, None),
    ("manager.demo", "客户经理主管 李强", Role.MANAGER, Department.BRANCH, None),
    ("rm.demo", "客户经理 张伟", Role.RELATIONSHIP_MANAGER, Department.BRANCH, BRANCHES[0].name),
    ("rm2.demo", "客户经理 陈静", Role.RELATIONSHIP_MANAGER, Department.BRANCH, BRANCHES[1].name),
    ("agent.demo", "客服专员 刘洋", Role.SERVICE_AGENT, Department.CALL_CENTER, None),
    ("teller.demo", "大堂经理 赵丽", Role.SERVICE_AGENT, Department.BRANCH, BRANCHES[0].name),
    ("complaints.demo", "投诉处理专员 孙磊", Role.COMPLAINT_HANDLER, Department.COMPLAINTS, None),
    ("analyst.demo", "数据分析师 周婷", Role.ANALYST, Department.MARKETING, None),
    ("auditor.demo", "合规审计 吴刚", Role.AUDITOR, Department.COMPLIANCE, None),
]


async def seed(password: str | None = None) -> list[str]:
    """Idempotent: existing usernames are left as they are. Returns lines to show the operator."""
    password = password or secrets.token_urlsafe(12)
    created = []
    async with atomic():
        for username, display_name, role, department, branch in DEMO_STAFF:
            if await Staff.exists(username=username):
                continue
            member = await staff.create(COMMAND_LINE, username=username, display_name=display_name,
                                        password=password, role=role, department=department, branch=branch)
            await audit.record(COMMAND_LINE, "staff.create", subject_type="Staff", subject_id=str(member.id),
                               detail={"seed": True})
            created.append(f"{role.value:<22} {username}" + (f" ({branch})" if branch else ""))
    if not created:
        return ["demo staff already present; nothing to do"]
    return [f"created {len(created)} demo staff, password: {password}", *created]
