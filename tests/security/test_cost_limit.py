"""The cost estimate counts every list (connections, `nodes`, plain lists) through fragments, interfaces and
unions, with variables and their defaults resolved: what bypassed it is refused before execution."""

from typing import Annotated

import pytest
import strawberry
from graphql import GraphQLInterfaceType, GraphQLList, GraphQLNonNull, GraphQLObjectType

from schema.base import to_global_id
from schema.build import build_schema, protection_extensions
from schema.protection import LIST_BOUNDS, MAX_COST, SIZED_BY_ARGUMENT, CostLimiter, ErrorCodes
from services.pagination import MAX_PAGE
from tests.conftest import StatementCounter

IDS = [to_global_id("Customer", n) for n in range(1, 101)]

BYPASSES = {
    # plain lists counted nothing
    "possible duplicates of possible duplicates": (
        "{ customers(first: 100) { edges { node { possibleDuplicates { possibleDuplicates { id } } } } } }",
        {},
    ),
    "holdings and back": (
        "{ customers(first: 100) { edges { node { holdings { customer { holdings { id } } } } } } }",
        {},
    ),
    # `nodes` and `node` (an interface) hid what their fragments asked for
    "nodes with an inline fragment": (
        """query($ids: [ID!]!) { nodes(ids: $ids) { ... on Customer { interactions(first: 100) {
             edges { node { customer { complaints(first: 100) { totalCount } } } } } } } }""",
        {"ids": IDS},
    ),
    "node with a named fragment": (
        """{ node(id: "x") { ...C } }
           fragment C on Customer { interactions(first: 100) { edges { node { customer {
             complaints(first: 100) { edges { node { customer { history(first: 100) { totalCount } } } } } } } } } }""",
        {},
    ),
    # TimelineItem.subject is a Node
    "timeline subjects": (
        """{ customers(first: 100) { edges { node { timeline(first: 100) { edges { node {
             subject { ... on Customer { interactions(first: 100) { totalCount } } } } } } } } } }""",
        {},
    ),
    # a variable's default counted as the default page
    "variable defaults": (
        """query($n: Int = 100) { customers(first: $n) { edges { node { interactions(first: $n) {
             edges { node { customer { complaints(first: $n) { totalCount } } } } } } } } }""",
        {},
    ),
    "fragment spread twice in different fields": (
        """{ a: customers(first: 100) { ...Page } b: customers(first: 100) { ...Page } }
           fragment Page on CustomerConnection { edges { node { notes { id } holdings { id } } } }""",
        {},
    ),
}


@pytest.mark.parametrize("name", list(BYPASSES))
async def test_what_bypassed_the_cost_limit_is_refused(gql, admin, name):
    _, token = admin
    query, variables = BYPASSES[name]
    with StatementCounter() as counter:
        response = await gql.raw(query, variables, token=token)
    body = response.json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    assert error["extensions"]["cost"] > MAX_COST
    assert counter.reads() == []  # refused before anything was read (the token is checked when a field asks)


ORDINARY = {
    "a customer page with its lists": """{ customers(first: 20) { totalCount edges { node { id tags holdings { id }
        notes { id } consents { purpose } dataIssues { field } possibleDuplicates { id name } } } } }""",
    "a full page of customers": "{ customers(first: 100) { edges { node { id holdings { id } notes { id } } } } }",
    "nodes by id": """query($ids: [ID!]!) {
        nodes(ids: $ids) { id ... on Customer { interactions { totalCount } } } }""",
    "a timeline": """{ customers(first: 5) { edges { node { timeline(first: 20) { edges { node { kind
        subject { id ... on Complaint { events { type } } } } } } } } } }""",
}


@pytest.mark.parametrize("name", list(ORDINARY))
async def test_ordinary_queries_still_run(gql, admin, name):
    _, token = admin
    variables = {"ids": IDS[:3]} if "$ids" in ORDINARY[name] else None
    await gql(ORDINARY[name], variables, token=token)


def test_every_list_field_has_a_declared_maximum():
    """A new list field must say how long it can be (LIST_BOUNDS) or be counted by an argument."""
    schema = build_schema()._schema
    missing = []
    for type_name, type_ in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            continue
        for field_name, field in type_.fields.items():
            field_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if not isinstance(field_type, GraphQLList):
                continue
            if field_name == "edges" and type_name.endswith("Connection"):
                continue
            if field_name == "errors" and type_name.endswith("Payload"):
                continue
            if (type_name, field_name) not in LIST_BOUNDS and (type_name, field_name) not in SIZED_BY_ARGUMENT:
                missing.append(f"{type_name}.{field_name}")
    assert missing == []


# Unions and interfaces on a small schema: the most expensive branch counts.
@strawberry.type
class Leaf:
    id: int


@strawberry.type
class Cheap:
    id: int


@strawberry.type
class Dear:
    @strawberry.field
    def leaves(self, first: int | None = None) -> list[Leaf]:
        return []


Thing = Annotated[Cheap | Dear, strawberry.union("Thing")]


@strawberry.type
class Toy:
    @strawberry.field
    def things(self, first: int | None = None) -> list[Thing]:
        return []


TOY = strawberry.Schema(query=Toy, extensions=[CostLimiter, ErrorCodes])


async def test_a_union_costs_its_most_expensive_member():
    # things: MAX_PAGE (an undeclared list); each Dear has MAX_PAGE leaves, and each leaf counts
    many = "{ a: things { ... on Cheap { id } ... on Dear { leaves { id } } } b: things { ...D } c: things { ...D }"
    many += " d: things { ...D } e: things { ...D } } fragment D on Dear { leaves { id } }"
    refused = await TOY.execute(many)
    assert refused.errors and refused.errors[0].extensions["code"] == "LIMIT_EXCEEDED"
    assert refused.errors[0].extensions["cost"] == 5 * (MAX_PAGE + MAX_PAGE * MAX_PAGE)
    assert (await TOY.execute("{ things { ... on Cheap { id } ... on Dear { leaves { id } } } }")).errors is None


async def test_fragment_cycles_end_the_walk_and_are_refused():
    schema = strawberry.Schema(query=Toy, extensions=protection_extensions())
    result = await schema.execute(
        "{ things { ...A } } fragment A on Dear { leaves { id } ...B } fragment B on Dear { ...A }"
    )
    assert result.errors and result.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
