"""Broker fixtures: the fixture models as bundles, logging left as each test found it (for
the `cli` runner of tests/conftest.py), servers stopped after a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelwire.bundle import dump, load
from modelwire.config import RuntimeConfig
from modelwire.runtime.server import RunningServer, start
from tests.broker.helpers import (
    BrokerProcess,
    HandlerServer,
    InProcessSolution,
    RawClient,
    write_blueprint,
)
from tests.fixtures.models import advisor, detector, layout, sleeper, widths

MODELS = {
    "detector": detector.model,
    "advisor": advisor.model,
    "layout": layout.model,
    "sleeper": sleeper.model,
    "widths": widths.model,
}


@pytest.fixture(scope="session")
def bundles_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with `_bundles/<model>` for every fixture model; blueprints copied next to
    `_bundles` reach them as `../_bundles/<model>`."""
    root = tmp_path_factory.mktemp("blueprints")
    for name, make in MODELS.items():
        dump(make(), name, root / "_bundles" / name)
    return root


@pytest.fixture(scope="session")
def bundle(bundles_root: Path) -> Callable[[str], Path]:
    """bundle(name) -> the bundle directory of fixture model `name`."""
    return lambda name: bundles_root / "_bundles" / name


@pytest.fixture(autouse=True)
def keep_logging(restore_logging: None) -> None:
    """Every test here runs commands in this process: each leaves the 'modelwire' logger as
    it found it (tests/conftest.py's `restore_logging`)."""


@pytest.fixture(scope="session")
def model_server(bundle: Callable[[str], Path]) -> Iterator[Callable[[str], RunningServer]]:
    """model_server(name) -> fixture model `name` served in this process for the session."""
    running: dict[str, RunningServer] = {}

    def get(name: str) -> RunningServer:
        if name not in running:
            running[name] = start(load(bundle(name)), RuntimeConfig(port=0, http_port=0))
        return running[name]

    yield get
    for server in running.values():
        server.stop(0)


@pytest.fixture
def servers() -> Iterator[Callable[..., Any]]:
    """servers(thing) -> thing; every HandlerServer, InProcessSolution, BrokerProcess,
    RawClient or RunningServer given is stopped (closed) after the test, last first."""
    things: list[Any] = []

    def keep(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield keep
    for thing in reversed(things):
        if isinstance(thing, HandlerServer | InProcessSolution):
            thing.stop()
        elif isinstance(thing, BrokerProcess | RawClient):
            thing.close()
        else:
            thing.stop(0)


@pytest.fixture
def solve(tmp_path: Path, servers: Callable[..., Any]) -> Callable[..., Any]:
    """solve(blueprint text, metrics=False, **addresses) -> (solution, client), stopped after
    the test; each `@name` in the text is replaced by `addresses[name]`."""

    def start(
        text: str, *, metrics: bool = False, **addresses: str
    ) -> tuple[InProcessSolution, RawClient]:
        path = write_blueprint(tmp_path / "blueprint.yaml", text, **addresses)
        solution = servers(InProcessSolution(path, metrics_port=0 if metrics else None))
        return solution, servers(RawClient(solution))

    return start
