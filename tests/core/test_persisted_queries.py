"""Automatic persisted queries (Apollo's APQ convention): the hash alone once the text is known, over POST and GET."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.persisted_queries import NOT_FOUND, PersistedQueries, PersistedQueryError

QUERY = "query Me { me { username role } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()


def _persisted(digest: str = HASH, version: int = 1) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def _post(client, token: str, body: dict):
    return await client.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})


async def test_the_hash_alone_runs_a_query_sent_once_with_its_text(client, admin):
    member, token = admin
    unknown = await _post(client, token, {"extensions": _persisted()})
    assert unknown.status_code == 200
    assert unknown.json()["errors"][0]["extensions"]["code"] == NOT_FOUND
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"  # what Apollo's link looks for

    first = await _post(client, token, {"query": QUERY, "extensions": _persisted()})
    assert first.json() == {"data": {"me": {"username": member.username, "role": "ADMIN"}}}
    again = await _post(client, token, {"extensions": _persisted(HASH.upper())})
    assert again.json() == first.json()

    params = {"extensions": json.dumps(_persisted()), "operationName": "Me"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    over_get = await client.get("/graphql", params=params, headers=headers)
    assert over_get.json() == first.json()


async def test_a_persisted_query_runs_as_whoever_sends_the_hash(client, admin):
    _, token = admin
    await _post(client, token, {"query": QUERY, "extensions": _persisted()})
    anonymous = await client.post("/graphql", json={"extensions": _persisted()})
    assert anonymous.json() == {"data": {"me": None}}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"query": "{ me { id } }", "extensions": _persisted()}, 400, "BAD_REQUEST"),  # the text is not the hash's
        ({"extensions": _persisted(version=2)}, 200, "PERSISTED_QUERY_NOT_SUPPORTED"),
        ({"extensions": _persisted("not-a-hash")}, 200, "PERSISTED_QUERY_NOT_SUPPORTED"),
        ({"extensions": {"persistedQuery": "yes"}}, 200, "PERSISTED_QUERY_NOT_SUPPORTED"),
        ([{"extensions": _persisted("0" * 64)}], 200, NOT_FOUND),  # in a batch too
    ],
)
async def test_bad_persisted_queries_get_a_clear_code(client, admin, body, status, code):
    _, token = admin
    response = await _post(client, token, body)
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code


def test_the_kept_texts_are_bounded_least_recently_used_first():
    kept = PersistedQueries(size=2)
    texts = ["{ a }", "{ b }", "{ c }"]
    digests = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    for text, digest in zip(texts[:2], digests[:2], strict=True):
        kept.query_for(text, _persisted(digest))
    assert kept.query_for(None, _persisted(digests[0])) == "{ a }"  # a is now the most recently used
    kept.query_for(texts[2], _persisted(digests[2]))
    assert kept.query_for(None, _persisted(digests[0])) == "{ a }"
    with pytest.raises(PersistedQueryError) as forgotten:
        kept.query_for(None, _persisted(digests[1]))
    assert forgotten.value.code == NOT_FOUND
