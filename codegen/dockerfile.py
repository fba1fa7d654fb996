"""The Dockerfiles of model and broker images: pure text from templates kept as package data.

Layers, from the most to the least stable, so a new model version rebuilds only
the last one: a build stage makes a venv from the wheelhouse in the build
context (modelwire's third-party dependencies, the model's requirements, then
modelwire), the final stage copies only that venv (no wheels, pip, caches or
build tools left behind), and the bundle comes last. The image runs as a
non-root user, serves on 50051 (EXPOSEd; `MODELWIRE_PORT` moves it), checks its
health over gRPC, and carries OCI labels with the model's name, version, methods
and digest. This module only renders text: it never touches files or Docker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from string import Template

__all__ = ["DockerfileSpec", "render_broker_dockerfile", "render_dockerfile"]

_TEMPLATE = "Dockerfile.template"
_BROKER_TEMPLATE = "Dockerfile.broker.template"


@dataclass(frozen=True)
class DockerfileSpec:
    """What a model image's Dockerfile says.

    Attributes:
        base: the base image, as named to Docker (`python:3.11-slim`).
        base_digest: the base image's id (`sha256:...`), recorded in a label; "" if unknown.
        python: the bundle's Python minor version, e.g. "3.11".
        digest: sha256 of the bundle's manifest: the bundle's identity.
    """

    base: str
    name: str
    version: str
    description: str
    methods: tuple[str, ...]
    service: str
    digest: str
    modelwire_version: str
    python: str
    base_digest: str = ""
    port: int = 50051
    uid: int = 10001


class _StrictTemplate(Template):
    delimiter = "@"


def _label(value: str) -> str:
    return json.dumps(value)  # a double-quoted, escaped Dockerfile string


def _template(name: str) -> _StrictTemplate:
    return _StrictTemplate(resources.files("modelwire.codegen").joinpath(name).read_text())


def render_dockerfile(spec: DockerfileSpec) -> str:
    """The Dockerfile text; every template variable must be provided (KeyError otherwise)."""
    return _template(_TEMPLATE).substitute(
        base=spec.base,
        name=spec.name,
        version=spec.version,
        modelwire_version=spec.modelwire_version,
        port=spec.port,
        uid=spec.uid,
        label_title=_label(spec.name),
        label_version=_label(spec.version),
        label_description=_label(spec.description or f"modelwire model {spec.name}"),
        label_base=_label(spec.base),
        label_base_digest=_label(spec.base_digest),
        label_methods=_label(",".join(spec.methods)),
        label_service=_label(spec.service),
        label_python=_label(spec.python),
        label_digest=_label(f"sha256:{spec.digest}"),
        label_modelwire=_label(spec.modelwire_version),
    )


def render_broker_dockerfile(
    *,
    base: str,
    solution: str,
    modelwire_version: str,
    base_digest: str = "",
    port: int = 50051,
    uid: int = 10001,
) -> str:
    """The Dockerfile of a solution's broker image (modelwire and the blueprint)."""
    return _template(_BROKER_TEMPLATE).substitute(
        base=base,
        name=solution,
        modelwire_version=modelwire_version,
        port=port,
        uid=uid,
        label_title=_label(solution),
        label_base=_label(base),
        label_base_digest=_label(base_digest),
        label_modelwire=_label(modelwire_version),
    )
