"""CLI fixtures: logging left as each test found it, bundles, a running server (the `cli`
runner itself is tests/conftest.py's)."""

from __future__ import annotations

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
def echo_address(bundles: dict[str, Path]) -> Iterator[str]:
    """An echo model served in this process for the session."""
    running: RunningServer = start(load(bundles["echo"]), RuntimeConfig(port=0))
    yield running.address
    running.stop(0)


def usage(command: str, arguments: str, message: str) -> str:
    """click's usage error output for `modelwire COMMAND`."""
    return (
        f"Usage: modelwire {command} [OPTIONS] {arguments}\n"
        f"Try 'modelwire {command} --help' for help.\n\nError: {message}\n"
    )
