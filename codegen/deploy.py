"""Deployment text for a solution: a docker-compose file and Kubernetes manifests.

Pure functions of an `Deployment` record; deterministic YAML (key order kept).
Every model is a service reachable by its DNS name on port 50051; the broker
gets the blueprint with `address:` models pointing at those names, waits for the
models to be healthy (compose `depends_on` conditions; on Kubernetes it retries
until their Services answer), and publishes the solution's port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["DeployedModel", "Deployment", "dns_name", "render_compose", "render_k8s"]

MODEL_PORT = 50051
_LABEL = "app.kubernetes.io"


def dns_name(name: str) -> str:
    """A DNS-1123 label: `face_boxes` -> `face-boxes`."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (label or "model")[:63]


@dataclass(frozen=True)
class DeployedModel:
    key: str  # the model's name in the blueprint
    image: str
    context: str  # build context directory, relative to the export directory
    cpu: str = "250m"
    memory: str = "512Mi"

    @property
    def host(self) -> str:
        return dns_name(self.key)


@dataclass(frozen=True)
class Deployment:
    solution: str
    models: tuple[DeployedModel, ...]
    broker_image: str
    broker_context: str
    blueprint: str  # the blueprint text the broker runs (address: models)
    port: int = 50051
    header: str = ""


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)


def _health(port: int) -> dict[str, Any]:
    return {
        "test": ["CMD", "modelwire", "health", f"127.0.0.1:{port}"],
        "interval": "5s",
        "timeout": "3s",
        "retries": 5,
        "start_period": "10s",
    }


def render_compose(d: Deployment) -> str:
    """A docker-compose file (format 2.4, run as is by docker-compose 1.29 and compose v2)."""
    network = dns_name(d.solution)
    services: dict[str, Any] = {}
    for m in d.models:
        services[m.host] = {
            "image": m.image,
            "build": {"context": m.context},
            "networks": [network],
            "healthcheck": _health(MODEL_PORT),
            "restart": "unless-stopped",
        }
    services["broker"] = {
        "image": d.broker_image,
        "build": {"context": d.broker_context},
        "command": [
            "run",
            "/etc/modelwire/blueprint.yaml",
            "--host",
            "0.0.0.0",
            "--port",
            str(MODEL_PORT),
        ],
        "ports": [f"{d.port}:{MODEL_PORT}"],
        "networks": [network],
        "depends_on": {m.host: {"condition": "service_healthy"} for m in d.models},
        "healthcheck": _health(MODEL_PORT),
        "restart": "unless-stopped",
    }
    doc = {"version": "2.4", "services": services, "networks": {network: {}}}
    head = f"# {d.header}\n" if d.header else ""
    return head + _dump(doc)


def _probe() -> dict[str, Any]:
    return {
        "grpc": {"port": MODEL_PORT},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def _deployment(
    name: str, image: str, solution: str, cpu: str, memory: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    labels = {
        f"{_LABEL}/name": name,
        f"{_LABEL}/part-of": dns_name(solution),
        f"{_LABEL}/managed-by": "modelwire",
    }
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "grpc", "containerPort": MODEL_PORT, "protocol": "TCP"}],
        "readinessProbe": {**_probe(), "initialDelaySeconds": 2},
        "livenessProbe": {**_probe(), "initialDelaySeconds": 10},
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
        },
    }
    if extra:
        container.update(extra.get("container", {}))
    spec: dict[str, Any] = {"containers": [container]}
    if extra and "volumes" in extra:
        spec["volumes"] = extra["volumes"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {f"{_LABEL}/name": name}},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def _service(name: str, solution: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": {f"{_LABEL}/name": name, f"{_LABEL}/part-of": dns_name(solution)},
        },
        "spec": {
            "selector": {f"{_LABEL}/name": name},
            "ports": [
                {
                    "name": "grpc",
                    "port": port,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                }
            ],
        },
    }


def render_k8s(d: Deployment) -> dict[str, str]:
    """Manifests by file name: a Deployment and a Service per model and for the broker,
    and the blueprint in a ConfigMap mounted into the broker."""
    files: dict[str, str] = {}
    head = f"# {d.header}\n" if d.header else ""
    for m in d.models:
        docs = [
            _deployment(m.host, m.image, d.solution, m.cpu, m.memory),
            _service(m.host, d.solution, MODEL_PORT),
        ]
        files[f"{m.host}.yaml"] = head + "---\n".join(_dump(x) for x in docs)
    config_name = f"{dns_name(d.solution)}-blueprint"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_name, "labels": {f"{_LABEL}/part-of": dns_name(d.solution)}},
        "data": {"blueprint.yaml": d.blueprint},
    }
    broker = _deployment(
        "broker",
        d.broker_image,
        d.solution,
        "250m",
        "256Mi",
        {
            "container": {
                "args": [
                    "run",
                    "/etc/modelwire/blueprint.yaml",
                    "--host",
                    "0.0.0.0",
                    "--port",
                    str(MODEL_PORT),
                ],
                "volumeMounts": [
                    {"name": "blueprint", "mountPath": "/etc/modelwire", "readOnly": True}
                ],
            },
            "volumes": [{"name": "blueprint", "configMap": {"name": config_name}}],
        },
    )
    files["broker.yaml"] = head + "---\n".join(
        _dump(x) for x in (configmap, broker, _service("broker", d.solution, d.port))
    )
    return files
