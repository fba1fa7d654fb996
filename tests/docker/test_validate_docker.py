"""`validate(..., docker=True)`: the bundle's image run as a sandbox (no network, a read-only
root, a non-root user, memory/CPU/time limits), and each hostile or broken bundle failed
with its reason while the limit held; a control run without the limit shows it mattered."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from modelwire.bundle import dump
from modelwire.bundle.report import Failure, Outcome, render_report
from modelwire.containers.validation import validate
from tests.fixtures.models import forest, hostile

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

SETOSA = forest.Flowers([5.1], [3.5], [1.4], [0.2])
ISOLATION = (
    "no network",
    "read-only root",
    "the image's non-root user",
    "memory 2048m",
    "cpus 1",
    "time 600 s",
    "512 processes",
    "no capabilities",
)


@pytest.fixture
def check(test_images: str, docker_client: Any, tmp_path: Path):
    """check(model, name, examples=None, requirements=None, **options) -> the report of
    validating it in docker."""

    def run(
        model: Any,
        name: str,
        examples: dict | None = None,
        requirements: list[str] | None = None,
        **options: Any,
    ):
        path = dump(model, name, tmp_path / name, examples=examples, requirements=requirements)
        return validate(
            path, docker=True, image_prefix=test_images, client=docker_client, **options
        )

    return run


def test_iris_passes_in_its_confined_image(check, test_images):
    report = check(forest.model(), "iris", {"classify": [SETOSA]})
    assert report.passed, render_report(report)
    assert [r.outcome for r in report.examples] == [Outcome.PASSED]
    env = report.environment
    assert (env.mode, env.isolation) == ("docker", ISOLATION)
    assert env.image.startswith(f"{test_images}/iris:1.0.0-")
    assert env.python.startswith("3.11.")
    assert "scikit-learn" in dict(env.packages)


def test_a_model_that_hangs_at_load_fails_at_the_load_timeout(check):
    report = check(hostile.hangs_at_load(), "hangs", load_timeout=5)
    assert report.failure is Failure.LOAD_TIMEOUT, render_report(report)


def test_the_time_limit_stops_the_container(check):
    report = check(hostile.hangs_at_load(), "hangs", timeout=12)
    assert report.failure is Failure.TIMEOUT, render_report(report)
    assert report.reason == (
        "the validation took longer than its time limit of 12 s and was stopped while the "
        "model loaded"
    )


def test_a_model_that_exits_at_load_fails_with_its_status(check):
    report = check(hostile.exits_at_load(), "exits")
    assert report.failure is Failure.CRASHED, render_report(report)
    assert report.reason.startswith("the server exited with status 3 while loading: ")


def test_a_model_past_the_memory_limit_is_killed_and_says_so(check):
    report = check(hostile.allocates_at_load(8 << 30), "hog", memory="256m")
    assert report.failure is Failure.MEMORY, render_report(report)
    assert report.reason == "the model used more memory than 256m and was stopped while loading"


def test_a_model_cannot_connect_out_without_a_network(check, docker_client):
    ipam = docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    # the host's address on the default bridge: the gateway, else the subnet's first address
    gateway = ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))
    received: list[bytes] = []
    with socket.create_server((gateway, 0)) as server:
        port = server.getsockname()[1]

        def accept() -> None:
            server.settimeout(300)
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                received.append(conn.recv(100))

        threading.Thread(target=accept, daemon=True).start()
        model = hostile.connects_at_load(gateway, port)
        report = check(model, "net")
        assert report.failure is Failure.CRASHED, render_report(report)
        assert report.reason == (
            "the server exited with status 1 while loading: OSError: [Errno 101] Network is "
            "unreachable"
        )
        assert received == []
        control = check(model, "net", network=True)  # the same bundle, with a network
        assert control.passed, render_report(control)
    assert received == [b"hello from the model\n"]


def test_a_model_cannot_write_outside_its_work_dir(check):
    target = f"/opt/modelwire/escape-{os.getpid()}"
    report = check(hostile.writes_at_load(target), "writer")
    assert report.failure is Failure.CRASHED, render_report(report)
    assert report.reason == (
        "the server exited with status 1 while loading: OSError: [Errno 30] Read-only file "
        f"system: '{target}'"
    )
    control = check(hostile.writes_at_load("/tmp/allowed"), "writer")  # its work dir
    assert control.passed, render_report(control)


def test_requirements_that_cannot_be_installed_fail_before_a_build(check, docker_client):
    report = check(hostile.exits_at_load(), "unmet", requirements=["numpy==0.0.1"])
    assert report.failure is Failure.REQUIREMENTS, render_report(report)
    assert report.reason == (
        "its requirements cannot be installed: No matching distribution found for numpy==0.0.1"
    )
    assert report.environment.image == ""  # nothing was built


def test_answers_that_differ_fail_in_docker_too(check):
    report = check(hostile.answers_at_random(), "rand", {"roll": [1.0]}, repeat=1)
    assert report.failure is Failure.ANSWER, render_report(report)


def test_sandboxes_of_a_validator_that_died_are_removed(docker_client):
    import subprocess
    import sys

    from modelwire.containers.sandbox import SANDBOX_LABEL, remove_strays

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    labels = {
        SANDBOX_LABEL: "stray",
        "io.modelwire.pid": dead.stdout.strip(),
        "io.modelwire.host": socket.gethostname(),
    }
    mine = {**labels, "io.modelwire.pid": str(os.getpid()), SANDBOX_LABEL: "mine"}
    stray = docker_client.containers.create("python:3.11-slim", ["true"], labels=labels)
    alive = docker_client.containers.create("python:3.11-slim", ["true"], labels=mine)
    try:
        assert remove_strays(docker_client) == 1
        names = {c.id for c in docker_client.containers.list(all=True)}
        assert stray.id not in names
        assert alive.id in names
    finally:
        for c in (stray, alive):
            with contextlib.suppress(Exception):
                c.remove(force=True)
