"""Logs never hold passwords, tokens or variables' values; an expected client error is one INFO line without a
traceback, and only an unexpected error is an ERROR (docs/DOMAIN.md, limits and protection)."""

import logging

import pytest

import resolvers.staff
from tests.conftest import PASSWORD

SECRET = "s3cret-Passw0rd-in-the-log"
LOGIN = """mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token errors { code } }
}"""


def _text(record: logging.LogRecord) -> str:
    formatter = logging.Formatter("%(message)s")
    return formatter.format(record) + " " + " ".join(str(v) for v in vars(record).values())


def _assert_clean(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for record in caplog.records:
        text = _text(record)
        for secret in secrets:
            assert secret not in text, f"{record.name} logged a secret: {record.getMessage()}"
        assert record.levelno < logging.ERROR, f"{record.name} logged at {record.levelname}: {record.getMessage()}"
        assert record.exc_info is None and record.exc_text is None, f"{record.name} logged a traceback"


async def test_a_wrong_password_logs_neither_the_password_nor_a_traceback(gql, staff_factory, caplog):
    member, _ = await staff_factory()
    caplog.set_level(logging.INFO)
    data = await gql(LOGIN, {"u": member.username, "p": SECRET})
    assert data["login"]["token"] is None
    _assert_clean(caplog, SECRET)


async def test_client_errors_are_one_info_line_without_the_query_or_the_variables(gql, staff_factory, caplog):
    member, token = await staff_factory()
    caplog.set_level(logging.INFO)
    # A password written into the query text, refused by validation.
    errors = await gql.errors(
        f'mutation {{ login(input: {{username: "{member.username}", password: "{SECRET}", nope: 1}}) {{ token }} }}'
    )
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # A password in a variable whose value cannot be coerced: graphql-core's message quotes the value.
    errors = await gql.errors(LOGIN, {"u": member.username, "p": [SECRET]})
    assert errors[0]["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED")
    # A syntax error in a query that holds a token.
    await gql.errors('query Broken { me(token: "' + token + '") { username ')
    # Not signed in.
    response = await gql.raw("query Staff { staff(first: 1) { edges { node { id } } } }")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    _assert_clean(caplog, SECRET, token, PASSWORD)
    lines = [r for r in caplog.records if r.name == "crm.graphql"]
    assert [r.levelno for r in lines] == [logging.INFO] * 4
    assert [r.code for r in lines] == [
        "GRAPHQL_VALIDATION_FAILED",
        errors[0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED",
        "UNAUTHENTICATED",
    ]
    assert lines[-1].operation == "Staff" and lines[-1].path == "staff"
    assert all(r.request_id for r in lines)
    assert not [r for r in caplog.records if r.name.startswith("strawberry")]


async def test_an_unexpected_error_is_an_error_with_its_traceback_but_without_the_token(
    gql, admin, caplog, monkeypatch
):
    _, token = admin

    async def broken(info):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(resolvers.staff, "caller_of", broken)
    caplog.set_level(logging.INFO)
    response = await gql.raw("query Me($x: Boolean!) { me @skip(if: $x) { username } }", {"x": False}, token=token)
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == "crm.graphql"
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
    assert errors[0].operation == "Me" and errors[0].path == "me"
    assert all(token not in _text(r) for r in caplog.records)
