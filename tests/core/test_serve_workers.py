"""`crm serve --workers N`: N API processes sharing the port (PostgreSQL and Redis only), each answering on its
own, all stopped by one SIGTERM; refused on the embedded default."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

import cli
from core.settings import Settings
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.core.test_command_line import ROOT, crm

ON_POSTGRES_AND_REDIS = bool(
    TEST_DATABASE_URL and TEST_REDIS_URL and urlparse(TEST_DATABASE_URL).scheme.startswith("postgres")
)


def test_more_than_one_process_is_refused_on_the_embedded_default(tmp_path):
    result = crm("serve", "--workers", "2", "--port", "0", env={"CRM_DATABASE_URL": f"sqlite://{tmp_path}/x.sqlite3"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("crm serve: --workers 2 needs CRM_REDIS_URL")


def test_sqlite_is_refused_even_with_redis():
    on_sqlite = Settings(database_url="sqlite://var/x.sqlite3", redis_url="redis://127.0.0.1:6379/14")
    assert "needs PostgreSQL" in cli._workers_refusal(on_sqlite, 2)
    assert cli._workers_refusal(on_sqlite, 1) is None
    assert cli._workers_refusal(Settings(), 0) == "--workers must be at least 1"


def test_the_default_number_of_processes():
    pg, redis_url = "postgres://u@h:5432/crm", "redis://h:6379/0"
    assert cli.default_workers(Settings()) == 1  # development, embedded
    assert cli.default_workers(Settings(database_url=pg, redis_url=redis_url)) == 1  # development
    production = Settings(env="production", secret_key="k" * 40, database_url=pg, redis_url=redis_url)
    assert cli.default_workers(production) == len(os.sched_getaffinity(0))
    assert cli.default_workers(Settings(env="production", secret_key="k" * 40, database_url=pg)) == 1  # no Redis


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    """The spawned uvicorn worker processes of `pid` (not multiprocessing's resource tracker)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return sorted(found)


@pytest.mark.skipif(not ON_POSTGRES_AND_REDIS, reason="needs CRM_TEST_DATABASE_URL (PostgreSQL) and CRM_TEST_REDIS_URL")
def test_two_processes_each_answer_and_stop_on_sigterm(migrated_database, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_ENV="production",
        CRM_SECRET_KEY="s" * 40,
        CRM_DATABASE_URL=migrated_database,
        CRM_REDIS_URL=TEST_REDIS_URL,
        CRM_LOG_JSON="false",
        CRM_MAIL_DROP_DIR=str(tmp_path / "outbox"),
    )
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "app.py", "serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text(errors="replace").count("Application startup complete") < 2:
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        workers = _children(server.pid)
        assert len(workers) == 2, workers
        # Each process answers alone: with the other one stopped, every new connection is accepted by it.
        for answering in workers:
            (other,) = [w for w in workers if w != answering]
            os.kill(other, signal.SIGSTOP)
            try:
                for _ in range(3):
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                    assert response.status_code == 200 and response.json() == {"status": "ok"}
            finally:
                os.kill(other, signal.SIGCONT)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text(errors="replace")
        assert not [w for w in workers if Path(f"/proc/{w}").exists()], "a worker outlived its parent"
        assert log.read_text(errors="replace").count("Application shutdown complete") == 2
    finally:
        if server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
