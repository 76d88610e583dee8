"""What every benchmark shares: the scratch PostgreSQL database it wipes, and its command-line options."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlparse

import asyncpg

from core import db


def parser(description: str) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=description)
    options.add_argument("--rows", type=int, default=100_000)
    options.add_argument(
        "--database-url",
        default=os.environ.get("CRM_BENCH_DATABASE_URL"),
        required="CRM_BENCH_DATABASE_URL" not in os.environ,
        help="postgres://... of a scratch database: its public schema is DROPPED",
    )
    options.add_argument("--force", action="store_true", help="allow a database named `test`")
    options.add_argument("--seed", type=int, default=2026)
    return options


def refusal(url: str, force: bool) -> str | None:
    """Why this database must not be wiped, or None."""
    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        return "This benchmark needs PostgreSQL (postgres://...)"
    if parsed.path.lstrip("/") == "test" and not force:
        return "Refusing to wipe the database named `test` (the test suite's); pass --force to do it anyway"
    return None


async def fresh_database(url: str) -> None:
    """Drop the public schema and migrate it from scratch."""
    parsed = urlparse(url)
    print(f"database   {parsed.hostname}:{parsed.port or 5432}{parsed.path} (schema `public` dropped and migrated)")
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
    await db.migrate(url)


async def no_publish(channel: str, message: dict) -> None:
    """Benchmarks run jobs in-process with nobody subscribed."""


def refuse_or_none(args: argparse.Namespace) -> int | None:
    reason = refusal(args.database_url, args.force)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    return None


async def ensure_database(url: str) -> bool:
    """Creates the database of `url` when it does not exist (connecting to the server's `postgres` database);
    True when it was created."""
    try:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    except asyncpg.InvalidCatalogNameError:
        parsed = urlparse(url)
        server = await asyncpg.connect(parsed._replace(scheme="postgresql", path="/postgres").geturl())
        try:
            name = parsed.path.lstrip("/")
            await server.execute(f'CREATE DATABASE "{name}"')
        finally:
            await server.close()
        print(f"database   {parsed.hostname}:{parsed.port or 5432}/{name} created")
        return True
    await conn.close()
    return False
