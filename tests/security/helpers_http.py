"""An app of the test's own settings behind an httpx client, for tests that change settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app import create_app
from core.settings import Settings
from tests.conftest import RunningApp

PEER = ("203.0.113.7", 51000)


@asynccontextmanager
async def http_for(settings: Settings, peer: tuple[str, int] = PEER) -> AsyncIterator[httpx.AsyncClient]:
    async with RunningApp(create_app(settings)).running() as running:
        transport = httpx.ASGITransport(app=running, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
