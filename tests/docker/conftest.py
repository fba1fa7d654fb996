"""Fixtures of the container tests: bundles, images under a test-only prefix, containers.

Images are built once per session and tagged `modelwire-test/...`; every image
under that prefix (and any container of one) is removed at the end of the
session, and at its start in case an earlier session was killed. The builder's
layer cache and the host's wheelhouse cache (~/.cache/modelwire/wheels) are kept,
so a second session builds in seconds. Two sessions must not share an engine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelwire.bundle import dump
from modelwire.errors import ServiceError
from modelwire.hosting import remote
from tests.fixtures.models import faulty
from tests.servers import clean_env

REPO = Path(__file__).resolve().parents[2]
# one prefix per test session, so two sessions on one engine never remove each other's
# images; a session removes its own at the end, and what dead sessions left at its start
PREFIX = f"modelwire-test-{os.getpid()}"
IRIS_CHAIN = ("iris-scaler", "iris-classifier", "iris-labels")


def modelwire(
    *args: str, timeout: float = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`modelwire ARGS` as a user runs it; stdout and stderr captured."""
    return subprocess.run(
        [sys.executable, "-m", "modelwire", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=clean_env(),
        cwd=cwd,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_serving(
    address: str,
    timeout: float,
    what: Callable[[], str] = lambda: "",
    alive: Callable[[], str | None] | None = None,
) -> None:
    """`modelwire.hosting.remote.wait_serving` failing a test with `what()` (a log) attached."""
    try:
        remote.wait_serving(address, timeout, alive=alive, interval=0.1)
    except ServiceError as exc:
        raise AssertionError(f"{exc}\n{what()}") from None


def _logs(container: Any) -> str:
    return str(container.logs().decode(errors="replace"))


def container_gone(container: Any) -> Callable[[], str | None]:
    """An `alive` check for a container: why it stopped, or None while it runs."""

    def gone() -> str | None:
        container.reload()
        if container.status not in ("exited", "dead"):
            return None
        return f"container {container.name} exited with {container.attrs['State']['ExitCode']}"

    return gone


def _ours_or_orphaned(name: str) -> bool:
    """An image name of this session's, or of a test session that is no longer running."""
    repo = name.split("/", 1)[0]
    if repo == PREFIX or repo == "modelwire-test":  # (the prefix of older sessions)
        return "/" in name
    pid = repo.removeprefix("modelwire-test-")
    if pid == repo or not pid.isdigit() or "/" not in name:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_test_images(client: Any) -> None:
    """Every container of a test image, then every image tagged under PREFIX (and under
    the prefix of a test session that has died)."""
    import docker.errors

    # the low-level listings: the high-level ones inspect each item after listing, and
    # another session on the engine may remove one in between (ImageNotFound)
    for c in client.api.containers(all=True):
        if _ours_or_orphaned(str(c.get("Image", ""))):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(c["Id"], force=True)
    for image in client.api.images():
        for tag in image.get("RepoTags") or ():
            if _ours_or_orphaned(tag):
                with contextlib.suppress(docker.errors.NotFound):
                    client.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_images(docker_client: Any) -> Iterator[str]:
    """The image prefix of the session; its images are removed at the end."""
    remove_test_images(docker_client)
    yield PREFIX
    remove_test_images(docker_client)


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root like the repository's: blueprints/iris-chain.yaml (a copy of the checked-in
    file) and examples/build/, where the `bundles` fixture puts the bundles it names."""
    root = tmp_path_factory.mktemp("repo")
    (root / "blueprints").mkdir()
    shutil.copyfile(
        REPO / "blueprints" / "iris-chain.yaml", root / "blueprints" / "iris-chain.yaml"
    )
    return root


@pytest.fixture(scope="session")
def bundles(layout: Path) -> dict[str, Path]:
    """The iris example and the iris-chain models (examples/build.py), iris again with a
    retrained model (same requirements, a new version), and the faulty fixture model."""
    out = layout / "examples" / "build"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "build.py"),
            "--out",
            str(out),
            "iris",
            *IRIS_CHAIN,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = (REPO / "examples" / "iris" / "model.py").read_text()
    retrained = script.replace("random_state=0", "random_state=1").replace(
        "description=", 'version="1.1.0",\n        description='
    )
    assert retrained.count("random_state=1") == 1 and retrained.count('"1.1.0"') == 1
    (layout / "iris_v2.py").write_text(retrained)
    proc = subprocess.run(
        [sys.executable, str(layout / "iris_v2.py"), str(out / "iris-v2")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = {name: out / name for name in ("iris", "iris-v2", *IRIS_CHAIN)}
    found["faulty"] = dump(faulty.model(), "faulty", out / "faulty")
    return found


@dataclass
class Built:
    tag: str
    stdout: str
    stderr: str
    context: Path


@pytest.fixture(scope="session")
def iris_image(
    test_images: str, bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """`modelwire build` of the iris bundle, run as a user runs it (its context kept)."""
    tag = f"{test_images}/iris:1.0.0"
    context = tmp_path_factory.mktemp("iris-context")
    proc = modelwire("build", str(bundles["iris"]), "-t", tag, "--context", str(context))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Built(tag, proc.stdout, proc.stderr, context)


@pytest.fixture(scope="session")
def faulty_image(test_images: str, bundles: dict[str, Path]) -> str:
    from modelwire.containers.images import build_image

    return build_image(bundles["faulty"], f"{test_images}/faulty:1.0.0").tag


@dataclass
class Running:
    container: Any
    address: str


@pytest.fixture
def run_container(docker_client: Any) -> Iterator[Callable[..., Running]]:
    """run_container(image, **kwargs) -> a started container serving on a loopback port."""
    started: list[Any] = []

    def start(image: str, *, wait: bool = True, **kwargs: Any) -> Running:
        container = docker_client.containers.run(
            image, detach=True, ports={"50051/tcp": ("127.0.0.1", None)}, **kwargs
        )
        started.append(container)
        container.reload()
        address = f"127.0.0.1:{container.ports['50051/tcp'][0]['HostPort']}"
        if wait:
            wait_serving(
                address, 60, functools.partial(_logs, container), container_gone(container)
            )
        return Running(container, address)

    yield start
    for c in started:
        c.remove(force=True)
