"""The client address (what rate limits and the audit log see) comes from X-Forwarded-For only when the peer
is in CRM_TRUSTED_PROXIES (docs/DOMAIN.md, limits and protection)."""

from __future__ import annotations

import argparse
import itertools

import pytest

import cli
from core.settings import Settings, SettingsError
from models.audit import AuditEntry
from tests.conftest import with_overrides
from tests.security.helpers_http import http_for

FAILED_LOGIN = """mutation($u: String!) { login(input: {username: $u, password: "wrong-password-1"}) { token } }"""
_names = itertools.count(1)


async def _audited_ip(http, headers: dict[str, str]) -> str | None:
    username = f"nobody-proxy-{next(_names)}"
    response = await http.post("/graphql", json={"query": FAILED_LOGIN, "variables": {"u": username}}, headers=headers)
    assert response.status_code == 200, response.text
    entry = await AuditEntry.filter(action="login.failed", actor_name=username).first()
    assert entry is not None
    return entry.ip


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    async with http_for(settings) as http:  # no trusted proxies: the default
        assert await _audited_ip(http, {"X-Forwarded-For": "198.51.100.99"}) == "203.0.113.7"
    elsewhere = with_overrides(settings, trusted_proxies="10.0.0.0/8")
    async with http_for(elsewhere) as http:  # proxies are trusted, but this peer is not one
        assert await _audited_ip(http, {"X-Forwarded-For": "198.51.100.99"}) == "203.0.113.7"


async def test_a_trusted_proxy_gives_the_client_address(settings):
    behind = with_overrides(settings, trusted_proxies="10.0.0.0/8, 203.0.113.0/24")
    async with http_for(behind) as http:
        assert await _audited_ip(http, {"X-Forwarded-For": "198.51.100.99"}) == "198.51.100.99"
        # The client wrote its own X-Forwarded-For; the proxies appended the address they saw: the nearest
        # address that is not a trusted proxy counts, not the one the client chose.
        chain = "192.0.2.1, 198.51.100.99, 10.1.2.3"
        assert await _audited_ip(http, {"X-Forwarded-For": chain}) == "198.51.100.99"
        assert await _audited_ip(http, {}) == "203.0.113.7"
        assert await _audited_ip(http, {"X-Forwarded-For": "not-an-address"}) == "203.0.113.7"


async def test_ipv6_peers_and_single_addresses(settings):
    behind = with_overrides(settings, trusted_proxies="::1")
    async with http_for(behind, peer=("::1", 4000)) as http:
        assert await _audited_ip(http, {"X-Forwarded-For": "2001:db8::5"}) == "2001:db8::5"


def test_the_setting_is_checked():
    assert Settings(trusted_proxies="10.0.0.0/8,192.168.1.1").validated().trusted_networks[1].num_addresses == 1
    with pytest.raises(SettingsError, match="CRM_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/33").validated()
    with pytest.raises(SettingsError, match="CRM_TRUSTED_PROXIES"):
        Settings(trusted_proxies="proxy.internal").validated()


def test_uvicorn_does_not_read_forwarded_headers_itself(monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(cli, "_preflight", lambda settings: _done())
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr("app.create_app", lambda settings: object())
    assert cli.cmd_serve(Settings(), argparse.Namespace(host="127.0.0.1", port=0, workers=None)) == 0
    assert seen["proxy_headers"] is False


async def _done() -> None:
    return None
