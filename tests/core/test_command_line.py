"""The `crm` command line, run as an operator would: as a subprocess with environment settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def crm(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    clean.update(CRM_LOG_JSON="false", **(env or {}))
    return subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        env=clean,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def test_a_bad_setting_stops_with_one_line():
    result = crm("migrate", env={"CRM_NOPE": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown setting CRM_NOPE" in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path):
    result = crm("serve", "--port", "0", env={"CRM_DATABASE_URL": f"sqlite://{tmp_path}/fresh.sqlite3"})
    assert result.returncode == 1
    assert "0001_initial" in result.stderr and "crm migrate" in result.stderr


def test_migrate_then_create_staff_then_seed(tmp_path):
    env = {"CRM_DATABASE_URL": f"sqlite://{tmp_path}/crm.sqlite3"}
    assert "0001_initial" in crm("migrate", env=env).stdout
    assert "applied 0 migration(s)" in crm("migrate", env=env).stdout
    created = crm(
        "create-staff",
        "--username",
        "ops.admin",
        "--display-name",
        "运维管理员",
        "--role",
        "ADMIN",
        "--department",
        "OPERATIONS",
        env=env,
        stdin="a-good-password-1\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created ADMIN ops.admin" in created.stdout
    weak = crm(
        "create-staff",
        "--username",
        "weak.one",
        "--display-name",
        "x",
        "--role",
        "ANALYST",
        "--department",
        "MARKETING",
        env=env,
        stdin="short\n",
    )
    assert weak.returncode == 1 and "Password must be" in weak.stderr
    seeded = crm("seed", "--password", "demo-password-1", "--customers", "120", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "created 9 demo staff" in seeded.stdout and "created 120 demo customers" in seeded.stdout
    assert "nothing to do" in crm("seed", env=env).stdout


async def test_seeded_customers_are_valid_and_fill_every_value_tier(app):
    import random

    from models.customers import Customer, CustomerKind, ProductHolding, ProductType
    from services.customer_rules import value_tier
    from services.seed import _seed_customers

    await _seed_customers(400, random.Random(1))
    customers = await Customer.all()
    assert len(customers) == 400
    assert {value_tier(c.aum) for c in customers} == {"PRIVATE_BANKING", "WEALTH", "AFFLUENT", "MASS"}
    assert {h.product for h in await ProductHolding.all()} == set(ProductType)
    assert min(c.completeness for c in customers if c.kind == CustomerKind.INDIVIDUAL) > 0.5


def test_export_schema_writes_the_sdl(tmp_path):
    target = tmp_path / "schema.graphql"
    result = crm("export-schema", "--output", str(target))
    assert result.returncode == 0
    assert target.read_text(encoding="utf-8") == (ROOT / "schema.graphql").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_need_redis(command):
    result = crm(command)
    assert result.returncode == 2 and "CRM_REDIS_URL" in result.stderr
