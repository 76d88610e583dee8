"""Response headers: no MIME sniffing anywhere, API answers never cached, a Content-Security-Policy on every
page (GraphiQL, the survey page), CORS only for the origins of CRM_CORS_ORIGINS, /metrics behind
CRM_METRICS_TOKEN when it is set."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from core.settings import Settings, SettingsError
from tests.conftest import with_overrides
from tests.security.helpers_http import http_for

QUERY = {"query": "{ __typename }"}
HTML = {"Accept": "text/html"}


def _directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


async def test_every_response_says_nosniff_and_api_answers_are_not_stored(client):
    responses = [
        await client.post("/graphql", json=QUERY),
        await client.get("/graphql?query={__typename}"),
        await client.post("/graphql", content="[1", headers={"Content-Type": "application/json"}),
        await client.get("/healthz"),
        await client.get("/metrics"),
        await client.get("/jobs/1/download"),
        await client.get("/no-such-page"),
        await client.get("/s/no-such-token"),
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url
        assert response.headers["cache-control"] == "no-store", response.request.url


async def test_graphiql_runs_under_a_policy_that_allows_only_itself(client):
    response = await client.get("/graphql", headers=HTML)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    # Scripts: this origin and the page's one inline script, by its hash; nothing from elsewhere, no eval.
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert sorted(policy["script-src"]) == sorted(["'self'", f"'sha256-{digest}'"])
    for sources in policy.values():
        assert not [s for s in sources if "://" in s or s in ("*", "'unsafe-eval'", "http:", "https:")]


async def test_the_survey_page_has_its_policy(client):
    response = await client.get("/s/no-such-token")
    assert response.headers["content-type"].startswith("text/html")
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


ORIGIN = {"Origin": "https://evil.example"}
PREFLIGHT = {**ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}


async def test_no_cross_origin_access_by_default(client):
    response = await client.post("/graphql", json=QUERY, headers=ORIGIN)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in (await client.options("/graphql", headers=PREFLIGHT)).headers


async def test_cross_origin_access_only_for_the_listed_origins(settings):
    origin, preflight = ORIGIN, PREFLIGHT
    listed = with_overrides(settings, cors_origins="https://crm.bank.example, https://ops.bank.example")
    async with http_for(listed) as http:
        response = await http.post("/graphql", json=QUERY, headers={"Origin": "https://crm.bank.example"})
        assert response.headers["access-control-allow-origin"] == "https://crm.bank.example"
        assert "access-control-allow-credentials" not in response.headers
        allowed = await http.options(
            "/graphql",
            headers={
                "Origin": "https://ops.bank.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ops.bank.example"
        assert allowed.headers["x-content-type-options"] == "nosniff"
        refused = await http.options("/graphql", headers=preflight)
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        response = await http.post("/graphql", json=QUERY, headers=origin)
        assert "access-control-allow-origin" not in response.headers


def test_cors_origins_must_be_origins():
    assert Settings(cors_origins="https://a.example, http://b.example:8080/").validated().cors_origin_list == [
        "https://a.example",
        "http://b.example:8080",
    ]
    for wrong in ("*", "a.example", "https://a.example/path", "ftp://a.example"):
        with pytest.raises(SettingsError, match="CRM_CORS_ORIGINS"):
            Settings(cors_origins=wrong).validated()


async def test_metrics_need_the_token_when_one_is_set(settings):
    token = "metrics-token-0123456789abcdef"
    async with http_for(with_overrides(settings, metrics_token=token)) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer metrics-token-0123456789abcdeX"})
        assert wrong.status_code == 401 and "crm_" not in wrong.text
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and right.headers["content-type"].startswith("text/plain")
    with pytest.raises(SettingsError, match="CRM_METRICS_TOKEN"):
        Settings(metrics_token="short").validated()


async def test_a_sane_request_id_is_kept_and_any_other_replaced(client):
    kept = await client.get("/healthz", headers={"X-Request-ID": "abc-123.DEF_9"})
    assert kept.headers["x-request-id"] == "abc-123.DEF_9"
    for bad in ("a" * 65, "id with spaces", "<script>", "a/b", "ünïcode".encode(), b"id\x00x", ""):
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
        echoed = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), bad
