"""Dockerfile text against golden files (tests/fixtures/dockerfiles/); no Docker engine needed.

The goldens are what reviewers read: a change to the templates shows up here as a
diff. After an intended change, regenerate them with

    .venv/bin/python -m tests.docker.test_dockerfile_text
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from modelwire.codegen.dockerfile import (
    DockerfileSpec,
    render_broker_dockerfile,
    render_dockerfile,
)

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "dockerfiles"

SPEC = DockerfileSpec(
    base="python:3.11-slim",
    name="iris",
    version="1.0.0",
    description='RandomForest on the "Iris" data set',
    methods=("classify", "explain"),
    service="modelwire.models.iris.v1.IrisService",
    digest="387fc4a3cec665903267bcc06345858663aea03ab91c7fe80183acd7b3578342",
    modelwire_version="0.1.0",
    python="3.11",
    base_digest="sha256:94508fbed4c485c4387fe80669ae23813a8a73dbf795b040ca8ba4eefaf7a460",
)


def rendered() -> dict[str, str]:
    return {
        "model.Dockerfile": render_dockerfile(SPEC),
        "broker.Dockerfile": render_broker_dockerfile(
            base="python:3.11-slim",
            solution="iris-chain",
            modelwire_version="0.1.0",
            base_digest=SPEC.base_digest,
        ),
    }


@pytest.mark.parametrize("name", sorted(rendered()))
def test_dockerfile_is_the_golden_text(name):
    assert rendered()[name] == (GOLDEN / name).read_text()


def test_goldens_have_no_stray_files():
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(rendered())


def test_the_bundle_is_copied_last():
    """Everything before the bundle's COPY depends on the dependencies only, so a new
    model version reuses every layer but the last one (LABEL adds no layer)."""
    lines = [x for x in rendered()["model.Dockerfile"].splitlines() if re.match(r"[A-Z]+ ", x)]
    instructions = [x.split()[0] for x in lines]
    assert instructions[-2:] == ["COPY", "LABEL"]
    assert lines[-2] == "COPY bundle/ /opt/modelwire/bundle/"
    assert "sha256:387fc4a3" not in "\n".join(lines[:-2])


@pytest.mark.parametrize("name", sorted(rendered()))
def test_both_faces_ports_are_exposed(name):
    assert "\nEXPOSE 50051 8080\n" in rendered()[name]


def test_label_values_are_quoted_dockerfile_strings():
    text = rendered()["model.Dockerfile"]
    assert 'org.opencontainers.image.description="RandomForest on the \\"Iris\\" data set"' in text
    assert 'io.modelwire.methods="classify,explain"' in text


def test_a_missing_variable_fails_loudly():
    from modelwire.codegen import dockerfile

    with pytest.raises(KeyError):
        dockerfile._template("Dockerfile.template").substitute(base="x")


if __name__ == "__main__":
    for name, text in rendered().items():
        (GOLDEN / name).write_text(text)
        print(f"wrote {GOLDEN / name}", file=sys.stderr)
