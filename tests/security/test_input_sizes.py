"""Every string argument and input field has a maximum, checked before execution for literals and variables at
any depth of input objects and lists: a refusal with LIMIT_EXCEEDED and the field, never a 500."""

import pytest

from models.customers import Customer
from schema.protection import MAX_STRING, MAX_STRING_BY_NAME
from tests.conftest import StatementCounter

SEARCH = "query($f: CustomerFilter) { customers(filter: $f) { totalCount } }"
HUGE = "张" * 300_000  # 900 KB of UTF-8


def _refused(body: dict, field: list[str]) -> None:
    assert body["data"] is None, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    assert error["extensions"]["field"] == field
    assert HUGE[:100] not in error["message"]


async def test_a_900_kb_search_is_refused_as_a_variable(gql, admin):
    _, token = admin
    response = await gql.raw(SEARCH, {"f": {"search": HUGE}}, token=token)
    assert response.status_code == 200
    _refused(response.json(), ["filter", "search"])


async def test_a_900_kb_search_is_refused_as_a_literal(gql, admin):
    _, token = admin
    response = await gql.raw('{ customers(filter: {search: "' + HUGE + '"}) { totalCount } }', token=token)
    _refused(response.json(), ["filter", "search"])


async def test_search_has_its_own_smaller_limit(gql, admin):
    _, token = admin
    limit = MAX_STRING_BY_NAME["search"]
    assert (await gql(SEARCH, {"f": {"search": "王" * limit}}, token=token))["customers"]["totalCount"] == 0
    _refused((await gql.raw(SEARCH, {"f": {"search": "王" * (limit + 1)}}, token=token)).json(), ["filter", "search"])


async def test_strings_inside_lists_of_an_input_are_limited(gql, admin):
    _, token = admin
    response = await gql.raw(SEARCH, {"f": {"tags": ["vip", "x" * (MAX_STRING + 1)]}}, token=token)
    _refused(response.json(), ["filter", "tags"])


async def test_a_long_string_in_a_mutation_input_is_refused_before_anything_is_written(gql, admin):
    _, token = admin
    mutation = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
      customer { id } errors { field message } } }"""
    with StatementCounter() as counter:
        response = await gql.raw(mutation, {"input": {"kind": "INDIVIDUAL", "name": "x" * 100_000}}, token=token)
    _refused(response.json(), ["input", "name"])
    assert not [s for s in counter.statements if s.lstrip().upper().startswith("INSERT")]
    assert await Customer.all().count() == 0


async def test_a_long_literal_in_a_mutation_is_refused(gql, admin):
    _, token = admin
    literal = "x" * (MAX_STRING + 1)
    mutation = 'mutation { addNote(input: {subjectId: "x", body: "' + literal + '"}) { errors { message } } }'
    _refused((await gql.raw(mutation, token=token)).json(), ["input", "body"])


@pytest.mark.parametrize("length", [10_000, MAX_STRING])
async def test_long_texts_the_domain_takes_still_reach_its_rules(gql, admin, length):
    """The general limit sits above the longest text a rule takes (20,000): the rule answers, not the limit."""
    _, token = admin
    mutation = 'mutation($b: String!) { addNote(input: {subjectId: "eA", body: $b}) { errors { code } } }'
    body = (await gql.raw(mutation, {"b": "x" * length}, token=token)).json()
    assert all(e["extensions"]["code"] != "LIMIT_EXCEEDED" for e in body.get("errors") or []), body
