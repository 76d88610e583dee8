"""Migrations are Tortoise's own (dialect-independent operations); the models must not drift from them."""

import pytest
from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from core.db import APP_CONFIG, tortoise_config


async def test_models_match_the_migrations():
    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, {"models": dict(APP_CONFIG)}).changes()
    assert writers == [], "models changed without a migration: run `crm makemigrations NAME`"


async def test_migrate_creates_the_shipped_templates_once(tmp_path):
    from tortoise import Tortoise

    from core import db
    from models.surveys import SurveyTemplate, SurveyTrigger

    url = f"sqlite://{tmp_path}/fresh.sqlite3"
    assert await db.migrate(url)  # every migration applied to a new database
    assert await db.migrate(url) == []  # and nothing the second time
    async with TortoiseContext():
        await Tortoise.init(config=tortoise_config(url))
        try:
            shipped = await SurveyTemplate.all().order_by("id")
            assert [t.ready_made for t in shipped] == ["nps", "complaint_csat"]
            assert shipped[1].trigger == SurveyTrigger.COMPLAINT_CLOSED and all(t.active for t in shipped)
        finally:
            await Tortoise.close_connections()


async def test_migrated_tables_have_every_index_and_unique_constraint_of_the_models(tmp_path):
    """SQLite cannot alter a column in place: the indexes and unique constraints of a table that a migration
    rebuilt are put back (the embedded default would otherwise accept two customers with one identity document)."""
    from tortoise import Tortoise

    from core import db, sqlite_schema

    migrated, generated = tmp_path / "migrated.sqlite3", tmp_path / "generated.sqlite3"
    assert await db.migrate(f"sqlite://{migrated}")
    async with TortoiseContext():
        await Tortoise.init(config=tortoise_config(f"sqlite://{generated}"))
        try:
            await Tortoise.generate_schemas()
            expected = await sqlite_schema.indexes_of(Tortoise.get_connection("default"))
        finally:
            await Tortoise.close_connections()
    async with TortoiseContext():
        await Tortoise.init(config=tortoise_config(f"sqlite://{migrated}"))
        try:
            present = await sqlite_schema.indexes_of(Tortoise.get_connection("default"))
        finally:
            await Tortoise.close_connections()
    assert {t: set(i) for t, i in present.items()} == {t: set(i) for t, i in expected.items()}
    assert await sqlite_schema.restore_indexes(tortoise_config(f"sqlite://{migrated}")) == []  # nothing left


async def test_portraits_have_no_foreign_key_on_postgresql(app):
    """Migration 0008 drops the constraint Tortoise creates although Portrait.customer says db_constraint=False."""
    from tortoise.connection import get_connection

    connection = get_connection("default")
    if connection.capabilities.dialect != "postgres":
        pytest.skip("SQLite keeps the constraint (it cannot drop one, and its check costs next to nothing)")
    _, rows = await connection.execute_query(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'portrait'::regclass AND contype = 'f'"
    )
    assert list(rows) == []
