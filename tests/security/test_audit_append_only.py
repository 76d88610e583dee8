"""The audit table refuses UPDATE and DELETE in the database itself (migration 0009's PostgreSQL trigger), not
only through the model."""

from __future__ import annotations

import pytest
from tortoise.connection import get_connection

from models.audit import AuditEntry
from services import audit
from services.access import Caller


@pytest.fixture
def postgres(app):
    connection = get_connection("default")
    if connection.capabilities.dialect != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's (SQLite has the model's guard only)")
    return connection


async def _entry(admin) -> AuditEntry:
    member, _ = admin
    return await audit.record(Caller(member, "req-1", "10.0.0.1"), "test.append_only", detail={"n": 1})


async def test_an_update_of_an_audit_row_is_refused_by_the_database(postgres, admin):
    entry = await _entry(admin)
    with pytest.raises(Exception, match="append-only"):
        await postgres.execute_query("UPDATE audit_entry SET action = 'tampered' WHERE id = $1", [entry.id])
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.filter(id=entry.id).update(action="tampered")  # the queryset bypasses Model.save
    assert (await AuditEntry.get(id=entry.id)).action == "test.append_only"


async def test_a_delete_of_audit_rows_is_refused_by_the_database(postgres, admin):
    entry = await _entry(admin)
    before = await AuditEntry.all().count()
    with pytest.raises(Exception, match="append-only"):
        await postgres.execute_query("DELETE FROM audit_entry WHERE id = $1", [entry.id])
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.all().delete()  # the queryset bypasses Model.delete
    assert await AuditEntry.all().count() == before


async def test_inserting_still_works_and_the_trigger_is_installed(postgres, admin):
    await _entry(admin)
    _, rows = await postgres.execute_query(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_entry'::regclass AND NOT tgisinternal"
    )
    assert [r["tgname"] for r in rows] == ["audit_entry_append_only"]
    assert await AuditEntry.filter(action="test.append_only").count() == 1
