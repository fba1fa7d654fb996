"""Deployment text for a solution: a docker-compose file, a Swarm stack and Kubernetes
manifests, as pure functions of a `Deployment` (deterministic YAML, key order kept).

Names come from the solution, so two solutions can share a namespace: model `scaler` of
solution `iris-chain` is the service `iris-chain-scaler` on ports 50051 (gRPC) and 8080
(HTTP); the broker is the service `iris-chain`. The broker gets the blueprint with
`address: dns:///NAME:50051` models: it resolves each name to every replica behind it
(a compose service's containers, a Swarm service's tasks, a headless Service's pods)
and balances calls over them. It waits for the models (compose `depends_on` health;
on Swarm and Kubernetes `run` retries up to `--startup-timeout`, as long as a startup
probe gives it) and serves on its two ports, published. On Kubernetes readiness is /readyz
(not ready while draining), liveness /healthz (alive while draining); startup is gRPC health.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from modelwire.codegen.conventions import (
    K8S_MANAGED_BY,
    K8S_NAME,
    K8S_PART_OF,
    MODEL_HTTP_PORT,
    MODEL_PORT,
)

__all__ = [
    "DeployedModel",
    "Deployment",
    "dns_name",
    "model_host",
    "render_compose",
    "render_k8s",
    "render_stack",
]

STACK_METRICS_PORT = 9090  # where the broker of a Swarm stack serves /metrics
STARTUP_SECONDS = 120  # what `modelwire run --startup-timeout` and the startup probes allow


def dns_name(name: str) -> str:
    """A DNS-1123 label: `face_boxes` -> `face-boxes` (at most 63 characters)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63].rstrip("-") or "model"


def model_host(solution: str, key: str) -> str:
    """The service name of a solution's model: `iris-chain-scaler`."""
    return dns_name(f"{solution}-{key}")


@dataclass(frozen=True)
class DeployedModel:
    key: str  # the model's name in the blueprint
    host: str  # its service name (`model_host`)
    image: str
    context: str  # build context directory, relative to the export directory
    cpu: str = "250m"
    memory: str = "512Mi"
    replicas: int = 1  # copies of it (`replicas: N`)
    # (min, max, cpu percent): a HorizontalPodAutoscaler on Kubernetes (`autoscale:`)
    autoscale: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Deployment:
    solution: str
    models: tuple[DeployedModel, ...]
    broker_image: str
    broker_context: str
    blueprint: str  # the blueprint text the broker runs (address: models)
    port: int = MODEL_PORT  # where the solution's gRPC is published
    http_port: int = MODEL_HTTP_PORT  # where its HTTP face is published
    header: str = ""

    @property
    def broker_host(self) -> str:
        return dns_name(self.solution)


class _Dumper(yaml.SafeDumper):
    """No anchors and aliases for shared dicts; multi-line text as a literal block."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text)


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def _broker_args() -> list[str]:
    return [
        "run",
        "/etc/modelwire/blueprint.yaml",
        "--host",
        "0.0.0.0",
        "--port",
        str(MODEL_PORT),
        "--http-port",
        str(MODEL_HTTP_PORT),
        "--startup-timeout",
        str(STARTUP_SECONDS),
    ]


def _health(port: int) -> dict[str, Any]:
    return {
        "test": ["CMD", "modelwire", "health", f"127.0.0.1:{port}", "--timeout", "2"],
        "interval": "5s",
        "timeout": "3s",
        "retries": 5,
        "start_period": "10s",
    }


def render_stack(d: Deployment) -> str:
    """A Swarm stack file (compose format 3.8) that `docker stack deploy` takes as is.

    Each model is a service of its replicas with `endpoint_mode: dnsrr`: its name
    resolves to the address of every task, which the broker balances calls over (a
    virtual IP would balance connections). Swarm restarts what ends and replaces what
    fails its health check; the images are expected on the nodes (`modelwire build`;
    `docker stack deploy --resolve-image never` on a single node).
    """
    network = d.broker_host
    services: dict[str, Any] = {}
    for m in d.models:
        services[m.host] = {
            "image": m.image,
            "init": True,
            "networks": [network],
            "healthcheck": _health(MODEL_PORT),
            "stop_grace_period": "15s",
            "deploy": {
                "replicas": m.replicas,
                "endpoint_mode": "dnsrr",
                "restart_policy": {"condition": "any", "delay": "1s"},
                "update_config": {"parallelism": 1, "order": "start-first"},
                "resources": {
                    "reservations": {"cpus": _cpus(m.cpu), "memory": _bytes(m.memory)},
                    "limits": {"memory": _bytes(m.memory)},
                },
            },
        }
    services[d.broker_host] = {
        "image": d.broker_image,
        # its metrics (calls per replica among them) for a scraper on the stack's network
        "command": [*_broker_args(), "--metrics-port", str(STACK_METRICS_PORT)],
        "init": True,
        # published on the node itself: dnsrr services cannot use the routing mesh,
        # and the broker is one task
        "ports": [
            {"target": MODEL_PORT, "published": d.port, "protocol": "tcp", "mode": "host"},
            {
                "target": MODEL_HTTP_PORT,
                "published": d.http_port,
                "protocol": "tcp",
                "mode": "host",
            },
        ],
        "networks": [network],
        "healthcheck": _health(MODEL_PORT),
        "stop_grace_period": "15s",
        "deploy": {"replicas": 1, "restart_policy": {"condition": "any", "delay": "1s"}},
    }
    doc = {"version": "3.8", "services": services, "networks": {network: {"driver": "overlay"}}}
    head = f"# {d.header}\n" if d.header else ""
    return head + _dump(doc)


def _cpus(k8s: str) -> str:
    """`250m` -> `0.25` (a compose `cpus`)."""
    return f"{int(k8s[:-1]) / 1000:g}" if k8s.endswith("m") else k8s


def _bytes(k8s: str) -> str:
    """`512Mi` -> `512M` (compose's units are binary)."""
    return k8s[:-1] if k8s.endswith("i") else k8s


def render_compose(d: Deployment) -> str:
    """A docker-compose file (format 2.4, run as is by docker-compose 1.29 and compose v2)."""
    network = d.broker_host
    services: dict[str, Any] = {}
    for m in d.models:
        services[m.host] = {
            "image": m.image,
            # the context holds every wheel: the build needs no network
            "build": {"context": m.context, "network": "none"},
            "init": True,  # SIGTERM stops a model even before it handles signals itself
            "networks": [network],
            "healthcheck": _health(MODEL_PORT),
            "stop_grace_period": "15s",
            "restart": "unless-stopped",
        }
        if m.replicas > 1:
            # the service's name resolves to every container of it on the network
            services[m.host]["scale"] = m.replicas
    services[d.broker_host] = {
        "image": d.broker_image,
        "build": {"context": d.broker_context, "network": "none"},
        "command": _broker_args(),
        "init": True,
        "ports": [f"{d.port}:{MODEL_PORT}", f"{d.http_port}:{MODEL_HTTP_PORT}"],
        "networks": [network],
        "depends_on": {m.host: {"condition": "service_healthy"} for m in d.models},
        "healthcheck": _health(MODEL_PORT),
        "stop_grace_period": "15s",
        "restart": "unless-stopped",
    }
    doc = {"version": "2.4", "services": services, "networks": {network: {}}}
    head = f"# {d.header}\n" if d.header else ""
    return head + _dump(doc)


def _probe(period: int, failures: int, path: str = "") -> dict[str, Any]:
    """A gRPC probe (grpc.health.v1 Check on the container's port), or with `path` an HTTP
    GET of the HTTP face's `path` (/readyz, /healthz)."""
    how: dict[str, Any] = (
        {"httpGet": {"path": path, "port": "http"}} if path else {"grpc": {"port": MODEL_PORT}}
    )
    return {**how, "periodSeconds": period, "timeoutSeconds": 3, "failureThreshold": failures}


def _labels(name: str, solution: str) -> dict[str, str]:
    return {K8S_NAME: name, K8S_PART_OF: dns_name(solution), K8S_MANAGED_BY: "modelwire"}


def _deployment(
    name: str,
    image: str,
    solution: str,
    cpu: str,
    memory: str,
    extra: dict[str, Any] | None = None,
    replicas: int = 1,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "grpc", "containerPort": MODEL_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": MODEL_HTTP_PORT, "protocol": "TCP"},
        ],
        # loading a model (or, for the broker, reaching its models) may take up to
        # STARTUP_SECONDS; liveness only counts after the startup probe succeeded
        "startupProbe": _probe(2, STARTUP_SECONDS // 2),
        "readinessProbe": _probe(5, 3, "/readyz"),
        "livenessProbe": _probe(10, 3, "/healthz"),
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if extra:
        container.update(extra.get("container", {}))
    spec: dict[str, Any] = {"containers": [container]}
    if extra and "volumes" in extra:
        spec["volumes"] = extra["volumes"]
    labels = _labels(name, solution)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {K8S_NAME: name}},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def _service(
    name: str, solution: str, port: int, http_port: int, *, headless: bool = False
) -> dict[str, Any]:
    # a model's Service is headless: its name resolves to every ready pod, and the
    # broker balances calls over them (a ClusterIP balances connections, and the broker
    # holds one per address)
    spec: dict[str, Any] = {"clusterIP": "None"} if headless else {}

    def published(kind: str, number: int) -> dict[str, Any]:
        return {
            "name": kind,
            "port": number,
            "targetPort": kind,
            "protocol": "TCP",
            "appProtocol": kind,
        }

    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": _labels(name, solution)},
        "spec": {
            **spec,
            "selector": {K8S_NAME: name},
            "ports": [published("grpc", port), published("http", http_port)],
        },
    }


def _disruption_budget(name: str, solution: str) -> dict[str, Any]:
    """At most one pod of a model away at a time for a voluntary disruption (a drain)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": _labels(name, solution)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {K8S_NAME: name}}},
    }


def _autoscaler(name: str, solution: str, bounds: tuple[int, int, int]) -> dict[str, Any]:
    low, high, cpu = bounds
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": _labels(name, solution)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu},
                    },
                }
            ],
        },
    }


def render_k8s(d: Deployment) -> dict[str, str]:
    """Manifests by file name: per model a Deployment of its replicas, a headless Service,
    a PodDisruptionBudget and, when it says `autoscale`, a HorizontalPodAutoscaler; for
    the broker a Deployment and a Service, and the blueprint in a ConfigMap mounted
    into it."""
    files: dict[str, str] = {}
    head = f"# {d.header}\n" if d.header else ""
    for m in d.models:
        replicas = m.replicas
        if m.autoscale is not None:  # the autoscaler's bounds hold from the start
            replicas = min(max(replicas, m.autoscale[0]), m.autoscale[1])
        docs = [
            _deployment(m.host, m.image, d.solution, m.cpu, m.memory, replicas=replicas),
            _service(m.host, d.solution, MODEL_PORT, MODEL_HTTP_PORT, headless=True),
            _disruption_budget(m.host, d.solution),
        ]
        if m.autoscale is not None:
            docs.append(_autoscaler(m.host, d.solution, m.autoscale))
        files[f"{m.host}.yaml"] = head + "---\n".join(_dump(x) for x in docs)
    broker = d.broker_host
    config_name = f"{broker}-blueprint"[:63]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_name, "labels": _labels(config_name, d.solution)},
        "data": {"blueprint.yaml": d.blueprint},
    }
    deployment = _deployment(
        broker,
        d.broker_image,
        d.solution,
        "250m",
        "256Mi",
        {
            "container": {
                "args": _broker_args(),
                "volumeMounts": [
                    {"name": "blueprint", "mountPath": "/etc/modelwire", "readOnly": True}
                ],
            },
            "volumes": [{"name": "blueprint", "configMap": {"name": config_name}}],
        },
    )
    files[f"{broker}.yaml"] = head + "---\n".join(
        _dump(x) for x in (configmap, deployment, _service(broker, d.solution, d.port, d.http_port))
    )
    return files
