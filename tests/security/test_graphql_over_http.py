"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): media types, status codes, and the
`graphql-http` audit suite against a live server (when Node.js and npm are at hand)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.jobs.live import live_server
from tests.npm_cache import npm_install

GQL_RESPONSE = "application/graphql-response+json"
GRAPHQL_HTTP_VERSION = "1.23.1"
CACHE = Path(os.environ.get("GRAPHQL_HTTP_AUDIT_CACHE", Path.home() / ".cache" / "bank-crm-tests" / "graphql-http"))
AUDIT_SCRIPT = """
import { auditServer } from 'graphql-http';
const results = await auditServer({ url: process.argv[2] });
console.log(JSON.stringify(results.map((r) => ({ id: r.id, name: r.name, status: r.status, reason: r.reason }))));
"""


def _json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] in ("application/json", GQL_RESPONSE)
    assert response.json()["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize("body", ['"x"', "null", "1", "true", "[1, 2]", "[]", '[{"query": "{ __typename }"}, 3]'])
async def test_a_body_that_is_not_a_request_is_a_400_with_a_json_error(client, body):
    response = await client.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    _json_error(response, 400, "BAD_REQUEST")


async def test_batches_still_work(client):
    response = await client.post("/graphql", json=[{"query": "{ __typename }"}, {"query": "{ me { username } }"}])
    assert response.status_code == 200
    assert response.json() == [{"data": {"__typename": "Query"}}, {"data": {"me": None}}]


async def test_malformed_json_is_a_400_with_a_json_error(client):
    response = await client.post("/graphql", content="{", headers={"Content-Type": "application/json"})
    _json_error(response, 400, "BAD_REQUEST")


async def test_anonymous_typename_works_with_both_media_types(client):
    plain = await client.post("/graphql", json={"query": "{ __typename }"})
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    assert plain.json() == {"data": {"__typename": "Query"}}
    response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": GQL_RESPONSE})
    assert response.status_code == 200 and response.headers["content-type"].startswith(GQL_RESPONSE)
    assert response.json() == {"data": {"__typename": "Query"}}
    preferred = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Accept": f"application/json;q=0.9, {GQL_RESPONSE}"},
    )
    assert preferred.headers["content-type"].startswith(GQL_RESPONSE)
    legacy = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": f"{GQL_RESPONSE};q=0.5, application/json"}
    )
    assert legacy.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{", None, "GRAPHQL_PARSE_FAILED"),
        ("{ notAField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: ID!) { job(id: $id) { id } }", {"id": {"not": "an id"}}, None),
    ],
)
async def test_request_errors_are_400_without_data_in_graphql_response_json(client, query, variables, code):
    body = {"query": query, "variables": variables}
    response = await client.post("/graphql", json=body, headers={"Accept": GQL_RESPONSE})
    assert response.status_code == 400 and response.headers["content-type"].startswith(GQL_RESPONSE)
    assert "data" not in response.json() and response.json()["errors"]
    if code:
        assert response.json()["errors"][0]["extensions"]["code"] == code
    legacy = await client.post("/graphql", json=body)  # application/json: 200, as before
    assert legacy.status_code == 200 and legacy.json()["data"] is None


async def test_field_errors_stay_200_in_graphql_response_json(client):
    response = await client.post(
        "/graphql", json={"query": "{ staff(first: 1) { edges { node { id } } } }"}, headers={"Accept": GQL_RESPONSE}
    )
    assert response.status_code == 200 and "data" in response.json()
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_mutations_over_get_are_405(client):
    response = await client.get("/graphql", params={"query": "mutation { logout }"})
    _json_error(response, 405, "BAD_REQUEST")
    assert response.headers["allow"] == "POST"


async def test_unsupported_content_types_are_415(client):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post("/graphql", content='{"query": "{ __typename }"}', headers=headers)
        _json_error(response, 415, "BAD_REQUEST")


async def test_an_unacceptable_accept_is_406(client):
    for accept in ("application/xml", "text/html", f"{GQL_RESPONSE};q=0, application/json;q=0"):
        response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept})
        _json_error(response, 406, "NOT_ACCEPTABLE")
    for accept in ("*/*", "application/*", "application/json, text/plain"):
        response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept})
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"


def _graphql_http() -> Path:
    """graphql-http, installed once into a cache directory; skips when Node.js, npm or the registry is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("the graphql-http audit needs Node.js and npm")
    package = CACHE / "node_modules" / "graphql-http" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != GRAPHQL_HTTP_VERSION:
        npm_install(npm, CACHE, [f"graphql-http@{GRAPHQL_HTTP_VERSION}", "graphql@16"], "graphql-http")
    script = CACHE / "audit.mjs"
    script.write_text(AUDIT_SCRIPT)
    return script


async def test_the_graphql_http_audit_passes_every_must_should_and_may(settings):
    script = _graphql_http()
    async with live_server(settings) as (_, address):
        process = await asyncio.create_subprocess_exec(
            shutil.which("node"),
            str(script),
            f"http://{address}/graphql",
            cwd=script.parent,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    results = json.loads(out)
    failed = [f"{r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"]
    assert failed == []
    counts = {level: sum(r["name"].startswith(level + " ") for r in results) for level in ("MUST", "SHOULD", "MAY")}
    assert counts == {"MUST": 13, "SHOULD": 23, "MAY": 25}


async def test_the_operations_of_a_batch_run_in_the_order_sent(gql, admin):
    """Each operation sees what the ones before it wrote, as the fields of one mutation do."""
    create = """mutation($n: String!) { createCustomer(input: {kind: INDIVIDUAL, name: $n}) { errors { code } } }"""
    count = """query($n: String!) { customers(filter: {search: $n}) { totalCount } }"""
    batch = []
    for _ in range(6):
        batch.append({"query": create, "variables": {"n": "批次客户"}})
        batch.append({"query": count, "variables": {"n": "批次客户"}})
    response = await gql.http.post("/graphql", json=batch, headers={"Authorization": f"Bearer {admin[1]}"})
    counts = [r["data"]["customers"]["totalCount"] for r in response.json()[1::2]]
    assert counts == [1, 2, 3, 4, 5, 6]
