"""Job heartbeats and delivery counting (docs/RELIABILITY.md, "A worker is killed").

The counters get a default in the database too (PostgreSQL): code of the previous release, still running during a
rolling upgrade, inserts jobs without naming them; Tortoise's `default=` lives in Python only."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

COUNTER_DEFAULTS = """
ALTER TABLE job ALTER COLUMN worker_stops SET DEFAULT 0;
ALTER TABLE job_batch ALTER COLUMN deliveries SET DEFAULT 0;
ALTER TABLE job_batch ALTER COLUMN worker_stops SET DEFAULT 0;
"""


async def default_the_counters_in_the_database(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(COUNTER_DEFAULTS)


class Migration(migrations.Migration):
    dependencies = [("models", "0011_read_path_indexes")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Job",
            name="worker",
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name="Job",
            name="heartbeat_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Job",
            name="worker_stops",
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name="JobBatch",
            name="deliveries",
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name="JobBatch",
            name="worker",
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name="JobBatch",
            name="heartbeat_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="JobBatch",
            name="worker_stops",
            field=fields.IntField(default=0),
        ),
        ops.RunPython(default_the_counters_in_the_database, ops.RunPython.noop),
    ]
