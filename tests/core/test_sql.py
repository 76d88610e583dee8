"""core/sql: the statements Tortoise lacks, on the database the suite runs on (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from core.db import atomic
from core.sql import insert_returning_ids, update_each, update_returning
from models.staff import Department, Role, Staff


def _staff(names: list[str]) -> list[Staff]:
    return [
        Staff(
            username=name, display_name=name.title(), password_hash="x", role=Role.ANALYST, department=Department.RISK
        )
        for name in names
    ]


async def test_insert_returning_ids_gives_each_object_its_own_row(app):
    names = [f"user{n:03d}" for n in range(150)]
    rows = await insert_returning_ids(_staff(names))

    assert [r.username for r in rows] == names
    stored = dict(await Staff.filter(id__in=[r.id for r in rows]).values_list("id", "username"))
    assert {r.id: r.username for r in rows} == stored
    assert all(r.created_at is not None for r in rows)  # auto_now_add filled as save() would


async def test_a_refused_insert_writes_none_of_its_rows(app):
    await insert_returning_ids(_staff(["taken"]))
    with pytest.raises(IntegrityError):
        async with atomic():
            await insert_returning_ids(_staff(["fresh1", "taken", "fresh2"]))
    assert sorted(await Staff.all().values_list("username", flat=True)) == ["taken"]


async def test_update_returning_names_exactly_the_rows_this_statement_changed(app):
    a, b, c = await insert_returning_ids(_staff(["a", "b", "c"]))
    await Staff.filter(id=b.id).update(active=False)

    changed = await update_returning(
        Staff.filter(id__in=[a.id, b.id, c.id], active=True).update(failed_logins=F("failed_logins") + 1), "id"
    )
    again = await update_returning(
        Staff.filter(id__in=[a.id, b.id], active=True, failed_logins=0).update(active=False), "id"
    )

    assert sorted(row["id"] for row in changed) == [a.id, c.id]
    assert again == []  # a was changed by the first statement: it no longer matches


async def test_update_each_sets_each_row_its_own_value(app):
    rows = await insert_returning_ids(_staff(["p", "q", "r"]))
    await update_each(Staff, "display_name", {rows[0].id: "张伟", rows[2].id: "李娜"})

    names = dict(await Staff.filter(id__in=[r.id for r in rows]).values_list("username", "display_name"))
    assert names == {"p": "张伟", "q": "Q", "r": "李娜"}


async def test_insert_rows_writes_every_row_and_refuses_a_duplicate_whole(app):
    from datetime import UTC, datetime

    from tortoise.connection import get_connection

    from core.sql import ROWS_PER_INSERT, insert_rows

    now = datetime.now(UTC)
    columns = (
        "username",
        "display_name",
        "password_hash",
        "role",
        "department",
        "active",
        "failed_logins",
        "created_at",
        "updated_at",
    )

    def rows(names: list[str]) -> list[tuple]:
        return [(n, n.title(), "x", Role.ANALYST.value, Department.RISK.value, True, 0, now, now) for n in names]

    names = [f"plain{n:03d}" for n in range(ROWS_PER_INSERT + 30)]  # a whole group and the rest
    async with atomic():
        await insert_rows(get_connection("default"), "staff", columns, rows(names))
    assert sorted(await Staff.all().values_list("username", flat=True)) == names
    with pytest.raises(IntegrityError):
        async with atomic():
            await insert_rows(get_connection("default"), "staff", columns, rows(["fresh", names[7]]))
    assert not await Staff.exists(username="fresh")
