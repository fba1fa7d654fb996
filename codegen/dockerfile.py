"""The Dockerfile of a model image: pure text from a template kept as package data.

Layers, from the most to the least stable, so a new model version rebuilds only
the last one: a build stage makes a venv from the wheelhouse (modelwire's
runtime wheels, then the model's), the final stage copies only that venv (no
wheels, caches or build tools left behind), and the bundle comes last. The
image runs as a non-root user, EXPOSEs 50051, checks its health over gRPC, and
carries OCI labels with the model's name, version, methods and digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from string import Template

__all__ = ["DockerfileSpec", "render_broker_dockerfile", "render_dockerfile"]

_TEMPLATE = "Dockerfile.template"


@dataclass(frozen=True)
class DockerfileSpec:
    """What a model image's Dockerfile says."""

    base: str
    name: str
    version: str
    description: str
    methods: tuple[str, ...]
    service: str
    digest: str  # sha256 of the bundle's manifest: the bundle's identity
    modelwire_version: str
    port: int = 50051
    uid: int = 10001


class _StrictTemplate(Template):
    delimiter = "@"


def _label(value: str) -> str:
    return json.dumps(value)  # a double-quoted, escaped Dockerfile string


def render_dockerfile(spec: DockerfileSpec) -> str:
    """The Dockerfile text; every template variable must be provided (KeyError otherwise)."""
    template = resources.files("modelwire.codegen").joinpath(_TEMPLATE).read_text()
    return _StrictTemplate(template).substitute(
        base=spec.base,
        name=spec.name,
        version=spec.version,
        modelwire_version=spec.modelwire_version,
        port=spec.port,
        uid=spec.uid,
        label_title=_label(spec.name),
        label_version=_label(spec.version),
        label_description=_label(spec.description or f"modelwire model {spec.name}"),
        label_methods=_label(",".join(spec.methods)),
        label_service=_label(spec.service),
        label_digest=_label(f"sha256:{spec.digest}"),
        label_modelwire=_label(spec.modelwire_version),
    )


def render_broker_dockerfile(
    *, base: str, solution: str, modelwire_version: str, port: int = 50051, uid: int = 10001
) -> str:
    """The Dockerfile of a solution's broker image (modelwire and the blueprint)."""
    template = resources.files("modelwire.codegen").joinpath("Dockerfile.broker.template")
    return _StrictTemplate(template.read_text()).substitute(
        base=base,
        name=solution,
        modelwire_version=modelwire_version,
        port=port,
        uid=uid,
        label_title=_label(solution),
        label_modelwire=_label(modelwire_version),
    )
