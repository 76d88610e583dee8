"""`crm serve` on a port that is taken stops at once with one clear line, not a log line among start-up noise."""

from __future__ import annotations

import socket

import cli
from tests.core.test_command_line import crm


def _listening() -> socket.socket:
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held


def test_a_port_in_use_is_one_line_and_status_1(tmp_path):
    with _listening() as held:
        port = held.getsockname()[1]
        result = crm("serve", "--port", str(port), env={"CRM_DATABASE_URL": f"sqlite://{tmp_path}/crm.sqlite3"})
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"crm serve: port {port} on 127.0.0.1 is already in use")
    assert "--port" in result.stderr
    assert result.stdout == ""


def test_the_check_itself():
    with _listening() as held:
        port = held.getsockname()[1]
        assert "already in use" in cli._cannot_listen("127.0.0.1", port)
    assert cli._cannot_listen("127.0.0.1", port) is None  # free again
    assert cli._cannot_listen("127.0.0.1", 0) is None  # any free port
    # An address this machine does not have: said as it is.
    assert cli._cannot_listen("203.0.113.1", port).startswith("cannot listen on 203.0.113.1:")
