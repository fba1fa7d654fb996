"""Issue 14, point 5, through a real catalog: every hostile or broken bundle pushed to
`catalog serve --validate docker` ends failed with its reason, a well-behaved one passes,
and all the while other clients search and pull with no error and no call slower than
`BOUND` seconds."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from modelwire.bundle import dump
from modelwire.bundle.report import Failure, report_from_json
from modelwire.catalog.client import CatalogClient
from modelwire.config import CatalogSettings
from tests.catalog.helpers import CatalogProcess
from tests.fixtures.models import hostile

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]

# the slowest search or pull another client may see while the catalog validates: on a
# 2-core machine shared with the image builds the slowest of ~2,700 calls took 0.21 s
BOUND = 2.0
MEMORY = "256m"


@pytest.fixture
def engine() -> Iterator[Any]:
    """A Docker client, and an image prefix of this test's (its images removed after)."""
    import docker

    client = docker.from_env(timeout=300)
    prefix = f"modelwire-test-{os.getpid()}/catalog"
    try:
        yield client, prefix
    finally:
        for image in client.api.images(filters={"reference": f"{prefix}/*"}):
            for tag in image.get("RepoTags") or ():
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, force=True)
        client.close()


def _gateway(client: Any) -> str:
    """The host's address on the default bridge: what a model would connect out to."""
    ipam = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return str(ipam.get("Gateway") or next(ipaddress.ip_network(ipam["Subnet"]).hosts()))


class Traffic:
    """Other clients of the catalog: search and pull in a loop, each call timed."""

    def __init__(self, address: str, token: str, pull: str, folder: Path) -> None:
        self.settings = CatalogSettings(address, token)
        self.pull, self.folder = pull, folder
        self.slowest = 0.0
        self.calls = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _timed(self, call: Callable[[], object]) -> None:
        t0 = time.monotonic()
        try:
            call()
        except Exception as exc:  # every failure is one to report
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.slowest = max(self.slowest, time.monotonic() - t0)
        self.calls += 1

    def _loop(self) -> None:
        with CatalogClient(self.settings) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                dest = self.folder / f"pulled-{n}.zip"
                self._timed(lambda: client.search(all_versions=True))
                self._timed(lambda d=dest: client.pull(self.pull, d))
                dest.unlink(missing_ok=True)
                self._stop.wait(0.05)


def test_hostile_bundles_fail_with_their_reasons_while_the_catalog_serves_everyone(
    tmp_path: Path,
    engine: tuple[Any, str],
    cli: Callable[..., Result],
):
    client, prefix = engine
    gateway = _gateway(client)
    received: list[bytes] = []
    listener = socket.create_server((gateway, 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        listener.settimeout(1800)
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                received.append(conn.recv(100))

    threading.Thread(target=accept, daemon=True).start()
    escape = f"/opt/modelwire/escape-{os.getpid()}"
    cases: dict[str, tuple[Any, dict[str, Any]]] = {
        "good": (hostile.writes_at_load("/tmp/allowed"), {}),  # its own work dir: allowed
        "hangs": (hostile.hangs_at_load(), {}),
        "exits": (hostile.exits_at_load(), {}),
        "hog": (hostile.allocates_at_load(8 << 30), {}),
        "net": (hostile.connects_at_load(gateway, port), {}),
        "writer": (hostile.writes_at_load(escape), {}),
        "unmet": (hostile.exits_at_load(), {"requirements": ["numpy==0.0.1"]}),
        "dice": (hostile.answers_at_random(), {"examples": {"roll": [1.0]}}),
    }
    bundles = {
        name: dump(model, name, tmp_path / name, **options)
        for name, (model, options) in cases.items()
    }
    data = tmp_path / "data"
    token = cli("catalog", "user", "add", "alice", "--data", str(data)).stdout.splitlines()[-1]
    server = CatalogProcess(
        data,
        "--validate",
        "docker",
        "--validate-memory",
        MEMORY,
        "--validate-load-timeout",
        "15",
        "--validate-timeout",
        "120",
        "--image-prefix",
        prefix,
        timeout=120,
    )
    pulls = tmp_path / "pulls"
    pulls.mkdir()
    verdicts = {}
    try:
        with CatalogClient(CatalogSettings(server.address, token)) as catalog:
            for bundle in bundles.values():
                catalog.push(bundle)
            with Traffic(server.address, token, "good:1.0.0", pulls) as traffic:
                for name in bundles:
                    verdicts[name] = catalog.wait_validated(f"{name}:1.0.0", 1800)[1]
        assert server.terminate() == 0
    finally:
        server.kill()
        listener.close()
        shutil.rmtree(pulls, ignore_errors=True)
    logger.info("other clients: %d calls, the slowest %.3f s", traffic.calls, traffic.slowest)
    assert traffic.errors == []
    assert traffic.calls > 20 and traffic.slowest <= BOUND, (traffic.calls, traffic.slowest)

    reports = {name: report_from_json(v.report or {}) for name, v in verdicts.items()}
    assert {n: v.status for n, v in verdicts.items()} == {
        "good": "passed",
        **{n: "failed" for n in cases if n != "good"},
    }, {n: v.reason for n, v in verdicts.items()}
    assert {n: r.failure for n, r in reports.items()} == {
        "good": None,
        "hangs": Failure.LOAD_TIMEOUT,
        "exits": Failure.CRASHED,
        "hog": Failure.MEMORY,
        "net": Failure.CRASHED,
        "writer": Failure.CRASHED,
        "unmet": Failure.REQUIREMENTS,
        "dice": Failure.ANSWER,
    }
    reasons = {n: v.reason for n, v in verdicts.items()}
    assert reasons["hangs"].startswith("the model did not report SERVING within 15 s")
    assert reasons["exits"].startswith("the server exited with status 3 while loading: ")
    assert reasons["hog"] == (
        f"the model used more memory than {MEMORY} and was stopped while loading"
    )
    assert reasons["net"] == (
        "the server exited with status 1 while loading: OSError: [Errno 101] Network is unreachable"
    )
    assert reasons["writer"] == (
        "the server exited with status 1 while loading: OSError: [Errno 30] Read-only file "
        f"system: '{escape}'"
    )
    assert reasons["unmet"] == (
        "its requirements cannot be installed: No matching distribution found for numpy==0.0.1"
    )
    assert reasons["dice"].startswith("recorded example 0 of 'roll' was answered differently")
    assert received == []  # nothing got out
    for name, report in reports.items():
        assert report.environment.mode == "docker", name
        if name != "unmet":  # it never got an image
            assert report.environment.isolation[:2] == ("no network", "read-only root"), name
            assert f"memory {MEMORY}" in report.environment.isolation, name
    # the catalog keeps the newest 3 validation images of its prefix, no more
    kept = client.api.images(filters={"reference": f"{prefix}/*"})
    assert 1 <= len(kept) <= 3
    # and no sandbox is left behind
    left = [c for c in client.api.containers(all=True) if c["Image"].startswith(f"{prefix}/")]
    assert left == []
