"""Migrations are Tortoise's own (dialect-independent operations); the models must not drift from them."""

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from core.db import APP_CONFIG, tortoise_config


async def test_models_match_the_migrations():
    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, {"models": dict(APP_CONFIG)}).changes()
    assert writers == [], "models changed without a migration: run `crm makemigrations NAME`"
