"""`make bench` (bench/api.py), its verification step on a tiny data set: the floor (bench/api_floor.py) answers
exactly what the GraphQL API answers for every scenario. PostgreSQL and Redis only; a scratch database of its own
(`crm_bench_smoke`, dropped after) and Redis database 14, never the suite's."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse

import asyncpg
import pytest

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.core.test_command_line import ROOT
from tests.database import spare_redis_url

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL and urlparse(TEST_DATABASE_URL).scheme.startswith("postgres")),
    reason="needs CRM_TEST_DATABASE_URL (PostgreSQL) and CRM_TEST_REDIS_URL",
)
SMOKE_DATABASE = "crm_bench_smoke"


def _server_url(database: str) -> str:
    return urlparse(TEST_DATABASE_URL)._replace(scheme="postgresql", path=f"/{database}").geturl()


async def _drop_smoke_database() -> None:
    server = await asyncpg.connect(_server_url("postgres"))
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{SMOKE_DATABASE}" WITH (FORCE)')
    finally:
        await server.close()


async def test_the_floor_answers_what_the_api_answers(tmp_path):
    await _drop_smoke_database()  # a leftover of an interrupted run
    redis_url = spare_redis_url(TEST_REDIS_URL)
    database_url = _server_url(SMOKE_DATABASE).replace("postgresql://", "postgres://", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    try:
        done = subprocess.run(
            [
                *(sys.executable, "bench/api.py", "--rows", "300", "--workers", "1", "--verify-only"),
                *("--database-url", database_url, "--redis-url", redis_url),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        await _drop_smoke_database()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "created" in done.stdout  # the database did not exist: the bench made it
    assert (
        "verified   the floor answers the API's data: A (12 requests), B (20 requests), C (1 requests), D (2 requests)"
        in (done.stdout)
    )


async def test_it_refuses_the_suites_database_and_redis(capsys):
    from bench import api

    suites_database = ["--database-url", "postgres://postgres@127.0.0.1:5432/test"]
    suites_redis = [
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/x",
        "--redis-url",
        "redis://127.0.0.1:6379/15",
    ]
    for argv, reason in ((suites_database, "database named `test`"), (suites_redis, "Redis database 15")):
        assert await api.main(api.parse_args(["--verify-only", *argv])) == 2
        assert reason in capsys.readouterr().err
