import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from app import create_app
from models.staff import Role
from services import staff as staff_service
from tests.conftest import GraphQLClient, make_staff, token_for, with_overrides
from tests.database import empty_all_tables

INTROSPECTION = "{ __schema { types { name } } }"


@pytest_asyncio.fixture
async def production(settings):
    """A production app (the only app of the test) and an ADMIN's token for it."""
    prod = with_overrides(settings, env="production", secret_key="p" * 40)
    application = create_app(prod)
    async with LifespanManager(application) as manager:
        await empty_all_tables()
        token = await token_for(await make_staff(Role.ADMIN), prod)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http), token


@pytest.fixture
def production_gql(production):
    return production[0]


@pytest.fixture
def prod_token(production):
    return production[1]


async def test_production_refuses_introspection(production_gql):
    errors = await production_gql.errors(INTROSPECTION)
    assert "introspection" in errors[0]["message"].lower()


async def test_production_serves_no_graphiql(production_gql):
    page = await production_gql.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert (await production_gql.http.get("/static/graphiql/graphiql.min.js")).status_code == 404


async def test_production_gives_no_field_suggestions(production_gql):
    errors = await production_gql.errors("{ mee { id } }")
    assert "Did you mean" not in errors[0]["message"]


async def test_development_gives_suggestions_and_introspection(gql):  # the ordinary (test) app
    errors = await gql.errors("{ mee { id } }")
    assert "Did you mean" in errors[0]["message"]
    assert (await gql(INTROSPECTION))["__schema"]["types"]


async def test_unexpected_errors_are_masked_with_the_request_id(production_gql, prod_token, monkeypatch):
    token = prod_token

    def broken(caller):
        raise RuntimeError("connection string postgres://secret@db leaked")

    monkeypatch.setattr(staff_service, "listing", broken)
    response = await production_gql.raw("{ staff { totalCount } }", token=token, headers={"X-Request-ID": "req-42"})
    error = response.json()["errors"][0]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["message"] == "Unexpected error. Quote request id req-42 to support."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert response.headers["x-request-id"] == "req-42"


async def test_business_errors_are_not_masked_in_production(production_gql, prod_token):
    errors = await production_gql.errors("{ staff(first: 500) { totalCount } }", token=prod_token)
    assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "at most 100" in errors[0]["message"]
