"""Every generated proto passes `buf lint` with the repository's buf.yaml (STANDARD rules)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import proto_file_name
from modelwire.codegen.proto import render_proto
from tests.codegen.samples import SAMPLES, sample
from tests.codegen.toolchain import buf_executable, buf_lint
from tests.strategies import annotations

BUF = buf_executable()
pytestmark = pytest.mark.skipif(BUF is None, reason="buf is not installed (pip install buf-bin)")


@pytest.fixture(scope="module")
def sample_findings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One buf run over every sample, each proto at the path its package asks for."""
    assert BUF is not None
    protos = {}
    for name in SAMPLES:
        schema, _ = sample(name, "3.1.4")
        protos[proto_file_name(schema.package)] = render_proto(schema, version="3.1.4")
    return buf_lint(BUF, protos, tmp_path_factory.mktemp("buf"))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_generated_proto_passes_buf_lint(name: str, sample_findings: dict[str, list[str]]):
    schema, _ = sample(name, "3.1.4")
    assert sample_findings[proto_file_name(schema.package)] == []


def test_all_samples_were_linted(sample_findings: dict[str, list[str]]):
    """No finding belongs to a file we did not write (the buf.yaml module path is right)."""
    assert sorted(sample_findings) == sorted(
        proto_file_name(sample(name, "3.1.4")[0].package) for name in SAMPLES
    )


@pytest.fixture(scope="module")
def buf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace for every example: each writes the same file, buf's cache stays warm."""
    return tmp_path_factory.mktemp("buf-random")


@given(types=st.lists(annotations(), min_size=1, max_size=5))
def test_generated_protos_of_random_models_pass_buf_lint(types: list[Any], buf_root: Path):
    """Nested lists, maps, enums, Tensors, optionals and records, drawn at random."""
    assert BUF is not None
    methods = {}
    for i, annotation in enumerate(types):

        def method(x):  # type: ignore[no-untyped-def]
            return x

        method.__annotations__ = {"x": annotation, "return": annotation}
        methods[f"method_{i}"] = method
    schema, _ = Model(**methods).named("random-model", "2.0.0")
    rel = proto_file_name(schema.package)
    assert buf_lint(BUF, {rel: render_proto(schema)}, buf_root) == {rel: []}


def lint_one(model: Model, name: str, version: str, root: Path) -> list[str]:
    assert BUF is not None
    schema, _ = model.named(name, version)
    rel = proto_file_name(schema.package)
    return buf_lint(BUF, {rel: render_proto(schema)}, root)[rel]


def test_buf_lint_reports_a_misplaced_proto(tmp_path: Path):
    """The harness can fail: a proto outside its package directory is reported."""
    assert BUF is not None
    schema, _ = sample("iris")
    findings = buf_lint(BUF, {"elsewhere/model.proto": render_proto(schema)}, tmp_path)
    assert findings["elsewhere/model.proto"] == [
        'proto/elsewhere/model.proto:4:1:Files with package "modelwire.models.sample_iris.v1" '
        'must be within a directory "modelwire/models/sample_iris/v1" relative to root but '
        'were in directory "elsewhere".'
    ]


CamelCase = typing.NamedTuple("CamelCase", [("sepalLength", list[float])])  # noqa: UP014


def describe(x: CamelCase) -> int:
    return 0


def test_camel_case_python_fields_pass_buf_lint(tmp_path: Path):
    """A generated proto keeps the Python field names (buf.yaml says why)."""
    assert lint_one(Model(describe=describe), "camel", "1.0.0", tmp_path) == []


def test_the_project_s_own_protos_must_still_be_snake_case(tmp_path: Path):
    """The exception for Python field names covers generated model protos only."""
    assert BUF is not None
    schema, _ = Model(describe=describe).named("camel", "1.0.0")
    text = render_proto(schema).replace(schema.package, "modelwire.camel.v1")
    findings = buf_lint(BUF, {"modelwire/camel/v1/camel.proto": text}, tmp_path)
    assert findings["modelwire/camel/v1/camel.proto"] == [
        'proto/modelwire/camel/v1/camel.proto:11:19:Field name "sepalLength" should be '
        'lower_snake_case, such as "sepal_length".'
    ]


def test_pre_release_model_version_passes_buf_lint(tmp_path: Path):
    """0.x versions live in package `...v1alpha`, which buf accepts (it has no `v0`)."""
    assert lint_one(SAMPLES["iris"](), "iris", "0.3.0", tmp_path) == []
