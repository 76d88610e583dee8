import json

import pytest
import strawberry

from schema.base import Connection, Edge, PageInfo
from schema.build import protection_extensions
from schema.protection import MAX_COST, CostLimiter, ErrorCodes


@strawberry.type
class Folder:
    id: int

    @strawberry.field
    def child(self) -> "Folder":
        return Folder(id=self.id + 1)


@strawberry.type
class FolderQuery:
    @strawberry.field
    def root(self) -> Folder:
        return Folder(id=0)


FOLDERS = strawberry.Schema(query=FolderQuery, extensions=protection_extensions())


def _of_depth(depth: int) -> str:
    """Depth counts nesting below the root field, as graphql-depth-limit does: `{ root { id } }` is 1."""
    return "{ root { " + "child { " * (depth - 1) + "id" + " }" * (depth - 1) + " } }"


async def test_depth_of_ten_runs_and_eleven_is_refused():
    assert (await FOLDERS.execute(_of_depth(10))).errors is None
    errors = (await FOLDERS.execute(_of_depth(11))).errors
    assert errors and "depth" in errors[0].message
    assert errors[0].extensions["code"] == "LIMIT_EXCEEDED"


async def test_more_than_thirty_aliases_is_refused(gql, admin):
    _, token = admin
    ok = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(30)) + " }"
    assert len(await gql(ok, token=token)) == 30
    too_many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    errors = await gql.errors(too_many, token=token)
    assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_more_than_5000_tokens_is_refused(gql, admin):
    _, token = admin
    query = "{ me { " + "id " * 5000 + "} }"
    errors = await gql.errors(query, token=token)
    assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_body_over_one_mebibyte_is_refused(client):
    body = json.dumps({"query": "{ me { id } }", "variables": {"pad": "x" * (1024 * 1024)}})
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_chunked_body_over_the_limit_is_refused(client):
    async def chunks():
        for _ in range(20):
            yield b"x" * (64 * 1024)

    response = await client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_batches_of_more_than_twenty_operations_are_refused(client, admin):
    _, token = admin
    headers = {"Authorization": f"Bearer {token}"}
    ok = await client.post("/graphql", json=[{"query": "{ me { id } }"}] * 20, headers=headers)
    assert ok.status_code == 200 and len(ok.json()) == 20
    too_many = await client.post("/graphql", json=[{"query": "{ me { id } }"}] * 21, headers=headers)
    assert too_many.status_code == 400


async def test_validation_and_syntax_errors_carry_codes(gql, admin):
    _, token = admin
    assert (await gql.errors("{ me { nope } }", token=token))[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await gql.errors("{ me { ", token=token))[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


# The cost limit, checked on a small schema whose connections nest as deep as the limits allow.
@strawberry.type
class Leaf:
    id: int


@strawberry.type
class Branch:
    @strawberry.field
    def leaves(self, first: int | None = None) -> Connection[Leaf]:
        return Connection(
            page_info=PageInfo(has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None),
            edges=[],
            _count=_zero,
        )


async def _zero() -> int:
    return 0


@strawberry.type
class ToyQuery:
    @strawberry.field
    def branches(self, first: int | None = None) -> Connection[Branch]:
        return Connection(
            page_info=PageInfo(has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None),
            edges=[Edge(cursor="c", node=Branch())],
            _count=_zero,
        )


TOY = strawberry.Schema(query=ToyQuery, extensions=[CostLimiter, ErrorCodes])
NESTED = (
    "query($a: Int, $b: Int) { branches(first: $a) { edges { node { leaves(first: $b) { edges { node { id } } } } } } }"
)


@pytest.mark.parametrize(
    ("a", "b", "allowed"),
    [
        (100, 100, True),  # 100 + 100*100 = 10,100
        (100, None, True),  # unspecified pages count as 20
        (None, None, True),
    ],
)
async def test_cost_within_the_limit_runs(a, b, allowed):
    result = await TOY.execute(NESTED, variable_values={"a": a, "b": b})
    assert (result.errors is None) is allowed


async def test_cost_over_the_limit_is_refused_before_execution():
    query = """{ x: branches(first: 100) { edges { node { leaves(first: 100) { edges { node { id } } } } } }
                 y: branches(first: 100) { edges { node { leaves(first: 100) { edges { node { id } } } } } }
                 z: branches(first: 100) { edges { node { leaves(first: 100) { edges { node { id } } } } } }
                 w: branches(first: 100) { edges { node { leaves(first: 100) { edges { node { id } } } } } }
                 v: branches(first: 100) { edges { node { leaves(first: 100) { edges { node { id } } } } } } }"""
    result = await TOY.execute(query)
    assert result.data is None
    assert result.errors[0].extensions["code"] == "LIMIT_EXCEEDED"
    assert result.errors[0].extensions["cost"] > MAX_COST


async def test_cost_follows_fragments():
    query = """query { branches(first: 100) { ...B } b2: branches(first: 100) { ...B }
      b3: branches(first: 100) { ...B } b4: branches(first: 100) { ...B } b5: branches(first: 100) { ...B } }
      fragment B on BranchConnection { edges { node { leaves(first: 100) { totalCount } } } }"""
    result = await TOY.execute(query)
    assert result.errors and result.errors[0].extensions["code"] == "LIMIT_EXCEEDED"
