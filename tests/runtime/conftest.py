"""Runtime fixtures: a bundle per fixture model, and servers shared by the whole session.

Servers that a test changes (stops, signals, floods) are started by that test instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelwire.bundle import dump
from tests.fixtures.models import echo, faulty, rich, slow
from tests.runtime.serving import PATHS, Served, serve

MODELS = {"echo": echo.model, "rich": rich.model, "slow": slow.model, "faulty": faulty.model}


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """bundle(name) -> the bundle directory of fixture model `name`, dumped once."""
    root = tmp_path_factory.mktemp("bundles")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = dump(MODELS[name](), name, root / name)
        return made[name]

    return get


@pytest.fixture(scope="session")
def shared_server(bundle: Callable[[str], Path]) -> Iterator[Callable[[str, str, str], Served]]:
    """shared_server(model, where, kind) -> a server kept for the session; do not stop it."""
    running: dict[tuple[str, str, str], Served] = {}

    def get(model: str, where: str, kind: str) -> Served:
        key = (model, where, kind)
        if key not in running:
            running[key] = serve(bundle(model), where, kind)
        return running[key]

    yield get
    for served in running.values():
        served.close()


@pytest.fixture
def own_server(bundle: Callable[[str], Path]) -> Iterator[Callable[..., Served]]:
    """own_server(model, where, kind, *flags, **config) -> a server for this test only."""
    running: list[Served] = []

    def get(model: str, where: str, kind: str, *flags: str, **config: object) -> Served:
        served = serve(bundle(model), where, kind, *flags, **config)
        running.append(served)
        return served

    yield get
    for served in running:
        for key in ("client", "http"):
            client = served.extra.pop(key, None)
            if client is not None:
                client.close()
        if served.process is None:
            served.stop()
        elif served.process.proc.poll() is None:
            try:  # SIGTERM first: a supervisor stops its workers, SIGKILL would orphan them
                served.process.terminate(15)
            except subprocess.TimeoutExpired:
                served.process.kill()
        else:
            served.process.kill()  # closes the pipes


@pytest.fixture(params=PATHS)
def echo_server(request: pytest.FixtureRequest, shared_server: Callable[..., Served]) -> Served:
    return shared_server("echo", *request.param)


@pytest.fixture(params=PATHS)
def faulty_server(request: pytest.FixtureRequest, shared_server: Callable[..., Served]) -> Served:
    return shared_server("faulty", *request.param)


@pytest.fixture(params=PATHS)
def rich_server(request: pytest.FixtureRequest, shared_server: Callable[..., Served]) -> Served:
    return shared_server("rich", *request.param)
