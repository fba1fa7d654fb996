"""The validation report as `modelwire validate` prints it, and as JSON that reads back."""

from __future__ import annotations

import pytest

from modelwire.bundle.examples import ExampleKind
from modelwire.bundle.pickle_scan import PickleReach, PickleReference
from modelwire.bundle.report import (
    Environment,
    ExampleResult,
    Failure,
    MethodTiming,
    Outcome,
    Phases,
    ValidationReport,
    render_report,
    report_from_json,
    report_json,
)

FAILED = ValidationReport(
    bundle="build/iris",
    name="iris",
    version="1.0.0",
    digest="ab" * 32,
    passed=False,
    failure=Failure.ANSWER,
    reason="recorded example 1 of 'classify' was answered differently: iris_type[0]: "
    "expected 2, got 1",
    examples=(
        ExampleResult("classify", 0, ExampleKind.RECORDED, Outcome.PASSED, "", 1.234),
        ExampleResult(
            "classify",
            1,
            ExampleKind.RECORDED,
            Outcome.DIFFERENT,
            "iris_type[0]: expected 2, got 1",
            1.5,
        ),
        ExampleResult("proba", 0, ExampleKind.GENERATED, Outcome.NOT_RUN),
    ),
    methods=(MethodTiming("classify", 10, 1.3), MethodTiming("proba", 0, None)),
    phases=Phases(8.25, 3.5, 0.25, 12.5),
    environment=Environment(
        "docker",
        "3.11.2",
        (("numpy", "2.4.6"), ("scikit-learn", "1.9.1")),
        "modelwire/iris:1.0.0-abababababab",
        ("no network", "memory 512m"),
    ),
    pickle=PickleReach(
        (
            PickleReference("os", "", "import", ("process", "filesystem")),
            PickleReference("sklearn.tree._tree", "Tree"),
        ),
        opaque=1,
    ),
    log_tail=("line one", "line two"),
)


def test_a_failed_report_reads_as_text():
    assert render_report(FAILED) == (
        "validation of iris 1.0.0 (build/iris): FAILED (answer)\n"
        "  reason       recorded example 1 of 'classify' was answered differently: iris_type[0]: "
        "expected 2,\n"
        "               got 1\n"
        "  environment  docker modelwire/iris:1.0.0-abababababab, Python 3.11.2\n"
        "  isolation    no network, memory 512m\n"
        "  packages     numpy 2.4.6, scikit-learn 1.9.1\n"
        "  time         12.5 s: environment 8.2 s, load 3.5 s, calls 0.2 s\n"
        "  examples     2 recorded, 1 generated\n"
        "    passed    classify recorded #0  1.23 ms\n"
        "    different classify recorded #1  1.50 ms\n"
        "              iris_type[0]: expected 2, got 1\n"
        "    not-run   proba generated #0\n"
        "  latency      classify: p50 1.30 ms over 10 calls\n"
        "  latency      proba: p50 - over 0 calls\n"
        "  tolerance    floats within rel 1e-06, abs 1e-09 (64-bit); rel 0.0001, abs 1e-06 "
        "(32-bit)\n"
        "  pickle       2 modules; reaches: import os (process, filesystem); 1 computed globals "
        "not readable\n"
        "  log (last lines)\n"
        "    line one\n"
        "    line two"
    )


@pytest.mark.parametrize("report", [FAILED], ids=["failed"])
def test_json_reads_back_as_the_same_report(report):
    doc = report_json(report)
    assert doc["failure"] == "answer"
    assert doc["examples_kind"] == "mixed"
    assert doc["examples"][1] == {
        "method": "classify",
        "index": 1,
        "kind": "recorded",
        "outcome": "different",
        "detail": "iris_type[0]: expected 2, got 1",
        "p50_ms": 1.5,
    }
    assert report_from_json(doc) == report


def test_another_format_is_refused():
    doc = {**report_json(FAILED), "format": 2}
    with pytest.raises(ValueError, match=r"^a validation report of format 2, not 1$"):
        report_from_json(doc)
    doc = report_json(FAILED)
    del doc["examples"]
    with pytest.raises(
        ValueError, match=r"^a malformed validation report \(KeyError\('examples'\)\)$"
    ):
        report_from_json(doc)
