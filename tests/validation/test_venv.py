"""`validate()` in a fresh venv: real venvs from the bundle's requirements and modelwire's
wheel, the model served there and called over gRPC, and each hostile or broken bundle
failed with the reason a contributor can act on."""

from __future__ import annotations

import os
import pwd
import socket
import threading
from pathlib import Path

import pytest

from modelwire import __version__
from modelwire.bundle import dump
from modelwire.bundle.examples import JsonRequest
from modelwire.bundle.report import Failure, Outcome, render_report, report_from_json, report_json
from modelwire.containers.validation import validate
from tests.fixtures.models import echo, forest, hostile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SETOSA = forest.Flowers([5.1], [3.5], [1.4], [0.2])
VIRGINICA = JsonRequest(
    '{"sepal_length": [7.7], "sepal_width": [3.0], "petal_length": [6.1], "petal_width": [2.3]}'
)


def test_iris_loads_and_answers_its_examples_in_a_fresh_venv(tmp_path: Path) -> None:
    examples = {"classify": [SETOSA, VIRGINICA]}
    path = dump(forest.model(), "iris", tmp_path / "iris.zip", examples=examples)
    steps: list[str] = []
    report = validate(path, progress=steps.append)
    assert report.passed, render_report(report)
    assert (report.failure, report.reason, report.examples_kind) == (None, "", "recorded")
    assert [(r.method, r.index, r.outcome) for r in report.examples] == [
        ("classify", 0, Outcome.PASSED),
        ("classify", 1, Outcome.PASSED),
    ]
    (timing,) = report.methods
    assert (timing.method, timing.calls) == ("classify", 10)
    assert timing.p50_ms is not None and timing.p50_ms > 0
    packages = dict(report.environment.packages)
    assert packages["modelwire"] == __version__
    assert packages["scikit-learn"] == __import__("sklearn").__version__
    assert report.environment.mode == "venv"
    assert report.environment.isolation[0] == (
        "a subprocess of this machine: its network and file system are not isolated"
    )
    phases = report.phases
    assert all(x is not None and x > 0 for x in (phases.environment, phases.load, phases.total))
    assert steps[-1] == "serving the bundle in the venv and sending 2 requests"
    assert report_from_json(report_json(report)) == report


def test_a_model_without_examples_is_checked_for_answering_only(tmp_path: Path) -> None:
    report = validate(dump(hostile.answers_at_random(), "rand", tmp_path / "rand"))
    assert report.passed, render_report(report)
    assert report.examples_kind == "generated"


def test_answers_that_differ_from_the_recorded_ones_fail(tmp_path: Path) -> None:
    path = dump(hostile.answers_at_random(), "rand", tmp_path / "rand", examples={"roll": [1.0]})
    report = validate(path, repeat=1)
    assert report.failure is Failure.ANSWER
    assert report.reason.startswith(
        "recorded example 0 of 'roll' was answered differently: value: expected "
    )


def test_a_generated_request_answered_with_an_error_says_to_record_examples(
    tmp_path: Path,
) -> None:
    report = validate(dump(echo.model(), "echo", tmp_path / "echo"), repeat=1)
    assert report.failure is Failure.CALL
    assert report.reason == (
        "generated example 0 of 'fail' was answered with INTERNAL: fail: the model raised "
        "RuntimeError; the traceback is in the server's log (generated requests match only "
        "the types: record real ones with dump(examples=...) or --example)"
    )


def test_a_module_missing_from_the_requirements_is_named_with_the_line_to_add(
    tmp_path: Path,
) -> None:
    model = hostile.imports_at_call("sklearn")
    path = dump(model, "imp", tmp_path / "imp", examples={"use": [1.0]})
    report = validate(path, repeat=1)
    assert report.failure is Failure.MISSING_MODULE
    assert report.reason == (
        "the model needs module 'sklearn', which the bundle's requirements do not install; "
        f"dump it again with -r scikit-learn=={__import__('sklearn').__version__} "
        "(or requirements=[...])"
    )


def test_requirements_that_cannot_be_installed_fail_before_anything_runs(tmp_path: Path) -> None:
    path = dump(echo.model(), "echo", tmp_path / "echo", requirements=["numpy==0.0.1"])
    report = validate(path)
    assert report.failure is Failure.REQUIREMENTS
    assert report.reason == (
        "its requirements cannot be installed: No matching distribution found for numpy==0.0.1"
    )
    assert {r.outcome for r in report.examples} == {Outcome.NOT_RUN}


def test_a_model_that_hangs_at_load_fails_at_the_load_timeout(tmp_path: Path) -> None:
    report = validate(dump(hostile.hangs_at_load(), "hang", tmp_path / "hang"), load_timeout=5)
    assert report.failure is Failure.LOAD_TIMEOUT
    assert report.reason.startswith(
        "the model did not report SERVING within 5 s (--load-timeout); it was still loading: "
    )


def test_the_time_limit_stops_a_model_that_hangs(tmp_path: Path) -> None:
    report = validate(dump(hostile.hangs_at_load(), "hang", tmp_path / "hang"), timeout=8)
    assert report.failure is Failure.TIMEOUT
    assert report.reason == (
        "the validation took longer than its time limit of 8 s and was stopped while the "
        "model loaded"
    )


def test_a_model_that_exits_at_load_fails_with_its_status(tmp_path: Path) -> None:
    report = validate(dump(hostile.exits_at_load(), "exit", tmp_path / "exit"))
    assert report.failure is Failure.CRASHED
    assert report.reason.startswith("the server exited with status 3 while loading: ")


def test_a_model_that_allocates_past_the_limit_fails_for_its_memory(tmp_path: Path) -> None:
    path = dump(hostile.allocates_at_load(8 << 30), "hog", tmp_path / "hog")
    report = validate(path, memory="768m")
    assert report.failure is Failure.MEMORY
    assert report.reason == "the model used more memory than 768m and was stopped while loading"


def test_a_model_run_as_another_user_cannot_write_outside_its_work_dir(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("running the model as another user needs root")
    target = Path("/opt") / f"modelwire-validate-test-{os.getpid()}"
    path = dump(hostile.writes_at_load(str(target)), "writer", tmp_path / "writer")
    report = validate(path, user="nobody")
    assert report.failure is Failure.CRASHED
    assert report.reason == (
        "the server exited with status 1 while loading: PermissionError: [Errno 13] "
        f"Permission denied: '{target}'"
    )
    uid = pwd.getpwnam("nobody").pw_uid
    assert report.environment.isolation[1] == f"user nobody (uid {uid})"
    assert not target.exists()


def test_in_a_venv_the_network_is_not_isolated_and_the_report_says_so(tmp_path: Path) -> None:
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(100))

        threading.Thread(target=accept, daemon=True).start()
        path = dump(hostile.connects_at_load("127.0.0.1", port), "net", tmp_path / "net")
        report = validate(path, repeat=1)
    assert report.passed, render_report(report)
    assert received == [b"hello from the model\n"]
    assert "import socket in code/tests/fixtures/models/hostile.py (network)" in [
        str(r) for r in report.pickle.flagged
    ]
