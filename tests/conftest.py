"""Shared fixtures: a clean environment, Hypothesis profiles, real servers on loopback, the
CLI in this process."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from modelwire.cli import main
from tests.servers import TEST_ENV, ServeProcess, serve_in_process
from tests.tls_pki import Pki, make_pki

# the `docker` marker: skip without an engine, but fail a CI run that skipped (STYLE.md §11)
pytest_plugins = ["tests.docker.engine"]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MODELWIRE_* setting from the developer's shell, nor their config file
    (~/.config/modelwire/config.toml: a catalog and a token), leaks into a test; every test
    has `tests.servers.TEST_ENV` (HTTP on a free port)."""
    for key in list(os.environ):
        if key.startswith("MODELWIRE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MODELWIRE_CONFIG", str(tmp_path / "no-modelwire-config.toml"))
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def serve_model(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """serve_model(model, name="m", **config) -> RunningServer, stopped after the test."""
    running: list[object] = []

    def start(model: object, name: str = "m", **config: object) -> object:
        server = serve_in_process(model, tmp_path / f"bundle-{len(running)}", name, **config)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop(0)  # type: ignore[attr-defined]


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """serve_process(bundle, *args) -> a `modelwire serve` subprocess, killed after the test."""
    procs: list[ServeProcess] = []

    def start(bundle: str | Path, *args: str, **kwargs: object) -> ServeProcess:
        proc = ServeProcess(str(bundle), *args, **kwargs)  # type: ignore[arg-type]
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI points the `modelwire` logger at the runner's stderr, closed after the call;
    put the logger back as it was so later tests log normally."""
    logger = logging.getLogger("modelwire")
    state = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = state[0]
    logger.setLevel(state[1])
    logger.propagate = state[2]


@pytest.fixture
def cli() -> Callable[..., Result]:
    """cli(*args, env=None, input=None) -> the Result of `modelwire ARGS` run by click's
    CliRunner in this process; `input` is its stdin."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), env=env, input=input, prog_name="modelwire")

    return invoke


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA with server and client certificates (tests/tls_pki.py)."""
    return make_pki(tmp_path_factory.mktemp("pki"))
