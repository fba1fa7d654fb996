"""`modelwire build`: real images of the iris example, built once per session, then run.

What the image promises: `docker run -p 50051:50051 IMAGE` serves the model, answers
generated stubs, runs as a non-root user, reports healthy, carries the model's labels,
keeps no wheelhouse or build tools, was built with no network, refuses a base of
another Python, and a new model version rebuilds only the bundle's layer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from modelwire import __version__
from modelwire.bundle import Bundle, read_manifest
from modelwire.codegen.dockerfile import render_dockerfile
from modelwire.containers.images import build_context, build_image, spec_for
from modelwire.containers.wheelhouse import runtime_pins
from modelwire.errors import ToolError
from tests.docker.conftest import free_port, modelwire, wait_serving
from tests.hosting.client import Client

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

ROWS = {
    "sepal_length": [5.1, 6.2, 7.7],
    "sepal_width": [3.5, 2.9, 3.0],
    "petal_length": [1.4, 4.3, 6.1],
    "petal_width": [0.2, 1.3, 2.3],
}


def test_build_streams_its_steps_and_reports_the_image(iris_image, docker_client):
    steps = [x for x in iris_image.stderr.splitlines() if x.startswith("  Step ")]
    assert steps[0] == "  Step 1/19 : FROM python:3.11-slim AS venv"
    assert steps[-1].startswith("  Step 19/19 : LABEL org.opencontainers.image.title=")
    assert len(steps) == 19
    image = docker_client.images.get(iris_image.tag)
    assert iris_image.stdout.startswith(f"built {iris_image.tag} ({image.id[7:19]}, ")
    assert iris_image.stdout.endswith(" of 19 steps cached)\n")


def test_the_context_holds_the_dockerfile_the_wheelhouse_and_the_bundle(
    iris_image, bundles, docker_client
):
    ctx = iris_image.context
    base = docker_client.images.get("python:3.11-slim").id
    bundle = Bundle(bundles["iris"])
    assert (ctx / "Dockerfile").read_text() == render_dockerfile(
        spec_for(bundle, "python:3.11-slim", base)
    )
    runtime = ctx / "wheels" / "runtime"
    model = ctx / "wheels" / "model"
    assert (runtime / "requirements.txt").read_text().split() == runtime_pins()
    assert (model / "requirements.txt").read_text().split() == list(bundle.manifest.requirements)
    assert [p.name for p in (ctx / "wheels" / "modelwire").iterdir()] == [
        f"modelwire-{__version__}-py3-none-any.whl"
    ]
    runtime_wheels = {p.name for p in runtime.glob("*.whl")}
    model_wheels = {p.name for p in model.glob("*.whl")}
    assert any(w.startswith("scikit_learn-") for w in model_wheels)
    assert not runtime_wheels & model_wheels  # numpy is sent once
    # binary wheels for the image's Python and platform, not pure-Python fallbacks
    assert any(w.startswith("protobuf-") and "abi3-manylinux" in w for w in runtime_wheels)
    assert sorted(p.name for p in (ctx / "bundle").iterdir()) == sorted(bundle.files())


def test_docker_run_is_all_it_needs_and_it_answers_generated_stubs(iris_image, bundles, tmp_path):
    port, http_port = free_port(), free_port()
    run = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "-p",
            f"127.0.0.1:{port}:50051",
            "-p",
            f"127.0.0.1:{http_port}:8080",
            iris_image.tag,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    container = run.stdout.strip()
    try:
        wait_serving(f"127.0.0.1:{port}", 60)
        stubs = tmp_path / "stubs"
        made = modelwire("stubs", str(bundles["iris"]), "-o", str(stubs), "--module", "iris")
        assert made.returncode == 0, made.stderr
        client = textwrap.dedent(f"""
            import grpc, iris_pb2, iris_pb2_grpc
            with grpc.insecure_channel("127.0.0.1:{port}") as channel:
                stub = iris_pb2_grpc.IrisServiceStub(channel)
                reply = stub.Classify(iris_pb2.ClassifyRequest(**{ROWS!r}), timeout=10)
            print(list(reply.iris_type))
        """)
        proc = subprocess.run(
            [sys.executable, "-c", client], cwd=stubs, capture_output=True, text=True, check=False
        )
        assert (proc.returncode, proc.stdout) == (0, "[0, 1, 2]\n"), proc.stderr
        http = Client(http_port)  # and its HTTP face, on the other EXPOSEd port
        try:
            reply = http.post("/model/methods/classify", ROWS)
        finally:
            http.close()
        assert (reply.status, reply.json()) == (200, {"irisType": ["0", "1", "2"]})
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def test_it_runs_as_a_non_root_user(iris_image, docker_client, run_container):
    assert docker_client.images.get(iris_image.tag).attrs["Config"]["User"] == "10001:10001"
    running = run_container(iris_image.tag)
    assert running.container.exec_run(["id", "-u"]).output == b"10001\n"
    # the serving process itself (PID 1: modelwire serve), not only a shell beside it
    status = running.container.exec_run(["cat", "/proc/1/status"]).output.decode()
    assert "\nUid:\t10001\t10001\t10001\t10001\n" in status
    cmdline = running.container.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
    assert cmdline[1:4] == [
        b"/opt/modelwire/venv/bin/modelwire",
        b"serve",
        b"/opt/modelwire/bundle",
    ]


def test_its_healthcheck_uses_grpc_health_and_reports_healthy(
    iris_image, docker_client, run_container
):
    config = docker_client.images.get(iris_image.tag).attrs["Config"]
    assert config["Healthcheck"]["Test"] == [
        "CMD-SHELL",
        'modelwire health "127.0.0.1:${MODELWIRE_PORT}" --timeout 2',
    ]
    running = run_container(iris_image.tag)
    deadline = time.monotonic() + 60
    while True:
        running.container.reload()
        health = running.container.attrs["State"]["Health"]
        if health["Status"] == "healthy":
            break
        assert health["Status"] == "starting", health
        assert time.monotonic() < deadline, health
        time.sleep(0.5)
    assert health["Log"][-1]["Output"] == "SERVING\n"


def test_its_labels_carry_the_models_metadata(iris_image, bundles, docker_client):
    bundle = Bundle(bundles["iris"])
    base = docker_client.images.get("python:3.11-slim").id
    assert docker_client.images.get(iris_image.tag).labels == {
        "org.opencontainers.image.title": "iris",
        "org.opencontainers.image.version": "1.0.0",
        "org.opencontainers.image.description": (
            "RandomForest on the Iris data set (Acumos Figure 2)"
        ),
        "org.opencontainers.image.base.name": "python:3.11-slim",
        "org.opencontainers.image.base.digest": base,
        "io.modelwire.model": "iris",
        "io.modelwire.version": "1.0.0",
        "io.modelwire.methods": "classify",
        "io.modelwire.service": "modelwire.models.iris.v1.IrisService",
        "io.modelwire.python": "3.11",
        "io.modelwire.digest": f"sha256:{bundle.digest()}",
        "io.modelwire.runtime": __version__,
    }


def test_it_serves_the_bundle_on_port_50051_exposed(iris_image, docker_client):
    config = docker_client.images.get(iris_image.tag).attrs["Config"]
    assert config["ExposedPorts"] == {"50051/tcp": {}, "8080/tcp": {}}  # gRPC, HTTP
    assert config["Entrypoint"] == [
        "modelwire",
        "serve",
        "/opt/modelwire/bundle",
        "--host",
        "0.0.0.0",
    ]
    assert "MODELWIRE_PORT=50051" in config["Env"]
    assert "MODELWIRE_HTTP_PORT=8080" in config["Env"]


def test_it_keeps_no_wheelhouse_pip_or_caches(iris_image, run_container):
    """Nothing of the build stage but the venv: no /wheels, no pip, no caches (the base's
    own files, such as Debian's /usr/share/python-wheels, are the base's)."""
    running = run_container(iris_image.tag)

    def sh(script: str) -> str:
        result = running.container.exec_run(["sh", "-c", script], user="0")
        return str(result.output.decode())

    assert sh("ls -d /wheels /opt/pip /root/.cache /tmp/* 2>/dev/null") == ""
    assert sh("ls /opt") == "modelwire\n"
    found = sh(
        "find /opt \\( -name '*.whl' -o -name '.cache' -o -name pip -o -name 'pip-*' \\) -print"
    )
    assert found == ""
    importable = "import importlib.util as u; print(u.find_spec('pip'), u.find_spec('setuptools'))"
    assert sh(f'python -c "{importable}"') == "None None\n"


def test_its_wheels_fit_the_image(iris_image, run_container):
    running = run_container(iris_image.tag)
    check = (
        "from google.protobuf.internal import api_implementation; import grpc, numpy, sklearn; "
        "print(api_implementation.Type())"
    )
    assert running.container.exec_run(["python", "-c", check]).output == b"upb\n"


def test_the_build_has_no_network(test_images, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        "RUN python3 -c \"import socket; socket.create_connection(('192.0.2.1', 53), 5)\"\n"
    )
    with pytest.raises(ToolError) as failed:
        build_context(tmp_path, f"{test_images}/network-check:1")
    assert "returned a non-zero code: 1" in str(failed.value)
    assert "OSError: [Errno 101] Network is unreachable" in failed.value.stderr_tail


def test_a_base_image_of_another_python_is_refused_before_building(
    iris_image, bundles, docker_client, test_images, tmp_path
):
    """A base whose python3 reports 3.12 (a script standing in for it in a copy of the
    default base); nothing is downloaded or built."""
    (tmp_path / "python3").write_text('#!/bin/sh\necho "3.12 x86_64 glibc 2.36"\n')
    (tmp_path / "python3").chmod(0o755)
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY python3 /usr/local/bin/\n")
    fake = f"{test_images}/python:3.12-fake"
    docker_client.images.build(path=str(tmp_path), tag=fake, network_mode="none", rm=True)
    iris = bundles["iris"]
    proc = modelwire("build", str(iris), "-t", f"{test_images}/iris:wrong-base", "--base", fake)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"building {test_images}/iris:wrong-base for {iris}\n"
        f"error: base='{fake}': has Python 3.12, but bundle {iris} was dumped with Python "
        "3.11 and its pickled code loads only there; choose a base image with Python 3.11 "
        "(--base)\n"
    )
    assert not docker_client.images.list(name=f"{test_images}/iris:wrong-base")


def test_a_new_model_version_rebuilds_only_the_bundle_layer(
    iris_image, bundles, docker_client, test_images
):
    """iris retrained (same requirements), as version 1.1.0: every layer but the bundle's
    is reused (15 of its 19 steps come from the cache)."""
    assert read_manifest(bundles["iris-v2"]).version == "1.1.0"
    rebuilt = build_image(bundles["iris-v2"], f"{test_images}/iris:1.1.0")
    old = docker_client.images.get(iris_image.tag).attrs["RootFS"]["Layers"]
    new = docker_client.images.get(rebuilt.tag).attrs["RootFS"]["Layers"]
    base = docker_client.images.get("python:3.11-slim").attrs["RootFS"]["Layers"]
    assert len(old) == len(new) == len(base) + 2  # the venv, then the bundle
    assert new[:-1] == old[:-1]
    assert new[-1] != old[-1]
    assert (rebuilt.cached_steps, rebuilt.steps) == (15, 19)
    history = docker_client.api.history(rebuilt.image_id)
    bundle_layer = next(h for h in history if "COPY dir:" in h["CreatedBy"])
    assert bundle_layer["Size"] < 200_000


def test_a_blueprint_builds_its_models_and_broker_images(bundles, test_images, tmp_path):
    blueprint = tmp_path / "chain.yaml"
    blueprint.write_text(
        json.dumps(
            {
                "name": "chain",
                "models": {
                    "scaler": {"bundle": str(bundles["iris-scaler"])},
                    "classifier": {"bundle": str(bundles["iris-classifier"])},
                },
                "methods": {
                    "classify": {
                        "steps": {
                            "scaled": {"call": "scaler.scale", "with": "$input"},
                            "predicted": {"call": "classifier.classify", "with": "scaled"},
                        },
                        "output": "predicted",
                    }
                },
            }
        )
    )
    proc = modelwire("build", str(blueprint), "--image-prefix", test_images)
    assert proc.returncode == 0, proc.stderr
    assert [x.split(" (")[0] for x in proc.stdout.splitlines()] == [
        f"built {test_images}/iris-scaler:1.0.0 for scaler",
        f"built {test_images}/iris-classifier:1.0.0 for classifier",
        f"built {test_images}/chain-broker:{__version__} for chain",
    ]


def test_the_cli_refuses_a_tag_for_a_blueprint(tmp_path):
    blueprint = tmp_path / "b.yaml"
    blueprint.write_text("name: b\n")
    proc = modelwire("build", str(blueprint), "-t", "x:1")
    assert proc.returncode == 2
    assert "a blueprint builds one image per model; drop --tag" in proc.stderr
