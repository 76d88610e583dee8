"""Real processes to break: `crm serve`, `crm worker` and `crm scheduler` subprocesses, a Redis server of the
test's own (restarted for real), and a TCP proxy in front of PostgreSQL (stopping it is, for the processes behind
it, the database going away: open connections reset, new ones refused; the server itself keeps serving the other
tests running at the same time).

Every wait is bounded: `eventually` fails the test with what it last saw."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "reliability-tests-secret-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def eventually(
    check: Callable[[], Awaitable[object]], *, timeout: float, interval: float = 0.2, what: str = "the condition"
) -> object:
    """Await `check()` until it returns something truthy (returned), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s (last seen: {last!r})")


async def graphql(
    url: str, query: str, variables: dict | None = None, token: str | None = None, timeout: float = 30
) -> dict:
    """One request to a running API process: the whole response body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables or {}}
    async with httpx.AsyncClient(timeout=timeout) as http:
        return (await http.post(f"{url}/graphql", json=body, headers=headers)).json()


# ---------------------------------------------------------------- Redis of the test's own


class RedisServer:
    """A `redis-server` on a free port, nothing kept on disk: `stop()` and `start()` are a real restart (every
    queued message is lost, as with a Redis that keeps nothing)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- PostgreSQL behind a proxy


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server, in this test's event loop. `stop()` closes the listening socket and
    resets every open connection; `start()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()  # a reset, as when the server process dies
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(sink)
            with contextlib.suppress(Exception):
                sink.transport.abort()


def proxied_database_url(database_url: str, proxy: TcpProxy) -> str:
    parsed = urlparse(database_url)
    credentials = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
    return parsed._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}").geturl()


def database_target(database_url: str) -> tuple[str, int]:
    parsed = urlparse(database_url)
    return parsed.hostname or "127.0.0.1", parsed.port or 5432


# ---------------------------------------------------------------- crm processes


def crm_env(database_url: str, redis_url: str | None, **settings: str) -> dict[str, str]:
    """The environment of a `crm` subprocess: the caller's without its CRM_* variables, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_ENV="test",
        CRM_DATABASE_URL=database_url,
        CRM_REDIS_URL=redis_url or "",
        CRM_SECRET_KEY=SECRET_KEY,
        CRM_LOG_JSON="false",
        **settings,
    )
    return env


class Process:
    """A `crm` subprocess whose output goes to a file (read it with `output()`), in its own process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self._log = tempfile.NamedTemporaryFile(prefix=f"crm-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "app.py", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when the machine or the OOM killer takes it."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait (bounded) for it to exit; its exit status."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout:.0f}s of SIGTERM") from None

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def close(self) -> None:
        self.kill()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


def start_worker(env: dict[str, str], *, threads: int = 2, name: str = "worker") -> Process:
    return Process(name, ["worker", "--threads", str(threads)], env)


def start_scheduler(env: dict[str, str]) -> Process:
    return Process("scheduler", ["scheduler"], env)


async def start_api(env: dict[str, str], *, port: int | None = None, workers: int = 1, timeout: float = 60) -> Api:
    api = Api(env, port or free_port(), workers)
    await api.ready(timeout)
    return api


class Api(Process):
    """`crm serve` on a loopback port."""

    def __init__(self, env: dict[str, str], port: int, workers: int = 1) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        super().__init__("api", ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)], env)

    async def ready(self, timeout: float = 60) -> None:
        async def answers() -> bool:
            assert self.alive(), f"the API exited:\n{self.output()[-3000:]}"
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{self.url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(answers, timeout=timeout, what="the API answering /healthz")


@contextlib.contextmanager
def processes() -> Iterator[list[Process]]:
    """A list to put started processes in; every one is killed at the end, whatever happened."""
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.close()


# ---------------------------------------------------------------- messages sent by hand


def send_message(redis_url: str, actor_name: str, *args: object, queue_name: str = "default") -> None:
    """One Dramatiq message to the workers behind `redis_url`, as `crm scheduler` sends a periodic actor (a sweep)
    at its tick: a test that cannot wait for the tick sends it itself."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url)
    try:
        broker.declare_queue(queue_name)
        broker.enqueue(dramatiq.Message(queue_name=queue_name, actor_name=actor_name, args=args, kwargs={}, options={}))
    finally:
        broker.close()


async def readiness(url: str) -> tuple[int, dict]:
    """GET /readyz: its status and checks (a request that fails or takes over 5 s is (0, {}))."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{url}/readyz")
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json().get("checks", {})


# The settings of a `crm` process whose clients share one token and one address (load, concurrency): the rate limits
# must not be what refuses them.
NO_RATE_LIMITS = {
    "CRM_LIMIT_API_TOKEN_BURST": "100000",
    "CRM_LIMIT_API_TOKEN_PER_HOUR": "1000000",
    "CRM_LIMIT_API_IP_BURST": "100000",
    "CRM_LIMIT_API_IP_PER_HOUR": "1000000",
}
