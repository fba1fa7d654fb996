"""The Dockerfiles of model and broker images: pure text from templates kept as package data.

Layers, from the most to the least stable, so a new model version rebuilds only
the last one: a build stage makes a venv from the wheelhouse in the build
context (modelwire's third-party dependencies, the model's requirements, then
modelwire), the final stage copies only that venv (no wheels, pip, caches or
build tools left behind), and the bundle comes last. The image runs as a
non-root user, serves gRPC on 50051 and HTTP on 8080 (both EXPOSEd;
`MODELWIRE_PORT` and `MODELWIRE_HTTP_PORT` move them), checks its health over gRPC,
and carries OCI labels with the model's name, version, methods and digest (ports and
label keys: `modelwire.codegen.conventions`). This module only renders text: it never
touches files or Docker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from string import Template

from modelwire.codegen.conventions import (
    LABEL_DIGEST,
    LABEL_METHODS,
    LABEL_MODEL,
    LABEL_PYTHON,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    LABEL_SOLUTION,
    LABEL_VERSION,
    MODEL_HTTP_PORT,
    MODEL_PORT,
    OCI_BASE_DIGEST,
    OCI_BASE_NAME,
    OCI_DESCRIPTION,
    OCI_TITLE,
    OCI_VERSION,
)

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
    port: int = MODEL_PORT
    http_port: int = MODEL_HTTP_PORT
    uid: int = 10001


class _StrictTemplate(Template):
    delimiter = "@"


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    """One LABEL instruction, a key=value per line; values double-quoted and escaped."""
    return "LABEL " + " \\\n      ".join(f"{key}={json.dumps(value)}" for key, value in pairs)


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
        http_port=spec.http_port,
        uid=spec.uid,
        labels=_labels(
            [
                (OCI_TITLE, spec.name),
                (OCI_VERSION, spec.version),
                (OCI_DESCRIPTION, spec.description or f"modelwire model {spec.name}"),
                (OCI_BASE_NAME, spec.base),
                (OCI_BASE_DIGEST, spec.base_digest),
                (LABEL_MODEL, spec.name),
                (LABEL_VERSION, spec.version),
                (LABEL_METHODS, ",".join(spec.methods)),
                (LABEL_SERVICE, spec.service),
                (LABEL_PYTHON, spec.python),
                (LABEL_DIGEST, f"sha256:{spec.digest}"),
                (LABEL_RUNTIME, spec.modelwire_version),
            ]
        ),
    )


def render_broker_dockerfile(
    *,
    base: str,
    solution: str,
    modelwire_version: str,
    base_digest: str = "",
    port: int = MODEL_PORT,
    http_port: int = MODEL_HTTP_PORT,
    uid: int = 10001,
) -> str:
    """The Dockerfile of a solution's broker image (modelwire and the blueprint)."""
    return _template(_BROKER_TEMPLATE).substitute(
        base=base,
        name=solution,
        modelwire_version=modelwire_version,
        port=port,
        http_port=http_port,
        uid=uid,
        labels=_labels(
            [
                (OCI_TITLE, solution),
                (OCI_BASE_NAME, base),
                (OCI_BASE_DIGEST, base_digest),
                (LABEL_SOLUTION, solution),
                (LABEL_RUNTIME, modelwire_version),
            ]
        ),
    )
