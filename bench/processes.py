"""What the benchmarks that start worker processes share: starting and stopping them, measuring the CPU each
part of the machine uses (from /proc), and refusing services that are not this machine's or that the test suite
uses."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bench import common

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Processes:
    """The processes this benchmark starts, each in a session of its own; `stop_all` ends them (SIGTERM to
    their process group, then SIGKILL after a grace period)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.running.append((process, log))
        return process, log

    def wait_for(self, marker: str, timeout: float) -> None:
        """Until every running process's log holds `marker` (it is ready)."""
        deadline = time.monotonic() + timeout
        for process, log in self.running:
            while marker not in log.read_text(errors="replace"):
                if process.poll() is not None:
                    raise RuntimeError(f"{log.name}: exited with {process.returncode}:\n{_tail(log)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{log.name}: not ready after {timeout:.0f} s:\n{_tail(log)}")
                time.sleep(0.1)

    def pids(self) -> list[int]:
        """Every live process of the groups started (the dramatiq CLI forks its workers)."""
        groups = {p.pid for p, _ in self.running}
        return [pid for pid, stat in _stats() if stat[2] in groups]

    def stop_all(self, grace: float = 20.0) -> None:
        for process, _ in self.running:
            if process.poll() is None:  # the leader stops its own children (the dramatiq CLI's workers)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process, log in self.running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{log.name}: still running after {grace:.0f} s, killed", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.running = []


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        yield int(entry), [fields[0], *map(int, fields[1:])]  # state, ppid, pgrp, ...


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cpu(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far."""
    total = 0
    for pid, stat in _stats():
        if pid in pids:
            total += stat[11] + stat[12]  # utime, stime
    return total / CLK_TCK


@dataclass
class CpuUse:
    workers: float
    postgres: float
    redis: float
    this: float  # the benchmark process: the producer of the floor's messages, the SMTP sink, polling

    @property
    def total(self) -> float:
        return self.workers + self.postgres + self.redis + self.this


class CpuMeter:
    """CPU seconds per part between `start()` and `stop()`. PostgreSQL and Redis are counted whole (every
    backend of the server): other work on the machine at the same time shows up there."""

    def __init__(self, processes: Processes) -> None:
        self.processes = processes

    def _now(self) -> CpuUse:
        workers = self.processes.pids()
        others = [pid for pid, _ in _stats() if pid not in workers]
        postgres = [pid for pid in others if _comm(pid).startswith("postgres")]
        redis_server = [pid for pid in others if _comm(pid).startswith("redis-server")]
        own = resource.getrusage(resource.RUSAGE_SELF)
        return CpuUse(_cpu(workers), _cpu(postgres), _cpu(redis_server), own.ru_utime + own.ru_stime)

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> CpuUse:
        end = self._now()
        return CpuUse(
            end.workers - self._start.workers,
            end.postgres - self._start.postgres,
            end.redis - self._start.redis,
            end.this - self._start.this,
        )


def worker_env(**crm: str) -> dict[str, str]:
    """This process's environment without its CRM_* settings, plus these: what a started worker runs with."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CRM_")}, **crm}


def redis_refusal(url: str, force: bool) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme != "redis":
        return "This benchmark needs a redis:// URL"
    if parsed.hostname not in LOOPBACK:
        return "This benchmark runs on this machine only: give a Redis on 127.0.0.1"
    number = parsed.path.lstrip("/") or "0"
    if number == "15" and not force:
        return "Refusing to flush Redis database 15 (the test suite's); pass --force to do it anyway"
    return None


def refuse_or_none(args: argparse.Namespace) -> int | None:
    """Exit status 2 (with the reason on stderr) unless the database and Redis are scratch ones on this machine."""
    if (refused := common.refuse_or_none(args)) is not None:
        return refused
    reason = None
    if urlparse(args.database_url).hostname not in LOOPBACK:
        reason = "This benchmark runs on this machine only: give a PostgreSQL on 127.0.0.1"
    reason = reason or redis_refusal(args.redis_url, args.force)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    return None


def group_pids(process: subprocess.Popen) -> list[int]:
    """Every live process of the group (session) `process` leads: a server and the workers it started."""
    return [pid for pid, stat in _stats() if stat[2] == process.pid]


def peak_memory(pids: list[int]) -> dict[int, int]:
    """The peak resident set (VmHWM, KiB) of each of these processes so far."""
    found = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                found[pid] = int(line.split()[1])
    return found
