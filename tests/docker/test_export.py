"""`modelwire export`: a docker-compose project that `docker-compose up` runs as is (Debian's
docker-compose 1.29, for real), and Kubernetes manifests that validate strictly against
current Kubernetes versions (kubernetes-validate, offline; no cluster needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelwire import __version__
from modelwire.runtime.client import connect
from tests.docker.conftest import free_port, modelwire
from tests.hosting.client import Client

ROWS = {
    "sepal_length": [5.1, 7.7],
    "sepal_width": [3.5, 3.0],
    "petal_length": [1.4, 6.1],
    "petal_width": [0.2, 2.3],
}
MODELS = ("iris-chain-scaler", "iris-chain-classifier", "iris-chain-labels")


@pytest.fixture
def blueprint(layout: Path, bundles: dict[str, Path]) -> Path:
    return layout / "blueprints" / "iris-chain.yaml"


# ---------------------------------------------------------------- docker-compose


def compose(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def project_containers(client: Any, project: str) -> list[Any]:
    found: list[Any] = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )
    return found


@pytest.mark.docker
@pytest.mark.timeout(1200)
def test_compose_up_runs_the_export_as_is(blueprint, docker_client, test_images, tmp_path):
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/docker-setup.sh installs it)")
    # docker-compose names the project after the directory: one per test run, so two runs
    # on one engine never share containers
    project = tmp_path / f"deploy{os.getpid()}"
    port, http_port = free_port(), free_port()
    exported = modelwire(
        "export",
        str(blueprint),
        "--compose",
        str(project),
        "--port",
        str(port),
        "--http-port",
        str(http_port),
        "--image-prefix",
        test_images,
    )
    assert exported.returncode == 0, exported.stderr
    name = project.name  # docker-compose's default project name: the directory's
    up = compose(project, "up", "-d")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        containers = project_containers(docker_client, name)
        services = sorted(c.labels["com.docker.compose.service"] for c in containers)
        assert services == sorted([*MODELS, "iris-chain"])
        deadline = time.monotonic() + 180
        while True:  # the broker started once every model was healthy; now it is too
            states = {}
            for c in containers:
                c.reload()
                states[c.name] = c.attrs["State"]["Health"]["Status"]
            if set(states.values()) == {"healthy"}:
                break
            assert time.monotonic() < deadline, (states, compose(project, "logs").stdout)
            time.sleep(1)
        with connect(f"127.0.0.1:{port}") as solution:
            assert list(solution.classify(ROWS).species) == ["setosa", "virginica"]
        # the solution's HTTP face is published too
        http = Client(http_port)
        try:
            assert http.get("/readyz").status == 200
            reply = http.post("/model/methods/classify", ROWS)
            assert (reply.status, reply.json()) == (200, {"species": ["setosa", "virginica"]})
        finally:
            http.close()
        images = {c.labels["com.docker.compose.service"]: c.image.tags for c in containers}
        assert images["iris-chain"] == [f"{test_images}/iris-chain-broker:{__version__}"]
        assert images["iris-chain-scaler"] == [f"{test_images}/iris-scaler:1.0.0"]
    finally:
        down = compose(project, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert project_containers(docker_client, name) == []
    assert docker_client.networks.list(names=[f"{name}_iris-chain"]) == []


# ---------------------------------------------------------------- Kubernetes


@pytest.fixture
def manifests(blueprint: Path, tmp_path: Path) -> Path:
    out = tmp_path / "k8s"
    # the default HTTP port, said: the tests' environment has MODELWIRE_HTTP_PORT=0
    proc = modelwire("export", str(blueprint), "--k8s", str(out), "--http-port", "8080")
    assert proc.returncode == 0, proc.stderr
    return out


def validate(files: list[Path], *version: str) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run(
        [str(tool), "--strict", "--quiet", *version, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("version", [["-k", "1.31.0"], []], ids=["1.31", "default"])
def test_k8s_manifests_validate_strictly(manifests, version):
    files = sorted(manifests.glob("*.yaml"))
    assert [f.name for f in files] == sorted(f"{n}.yaml" for n in (*MODELS, "iris-chain"))
    proc = validate(files, *version)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_k8s_validation_is_strict(manifests, tmp_path):
    """The check above can fail: a misspelt probe field is refused."""
    text = (manifests / "iris-chain-scaler.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("periodSeconds", "periodSecond", 1))
    proc = validate([bad], "-k", "1.31.0")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1,
        f"ERROR {bad} did not validate for resource deployment/iris-chain-scaler against "
        "version 1.31: spec.template.spec.containers.0.startupProbe: Additional properties "
        "are not allowed ('periodSecond' was unexpected)\n",
        "",
    )


def docs(path: Path) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(path.read_text())}


def test_k8s_has_a_deployment_and_service_per_model_and_for_the_broker(manifests):
    for name in MODELS:
        found = docs(manifests / f"{name}.yaml")
        assert sorted(found) == [
            f"Deployment/{name}",
            f"PodDisruptionBudget/{name}",
            f"Service/{name}",
        ]
        [container] = found[f"Deployment/{name}"]["spec"]["template"]["spec"]["containers"]
        # model `scaler` of iris-chain is the bundle iris-scaler, image modelwire/iris-scaler
        assert container["image"] == f"modelwire/{name.replace('iris-chain-', 'iris-')}:1.0.0"
        assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [
            ("grpc", 50051),
            ("http", 8080),
        ]
        assert container["startupProbe"]["grpc"] == {"port": 50051}
        # ready: /readyz (503 while draining); alive: /healthz (200 while draining)
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert container["securityContext"]["runAsNonRoot"] is True
        ports = found[f"Service/{name}"]["spec"]["ports"]
        assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [
            ("grpc", 50051, "grpc"),
            ("http", 8080, "http"),
        ]
        # headless: the name resolves to every pod, and the broker balances calls over them
        assert found[f"Service/{name}"]["spec"]["clusterIP"] == "None"
        assert found[f"Deployment/{name}"]["spec"]["replicas"] == 1
        assert found[f"PodDisruptionBudget/{name}"]["spec"] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        }
    broker = docs(manifests / "iris-chain.yaml")
    assert sorted(broker) == [
        "ConfigMap/iris-chain-blueprint",
        "Deployment/iris-chain",
        "Service/iris-chain",
    ]
    pod = broker["Deployment/iris-chain"]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "blueprint", "configMap": {"name": "iris-chain-blueprint"}}]
    [container] = pod["containers"]
    assert container["image"] == f"modelwire/iris-chain-broker:{__version__}"
    assert container["args"][:2] == ["run", "/etc/modelwire/blueprint.yaml"]
    args = container["args"]
    assert (args[args.index("--port") + 1], args[args.index("--http-port") + 1]) == (
        "50051",
        "8080",
    )
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = broker["Service/iris-chain"]["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in service] == [("grpc", 50051), ("http", 8080)]
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"][
        "periodSeconds"
    ] == int(container["args"][container["args"].index("--startup-timeout") + 1])


def test_k8s_broker_reaches_models_by_service_name(manifests):
    """The blueprint in the ConfigMap names the models' Services, on their port, as
    `dns:///` targets the broker resolves to every pod."""
    broker = docs(manifests / "iris-chain.yaml")
    text = broker["ConfigMap/iris-chain-blueprint"]["data"]["blueprint.yaml"]
    models = yaml.safe_load(text)["models"]
    assert models == {
        "scaler": {"address": "dns:///iris-chain-scaler:50051"},
        "classifier": {"address": "dns:///iris-chain-classifier:50051"},
        "labels": {"address": "dns:///iris-chain-labels:50051"},
    }
    for name in MODELS:
        service = docs(manifests / f"{name}.yaml")[f"Service/{name}"]
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}


@pytest.fixture
def scaled(blueprint: Path) -> Path:
    """iris-chain with its classifier at 3 replicas, next to the original."""
    text = (
        blueprint.read_text()
        .replace(
            "classifier: {bundle: ../examples/build/iris-classifier}",
            "classifier: {bundle: ../examples/build/iris-classifier, replicas: 3}",
        )
        .replace(
            "labels:     {bundle: ../examples/build/iris-labels}",
            "labels:     {bundle: ../examples/build/iris-labels, autoscale: {min: 2, max: 5}}",
        )
    )
    assert "replicas: 3" in text and "autoscale" in text
    path = blueprint.with_name(f"scaled-{os.getpid()}.yaml")
    path.write_text(text)
    yield path
    path.unlink()


def test_k8s_runs_a_model_as_its_replicas_behind_a_headless_service(scaled, tmp_path):
    out = tmp_path / "k8s"
    proc = modelwire("export", str(scaled), "--k8s", str(out), "--http-port", "8080")
    assert proc.returncode == 0, proc.stderr
    found = docs(out / "iris-chain-classifier.yaml")
    assert found["Deployment/iris-chain-classifier"]["spec"]["replicas"] == 3
    assert found["Service/iris-chain-classifier"]["spec"]["clusterIP"] == "None"
    assert (
        docs(out / "iris-chain-scaler.yaml")["Deployment/iris-chain-scaler"]["spec"]["replicas"]
        == 1
    )
    assert "HorizontalPodAutoscaler/iris-chain-classifier" not in found
    labels = docs(out / "iris-chain-labels.yaml")
    assert labels["Deployment/iris-chain-labels"]["spec"]["replicas"] == 2  # its minimum
    hpa = labels["HorizontalPodAutoscaler/iris-chain-labels"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris-chain-labels",
    }
    assert hpa["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }
    proc = validate(sorted(out.glob("*.yaml")), "-k", "1.31.0")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_compose_and_swarm_exports_run_a_model_as_its_replicas(scaled, tmp_path):
    proc = modelwire(
        "export",
        str(scaled),
        "--compose",
        str(tmp_path / "c"),
        "--swarm",
        str(tmp_path / "s"),
        "--http-port",
        "8080",
    )
    assert proc.returncode == 0, proc.stderr
    compose_doc = yaml.safe_load((tmp_path / "c" / "docker-compose.yml").read_text())
    assert compose_doc["services"]["iris-chain-classifier"]["scale"] == 3
    assert "scale" not in compose_doc["services"]["iris-chain-scaler"]
    stack = yaml.safe_load((tmp_path / "s" / "docker-stack.yml").read_text())
    assert stack["version"] == "3.8"
    deploy = stack["services"]["iris-chain-classifier"]["deploy"]
    assert (deploy["replicas"], deploy["endpoint_mode"]) == (3, "dnsrr")
    assert deploy["resources"]["reservations"] == {"cpus": "0.25", "memory": "512M"}
    assert stack["services"]["iris-chain-scaler"]["deploy"]["replicas"] == 1
    assert stack["networks"] == {"iris-chain": {"driver": "overlay"}}
    # the solution publishes both faces, gRPC and HTTP, on the node
    published = [(p["target"], p["published"]) for p in stack["services"]["iris-chain"]["ports"]]
    assert published == [(50051, 50051), (8080, 8080)]
