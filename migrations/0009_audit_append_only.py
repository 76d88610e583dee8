"""The audit trail is append-only in the database itself (docs/DOMAIN.md, "Limits and protection"): on PostgreSQL a
trigger refuses every UPDATE and DELETE of an `audit_entry` row, whoever sends it (the ORM, raw SQL, psql).
TRUNCATE is not a row operation and stays possible for the owner (test resets, a full reload). SQLite, the
embedded single-user setup, has the ORM's guard only."""

from tortoise import migrations
from tortoise.migrations import operations as ops

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry;
CREATE TRIGGER audit_entry_append_only
    BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();
"""


async def refuse_changes_to_the_audit_trail(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(APPEND_ONLY)


class Migration(migrations.Migration):
    dependencies = [("models", "0008_portraits_and_segments")]

    initial = False

    operations = [
        ops.RunPython(refuse_changes_to_the_audit_trail, ops.RunPython.noop),
    ]
