"""Query bombs: each is refused with its code (LIMIT_EXCEEDED, or GRAPHQL_VALIDATION_FAILED for fragment cycles),
quickly, and never with a 500."""

import json
import time

import pytest
from graphql import OperationDefinitionNode, parse

from schema.base import to_global_id
from schema.build import LIMITS, build_schema
from schema.protection import MAX_COST, CostEstimate


async def _refused(gql, token: str, query: str, code: str, variables: dict | None = None) -> dict:
    started = time.monotonic()
    response = await gql.raw(query, variables, token=token)
    assert time.monotonic() - started < 5
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == code, body["errors"]
    return body["errors"][0]


def _nested_duplicates(depth: int) -> str:
    """`customer { possibleDuplicates { ... { id } } }`: depth counts the fields below the root field."""
    return '{ customer(id: "x") { ' + "possibleDuplicates { " * (depth - 1) + "id" + " }" * depth + " }"


async def test_depth(gql, admin):
    _, token = admin
    assert "data" in (await gql.raw(_nested_duplicates(LIMITS["depth"]), token=token)).json()
    error = await _refused(gql, token, _nested_duplicates(LIMITS["depth"] + 1), "LIMIT_EXCEEDED")
    assert "depth" in error["message"]


async def test_depth_hidden_in_fragments(gql, admin):
    _, token = admin
    fragments = " ".join(
        f"fragment F{i} on Customer {{ possibleDuplicates {{ ...F{i + 1} }} }}" for i in range(LIMITS["depth"] + 1)
    )
    query = f'{{ customer(id: "x") {{ ...F0 }} }} {fragments} fragment F{LIMITS["depth"] + 1} on Customer {{ id }}'
    await _refused(gql, token, query, "LIMIT_EXCEEDED")


async def test_aliases(gql, admin):
    _, token = admin
    query = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(LIMITS["aliases"] + 1)) + " }"
    await _refused(gql, token, query, "LIMIT_EXCEEDED")


async def test_tokens(gql, admin):
    _, token = admin
    await _refused(gql, token, "{ me { " + "id " * LIMITS["tokens"] + "} }", "LIMIT_EXCEEDED")


COST_BOMBS = {
    "connections": "{ customers(first: 100) { edges { node { interactions(first: 100) { edges { node { id } } } "
    "complaints(first: 100) { edges { node { id } } } history(first: 100) { edges { node { field } } } "
    "followUps(first: 100) { edges { node { id } } } surveyResponses(first: 100) { edges { node { id } } } } } } }",
    "plain lists": "{ customers(first: 100) { edges { node { possibleDuplicates { holdings { id } } } } } }",
    "fragments": "{ customers(first: 100) { ...P } } fragment P on CustomerConnection { edges { node { ...C } } } "
    "fragment C on Customer { notes { id } holdings { id } possibleDuplicates { notes { id } } }",
    "interfaces": '{ node(id: "x") { ... on Customer { timeline(first: 100) { edges { node { subject { '
    "... on Complaint { events { type } notes { id } followUps { id } } } } } } } } }",
    "nodes": "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Customer { holdings { customer { holdings { id } } } } } "
    "}",
}


@pytest.mark.parametrize("name", list(COST_BOMBS))
async def test_cost(gql, admin, name):
    _, token = admin
    ids = [to_global_id("Customer", n) for n in range(1, 21)]
    error = await _refused(gql, token, COST_BOMBS[name], "LIMIT_EXCEEDED", {"ids": ids})
    assert error["extensions"]["cost"] > MAX_COST


async def test_a_query_too_deep_along_many_paths(gql, admin):
    """Past graphql-core's 100 validation errors the depth limit still answers LIMIT_EXCEEDED (strawberry's rule
    let the abort escape validation: an error with no code)."""
    _, token = admin
    levels = 8
    fragments = " ".join(
        f"fragment F{i} on Customer {{ possibleDuplicates {{ ...F{i + 1} }} holdings {{ customer {{ ...F{i + 1} }} }} "
        f"relationshipManager {{ id }} }}"
        for i in range(levels)
    )
    query = f'{{ customer(id: "x") {{ ...F0 }} }} {fragments} fragment F{levels} on Customer {{ id }}'
    error = await _refused(gql, token, query, "LIMIT_EXCEEDED")
    assert "depth" in error["message"]


def _fan_out(levels: int = 9) -> str:
    """Each fragment spreads the next under three aliases: 3^levels paths."""
    fragments = " ".join(
        f"fragment F{i} on Customer {{ " + " ".join(f"{a}: possibleDuplicates {{ ...F{i + 1} }}" for a in "abc") + " }"
        for i in range(levels)
    )
    return f'{{ customer(id: "x") {{ ...F0 }} }} {fragments} fragment F{levels} on Customer {{ id }}'


async def test_a_fragment_fan_out_counts_its_aliases_where_they_expand(gql, admin):
    _, token = admin
    error = await _refused(gql, token, _fan_out(), "LIMIT_EXCEEDED")
    assert "aliases" in error["message"]


def test_a_fragment_fan_out_is_costed_once_per_fragment():
    document = parse(_fan_out())
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    started = time.monotonic()
    cost = CostEstimate(build_schema()._schema, document, {}).of_operation(operation)
    assert time.monotonic() - started < 1
    assert cost > MAX_COST


def _multiplied(levels: int, spreads: int) -> str:
    """Each fragment spreads the next `spreads` times: spreads^levels paths through a few hundred tokens."""
    fragments = " ".join(f"fragment F{i} on Customer {{ {f'...F{i + 1} ' * spreads}}}" for i in range(levels))
    return f'{{ customer(id: "x") {{ ...F0 }} }} {fragments} fragment F{levels} on Customer {{ id name }}'


async def test_a_fragment_multiplication_bomb_is_measured_in_linear_time(gql, admin):
    """10^40 paths: strawberry's depth and alias limiters walked each of them (a worker held for good); the
    limits now measure each fragment once, and the query is an ordinary one."""
    _, token = admin
    started = time.monotonic()
    response = await gql.raw(_multiplied(40, 10), token=token)
    assert time.monotonic() - started < 5
    assert response.json() == {"data": {"customer": None}}


async def test_fragment_cycles(gql, admin):
    _, token = admin
    query = '{ node(id: "x") { ...A } } fragment A on Customer { id ...B } fragment B on Customer { ...A }'
    await _refused(gql, token, query, "GRAPHQL_VALIDATION_FAILED")
    through_a_field = '{ customer(id: "x") { ...A } } fragment A on Customer { possibleDuplicates { ...A } }'
    await _refused(gql, token, through_a_field, "GRAPHQL_VALIDATION_FAILED")


@pytest.mark.parametrize(
    "query",
    [
        '{ node(id: "x") { ...A } } fragment A on Customer { id ...B } fragment B on Customer { ...A }',
        '{ customer(id: "x") { ...A } } fragment A on Customer { possibleDuplicates { ...A } }',
        '{ customer(id: "x") { ...A } } fragment A on Customer { notes { id } ...A }',
    ],
)
def test_the_cost_walk_ends_on_fragment_cycles_validation_would_refuse(query):
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    started = time.monotonic()
    cost = CostEstimate(build_schema()._schema, document, {}).of_operation(operation)
    assert time.monotonic() - started < 1
    assert cost >= 0


async def test_batches_of_more_than_twenty_operations_are_refused(client, admin):
    _, token = admin
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.post("/graphql", json=[{"query": "{ me { id } }"}] * (LIMITS["batch"] + 1), headers=headers)
    assert response.status_code in (400, 413)
    assert "data" not in response.json()


async def test_the_batch_refusal_says_limit_exceeded(client, admin):
    _, token = admin
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.post("/graphql", json=[{"query": "{ me { id } }"}] * (LIMITS["batch"] + 1), headers=headers)
    assert response.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_a_body_over_one_mebibyte(client, admin):
    _, token = admin
    query = '{ customers(filter: {search: "' + "x" * (1024 * 1024) + '"}) { totalCount } }'
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": query}),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_a_cached_document_is_refused_every_time(gql, admin):
    """Parsed and validated documents are cached by their text (schema/build.py): a refused document stays
    refused when sent again, and a valid one keeps answering with every request's own variables and limits."""
    _, token = admin
    too_deep = _nested_duplicates(LIMITS["depth"] + 1)
    many_aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(LIMITS["aliases"] + 1)) + " }"
    for _ in range(3):
        await _refused(gql, token, too_deep, "LIMIT_EXCEEDED")
        await _refused(gql, token, many_aliases, "LIMIT_EXCEEDED")
        await _refused(gql, token, "{ me { noSuchField } }", "GRAPHQL_VALIDATION_FAILED")
    # The same text, cheap with one variable and over the cost limit with another: the cost is per request.
    query = "query($n: Int) " + COST_BOMBS["connections"].replace("first: 100", "first: $n")
    for _ in range(2):
        assert "errors" not in (await gql.raw(query, {"n": 2}, token=token)).json()
        await _refused(gql, token, query, "LIMIT_EXCEEDED", {"n": 100})
