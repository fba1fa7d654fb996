"""`modelwire run FILE --docker`: the models as containers on a network of the run's own,
images built once per bundle digest, and nothing left behind however the run ends."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from modelwire.bundle import Bundle
from modelwire.containers.images import digest_tag
from modelwire.runtime.client import connect
from tests.broker.helpers import BrokerProcess
from tests.docker.conftest import modelwire
from tests.runtime.serving import json_logs, wait_for
from tests.servers import clean_env, modelwire_popen

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

ROWS = {
    "sepal_length": [5.1, 6.2],
    "sepal_width": [3.5, 2.9],
    "petal_length": [1.4, 4.3],
    "petal_width": [0.2, 1.3],
}
MODELS = {"scaler": "iris-scaler", "classifier": "iris-classifier", "labels": "iris-labels"}


@pytest.fixture
def blueprint(layout: Path, bundles: dict[str, Path]) -> Path:
    return layout / "blueprints" / "iris-chain.yaml"


def of_run(client: Any, run: str) -> tuple[list[Any], list[Any]]:
    """The containers (running or not) and networks labelled with run id `run`."""
    filters = {"label": f"io.modelwire.run={run}"}
    return client.containers.list(all=True, filters=filters), client.networks.list(filters=filters)


def start(blueprint: Path, prefix: str) -> BrokerProcess:
    return BrokerProcess(blueprint, "--docker", "--image-prefix", prefix, timeout=600)


def run_id(broker: BrokerProcess, client: Any) -> str:
    # by this broker's pid: another session's exported broker image carries the same
    # solution label (inherited from the image) but no run of ours
    found = client.containers.list(filters={"label": f"io.modelwire.pid={broker.proc.pid}"})
    runs = {c.labels["io.modelwire.run"] for c in found}
    assert len(runs) == 1, broker.stderr
    run: str = runs.pop()
    return run


def test_run_docker_serves_from_containers_then_removes_them(
    blueprint, bundles, docker_client, test_images
):
    broker = start(blueprint, test_images)
    try:
        run = run_id(broker, docker_client)
        containers, networks = of_run(docker_client, run)
        assert len(networks) == 1
        network = networks[0].name
        assert network == f"modelwire-iris-chain-{run}"
        assert sorted(c.labels["io.modelwire.model"] for c in containers) == sorted(MODELS)
        for c in containers:
            model = c.labels["io.modelwire.model"]
            bundle = Bundle(bundles[MODELS[model]])
            tag = digest_tag(bundle.manifest.name, "1.0.0", bundle.digest(), test_images)
            assert tag in c.image.tags
            assert list(c.attrs["NetworkSettings"]["Networks"]) == [network]
            [binding] = c.ports["50051/tcp"]
            assert binding["HostIp"] == "127.0.0.1"  # nothing reachable from outside
        with connect(broker.address) as solution:
            assert list(solution.classify(ROWS).species) == ["setosa", "versicolor"]
        # the containers' logs reach the broker's, each record naming its model
        wait_for(lambda: "labels: serving" in broker.stderr, 10, "the labels model's log")
        relayed = {
            r["model"] for r in json_logs(broker.stderr) if r["logger"] == "modelwire.broker.models"
        }
        assert relayed == set(MODELS)
        assert broker.signal(signal.SIGTERM) == 0, broker.stderr
        assert of_run(docker_client, run) == ([], [])
    finally:
        broker.close()


def test_unchanged_bundles_are_never_rebuilt_and_a_killed_runs_containers_are_removed(
    blueprint, docker_client, test_images
):
    """A run SIGKILLed cannot remove its containers; the next run on this host does, and
    reuses the images of the first (Ctrl-C then stops it cleanly)."""
    first = start(blueprint, test_images)
    try:
        killed = run_id(first, docker_client)
        assert first.signal(signal.SIGKILL) is None
    finally:
        first.close()
    left, networks = of_run(docker_client, killed)
    assert len(left) == 3 and len(networks) == 1
    second = start(blueprint, test_images)
    try:
        logs = json_logs(second.stderr)
        assert of_run(docker_client, killed) == ([], [])
        removed = [r["message"] for r in logs if "of a run that ended without it" in r["message"]]
        assert len(removed) == 4, second.stderr  # 3 containers and the network
        images = {
            r["model"]: r["message"]
            for r in logs
            if r["message"].startswith("model ") and "image" in r
        }
        assert sorted(images) == sorted(MODELS)
        assert all(m.endswith("(reused)") for m in images.values()), images
        assert not [r for r in logs if r["message"].startswith("image build: Step ")]
        current = run_id(second, docker_client)
        assert second.signal(signal.SIGINT) == 0, second.stderr
        assert of_run(docker_client, current) == ([], [])
    finally:
        second.close()


def test_a_sigterm_while_the_models_start_leaves_nothing_behind(
    blueprint, docker_client, test_images
):
    """SIGTERM as soon as the first container is up (the others are being started or
    waited for): the run unwinds and removes what it made, found by its labels."""
    proc = modelwire_popen(
        "run",
        str(blueprint),
        "--docker",
        "--port",
        "0",
        "--image-prefix",
        test_images,
        "--log-format",
        "json",
        env=clean_env(),
    )
    mine = {"label": f"io.modelwire.pid={proc.pid}"}
    try:
        deadline = time.monotonic() + 300
        # (ignore_removed: the run may remove a container between listing and inspecting)
        while not docker_client.containers.list(all=True, filters=mine, ignore_removed=True):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, stdout) == (128 + signal.SIGTERM, ""), stderr
    messages = [json.loads(line)["message"] for line in stderr.splitlines()]
    assert "SIGTERM received while the models were starting: stopping them" in messages
    assert messages[-1] == "stopped"
    assert docker_client.containers.list(all=True, filters=mine) == []
    assert docker_client.networks.list(filters=mine) == []


def test_a_model_that_exits_before_serving_is_reported_and_nothing_is_left(
    bundles, faulty_image, docker_client, test_images, tmp_path
):
    """The image run reuses for the faulty bundle (its digest tag, labels inherited) is
    replaced by one whose entrypoint fails, as a model missing a library would."""
    bundle = Bundle(bundles["faulty"])
    tag = digest_tag("faulty", "1.0.0", bundle.digest(), test_images)
    (tmp_path / "Dockerfile").write_text(
        f'FROM {faulty_image}\nENTRYPOINT ["sh", "-c", "echo this model needs a GPU >&2; exit 3"]\n'
    )
    docker_client.images.build(path=str(tmp_path), tag=tag, network_mode="none", rm=True)
    blueprint = tmp_path / "bad.yaml"
    blueprint.write_text(
        f"name: bad\nmodels:\n  m: {{bundle: {bundles['faulty']}}}\n"
        "methods:\n  crash:\n    steps:\n      s: {call: m.crash, with: $input}\n"
        "    output: s\n"
    )
    proc = modelwire(
        "run",
        str(blueprint),
        "--docker",
        "--image-prefix",
        test_images,
        "--port",
        "0",
        "--log-format",
        "json",
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-2:] == [
        f"error: model 'm' ({tag}) exited with status 3 before serving:",
        "this model needs a GPU",
    ]
    leftovers = {"label": "io.modelwire.solution=bad"}
    assert docker_client.containers.list(all=True, filters=leftovers) == []
    assert docker_client.networks.list(filters=leftovers) == []
