"""Shared pieces of the interaction, follow-up and note tests."""

from __future__ import annotations

from datetime import datetime

from models.audit import AuditEntry
from schema.base import from_global_id
from tests.customers.helpers import create, resident_id

HERE, THERE = "北京朝阳支行", "上海浦东支行"


def pk(global_id: str) -> int:
    parsed = from_global_id(global_id)
    assert parsed is not None, global_id
    return int(parsed[1])


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def codes(result: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in result["errors"]]


async def second_customer(gql, token: str, **overrides) -> dict:
    return await create(
        gql,
        token,
        **{"name": "李四", "idNumber": resident_id(sequence="135"), "phone": None, "email": None, **overrides},
    )


async def audit_of(action: str, subject_id: str) -> AuditEntry:
    found = await AuditEntry.get_or_none(action=action, subject_id=str(pk(subject_id)))
    assert found is not None, f"no {action} audit entry for {subject_id}"
    return found
