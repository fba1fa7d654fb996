"""CLI fixtures: a CliRunner that leaves logging as it found it, bundles, a running server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelwire.bundle import dump, load
from modelwire.cli import main
from modelwire.config import RuntimeConfig
from modelwire.runtime.server import RunningServer, start
from tests.fixtures.models import echo, slow


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """Commands configure the 'modelwire' logger to write to the runner's (then closed)
    stderr; put it back so later tests log normally."""
    logger = logging.getLogger("modelwire")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def cli() -> Callable[..., Result]:
    """cli(*args, env=None, input=None) -> the Result of `modelwire ARGS` (click's CliRunner);
    `input` is its stdin."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), env=env, input=input, prog_name="modelwire")

    return invoke


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
