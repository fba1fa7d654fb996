"""CLI fixtures: logging left as each test found it, bundles, a running server, a terminal
to run a command on (the `cli` runner itself is tests/conftest.py's)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelwire.bundle import dump, load
from modelwire.config import RuntimeConfig
from modelwire.runtime.server import RunningServer, start
from tests.fixtures.models import echo, slow


@pytest.fixture(autouse=True)
def keep_logging(restore_logging: None) -> None:
    """Every test here runs commands in this process: each leaves the 'modelwire' logger as
    it found it (tests/conftest.py's `restore_logging`)."""


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-bundles")
    return {
        "echo": dump(echo.model(), "echo", root / "echo"),
        "slow": dump(slow.model(), "slow", root / "slow"),
    }


@pytest.fixture(scope="session")
def echo_server(bundles: dict[str, Path]) -> Iterator[RunningServer]:
    """An echo model served in this process for the session, over gRPC and HTTP."""
    running: RunningServer = start(load(bundles["echo"]), RuntimeConfig(port=0, http_port=0))
    yield running
    running.stop(0)


@pytest.fixture(scope="session")
def echo_address(echo_server: RunningServer) -> str:
    """The session's echo model's gRPC address."""
    return echo_server.address


@pytest.fixture(scope="session")
def echo_url(echo_server: RunningServer) -> str:
    """The URL of the session's echo model's HTTP face."""
    return f"http://127.0.0.1:{echo_server.http_port}"


def usage(command: str, arguments: str, message: str) -> str:
    """click's usage error output for `modelwire COMMAND`."""
    return (
        f"Usage: modelwire {command} [OPTIONS] {arguments}\n"
        f"Try 'modelwire {command} --help' for help.\n\nError: {message}\n"
    )


def run_on_a_terminal(
    argv: list[str], *, columns: int = 0, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `argv` with stderr on a pseudo-terminal of `columns` x 24 (0: a pty nobody sized);
    (exit status, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    return proc.wait(30), out, seen.decode(errors="replace")
