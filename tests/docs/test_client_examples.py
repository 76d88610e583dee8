"""The client examples of docs/GUIDE.md (docs/clients/) run against a live server: the Python `gql` one always
(a dev dependency), the Apollo Client one when Node.js and npm are at hand (installed once into a cache
directory, as tests/security/test_graphql_over_http.py does for graphql-http)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from models.customers import Customer
from models.staff import Role
from tests.conftest import PASSWORD, make_staff
from tests.docs.guide import ROOT, read_guide
from tests.jobs.live import live_server
from tests.npm_cache import npm_install

CLIENTS = ROOT / "docs" / "clients"
CACHE = Path(os.environ.get("APOLLO_EXAMPLE_CACHE", Path.home() / ".cache" / "bank-crm-tests" / "apollo"))
# Apollo Client 4 and the upload link made for it; graphql-ws for subscriptions, ws for Node's websocket.
NPM_PACKAGES = ["@apollo/client@4", "apollo-upload-client@19", "graphql@16", "graphql-ws@6", "rxjs@7", "ws@8"]


@pytest.fixture
def customers_csv(tmp_path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(read_guide().files["customers.csv"], encoding="utf-8")
    return path


def _gql_example():
    spec = importlib.util.spec_from_file_location("gql_example", CLIENTS / "gql_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_python_gql_example_uploads_and_follows_the_job(settings, customers_csv):
    pytest.importorskip("gql", reason="the example needs the dev dependency gql[httpx,websockets]")
    example = _gql_example()
    async with live_server(settings) as (_, address):
        member = await make_staff(Role.MANAGER, username="chen.zhuren")
        job = await example.import_customers(f"http://{address}/graphql", member.username, PASSWORD, str(customers_csv))
        assert job["status"] == "SUCCEEDED", job
        assert job["result"]["created"] == 3 and job["progress"] == 1
        assert await Customer.filter(branch="北京朝阳支行").count() == 3


def _apollo() -> Path:
    """The example script beside its node_modules in the cache; skips when Node.js, npm or the registry is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("the Apollo Client example needs Node.js and npm")
    wanted = {"@apollo/client": "4.", "apollo-upload-client": "19.", "graphql-ws": "6."}
    installed = all(
        (package := CACHE / "node_modules" / name / "package.json").exists()
        and json.loads(package.read_text())["version"].startswith(major)
        for name, major in wanted.items()
    )
    if not installed:
        npm_install(npm, CACHE, NPM_PACKAGES, "the Apollo Client packages")
    # Beside node_modules, so that its imports resolve; the very file the guide shows.
    script = CACHE / "apollo_example.mjs"
    shutil.copyfile(CLIENTS / "apollo_example.mjs", script)
    return script


async def test_the_apollo_client_example_uploads_and_follows_the_job(settings, customers_csv):
    script = _apollo()
    async with live_server(settings) as (_, address):
        member = await make_staff(Role.MANAGER, username="chen.zhuren")
        process = await asyncio.create_subprocess_exec(
            shutil.which("node"),
            str(script),
            f"http://{address}/graphql",
            member.username,
            PASSWORD,
            str(customers_csv),
            cwd=script.parent,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()
        job = json.loads(out.decode().strip().splitlines()[-1])
        assert job["status"] == "SUCCEEDED" and job["result"]["created"] == 3, job
        assert await Customer.filter(branch="北京朝阳支行").count() == 3
    assert "SUCCEEDED 100%" in err.decode()
