"""A real uvicorn server on a free loopback port, a graphql-transport-ws client, and `crm worker` processes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
import websockets

from app import create_app
from core.settings import Settings
from tests.database import empty_all_tables

ROOT = Path(__file__).resolve().parents[2]


class Served:
    """A running server's lifespan state: `runtime` for tests that reach its queue or pub/sub."""

    def __init__(self, server: uvicorn.Server) -> None:
        self._server = server

    @property
    def runtime(self):
        return self._server.lifespan.state["runtime"]


@asynccontextmanager
async def live_server(settings: Settings):
    application = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, log_config=None, lifespan="on", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(300):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "the server did not start"
        await empty_all_tables()
        yield Served(server), f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


async def stream(
    address: str, token: str, query: str, variables: dict, *, timeout: float = 30.0
) -> AsyncIterator[dict]:
    """Every `next` payload as it arrives, until the server completes the subscription; a refused one yields
    one {"errors": ...} payload. Close it early with contextlib.aclosing (it holds the websocket)."""
    async with websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if message["type"] == "next":
                yield message["payload"]
            elif message["type"] == "complete":
                return
            elif message["type"] == "error":
                yield {"errors": message["payload"]}
                return


async def subscribe(address: str, token: str, query: str, variables: dict, *, timeout: float = 30.0) -> list[dict]:
    """Every `next` payload until the server completes the subscription."""
    return [payload async for payload in stream(address, token, query, variables, timeout=timeout)]


def start_worker(settings: Settings, *, threads: int = 2, **environment: str) -> subprocess.Popen:
    """A `crm worker` process on the settings' database and Redis (plus `CRM_*` variables given here), its
    output piped; stop it with terminate() or kill()."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_ENV="test",
        CRM_DATABASE_URL=settings.database_url,
        CRM_REDIS_URL=settings.redis_url or "",
        CRM_SECRET_KEY=settings.secret_key,
        CRM_LOG_JSON="false",
        **environment,
    )
    return subprocess.Popen(
        [sys.executable, "app.py", "worker", "--threads", str(threads)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
