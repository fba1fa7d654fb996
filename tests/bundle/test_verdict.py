"""Judging a trial: every outcome of an example, and the one reason a contributor can act
on for each way a validation fails."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from modelwire.bundle import Bundle, dump
from modelwire.bundle.examples import ExampleCall, example_calls
from modelwire.bundle.pickle_scan import PickleReach
from modelwire.bundle.report import Environment, Failure, Outcome, Phases, ValidationReport
from modelwire.bundle.trial import Answer, Stage, Trial
from modelwire.bundle.verdict import failed_before_trial, judge, missing_module
from tests.fixtures.models import echo

ENV = Environment("venv", isolation=("memory 512m",))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    path = tmp_path_factory.mktemp("b") / "echo"
    examples = {"add": [{"a": 1.0, "b": 2.0}, {"a": 0.5, "b": 0.25}]}
    return Bundle(dump(echo.model(), "echo", path, examples=examples))


@pytest.fixture(scope="module")
def calls(bundle: Bundle) -> tuple[ExampleCall, ...]:
    return example_calls(bundle.manifest, bundle.read)


def answered(call: ExampleCall, *responses: bytes, status: str = "OK", details: str = "") -> Answer:
    sent = responses or ((call.response,) if call.response is not None else (b"",))
    return Answer(
        call.method,
        call.index,
        hashlib.sha256(call.request).hexdigest(),
        status,
        details,
        () if status != "OK" else sent,
        (2.0, 1.0, 3.0),
    )


def trial(answers: tuple[Answer, ...], **changes: object) -> Trial:
    base = Trial(
        stage=Stage.DONE,
        load_seconds=1.5,
        calls_seconds=0.2,
        exit_status=None,
        answers=answers,
        python="3.11.7",
        packages=(("modelwire", "0.1.0"),),
        log_tail=("loaded",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def verdict(
    bundle: Bundle, calls: tuple[ExampleCall, ...], t: Trial, **kw: object
) -> ValidationReport:
    return judge(
        bundle.manifest,
        calls,
        t,
        bundle="b",
        digest=bundle.digest(),
        environment=ENV,
        pickle=PickleReach(()),
        phases=Phases(1.0, 1.5, 0.2, 3.0),
        load_timeout=30.0,
        **kw,  # type: ignore[arg-type]
    )


def all_ok(calls: tuple[ExampleCall, ...]) -> tuple[Answer, ...]:
    return tuple(answered(c) for c in calls)


def test_every_example_answered_as_recorded_passes(bundle, calls):
    report = verdict(bundle, calls, trial(all_ok(calls)))
    assert (report.passed, report.failure, report.reason) == (True, None, "")
    assert [(r.method, r.index, r.kind.value, r.outcome) for r in report.examples] == [
        ("echo_record", 0, "generated", Outcome.PASSED),
        ("echo_tensor", 0, "generated", Outcome.PASSED),
        ("add", 0, "recorded", Outcome.PASSED),
        ("add", 1, "recorded", Outcome.PASSED),
        ("fail", 0, "generated", Outcome.PASSED),
        ("reject", 0, "generated", Outcome.PASSED),
    ]
    assert report.examples_kind == "mixed"
    add = next(m for m in report.methods if m.method == "add")
    assert (add.calls, add.p50_ms) == (6, 2.0)
    assert report.log_tail == ()
    assert report.environment == ENV


def test_a_different_answer_names_the_field_and_both_values(bundle, calls):
    add = calls[2]
    answers = tuple(
        answered(c, b"\t\x00\x00\x00\x00\x00\x00\x10@") if c is add else answered(c) for c in calls
    )
    report = verdict(bundle, calls, trial(answers))
    assert report.failure is Failure.ANSWER
    assert report.reason == (
        "recorded example 0 of 'add' was answered differently: value: expected 3.0, got 4.0"
    )
    assert report.examples[2].outcome is Outcome.DIFFERENT
    assert report.log_tail == ("loaded",)


def test_a_second_distinct_answer_to_the_same_request_is_judged_too(bundle, calls):
    add = calls[2]
    wobbly = answered(add, add.response, b"\t\x00\x00\x00\x00\x00\x00\x14@")
    answers = tuple(wobbly if c is add else answered(c) for c in calls)
    assert verdict(bundle, calls, trial(answers)).reason == (
        "recorded example 0 of 'add' was answered differently: value: expected 3.0, got 5.0"
    )


def test_an_error_status_on_a_generated_request_says_to_record_examples(bundle, calls):
    fail = calls[4]
    details = "fail: the model raised RuntimeError; the traceback is in the server's log"
    answers = tuple(
        answered(c, status="INTERNAL", details=details) if c is fail else answered(c) for c in calls
    )
    report = verdict(bundle, calls, trial(answers))
    assert report.failure is Failure.CALL
    assert report.reason == (
        f"generated example 0 of 'fail' was answered with INTERNAL: {details} (generated "
        "requests match only the types: record real ones with dump(examples=...) or --example)"
    )


def test_an_answer_to_another_request_is_the_environments_failure(bundle, calls):
    answers = (replace(answered(calls[0]), request_sha256="0" * 64), *all_ok(calls)[1:])
    report = verdict(bundle, calls, trial(answers))
    assert (report.failure, report.reason) == (
        Failure.ENVIRONMENT,
        "generated example 0 of 'echo_record': the environment answered another request "
        "than the one sent",
    )


def test_a_missing_module_names_the_requirement_to_add(bundle, calls):
    log = (
        "Traceback (most recent call last):",
        "ModuleNotFoundError: No module named 'sklearn'",
    )
    report = verdict(
        bundle,
        calls,
        trial((), stage=Stage.LOADING, exit_status=1, load_seconds=None, log_tail=log),
        distribution_of=lambda module: "scikit-learn==1.5.2" if module == "sklearn" else None,
    )
    assert report.failure is Failure.MISSING_MODULE
    assert report.reason == (
        "the model needs module 'sklearn', which the bundle's requirements do not install; "
        "dump it again with -r scikit-learn==1.5.2 (or requirements=[...])"
    )
    assert {r.outcome for r in report.examples} == {Outcome.NOT_RUN}


def test_a_missing_module_unknown_here_still_says_what_to_add(bundle, calls):
    log = (
        "error: bundle x: unpickling the model needs module 'torch.nn', which is not "
        "installed here; the bundle requires: (none listed) (pip install -r "
        "requirements.txt)",
    )
    report = verdict(bundle, calls, trial((), stage=Stage.LOADING, exit_status=1, log_tail=log))
    assert report.reason == (
        "the model needs module 'torch.nn', which the bundle's requirements do not install; "
        "dump it again with -r <the distribution of torch> (or requirements=[...])"
    )


@pytest.mark.parametrize(
    ("changes", "kw", "failure", "reason"),
    [
        pytest.param(
            {"stage": Stage.LOADING, "exit_status": 3, "log_tail": ("starting", "")},
            {},
            Failure.CRASHED,
            "the server exited with status 3 while loading: starting",
            id="exits at load",
        ),
        pytest.param(
            {"stage": Stage.CALLING, "exit_status": -9, "log_tail": ()},
            {},
            Failure.CRASHED,
            "the server was killed by signal 9 while answering the examples: it logged nothing",
            id="killed during the calls",
        ),
        pytest.param(
            {"stage": Stage.LOADING, "exit_status": None, "log_tail": ("still warming up",)},
            {},
            Failure.LOAD_TIMEOUT,
            "the model did not report SERVING within 30 s (--load-timeout); it was still "
            "loading: still warming up",
            id="load timeout",
        ),
        pytest.param(
            {"stage": Stage.LOADING, "exit_status": -9},
            {"oom_killed": True},
            Failure.MEMORY,
            "the model used more memory than 512m and was stopped while loading",
            id="oom killed",
        ),
        pytest.param(
            {"stage": Stage.LOADING, "exit_status": 1, "log_tail": ("MemoryError",)},
            {},
            Failure.MEMORY,
            "the model used more memory than 512m and was stopped while loading",
            id="MemoryError under an address-space limit",
        ),
        pytest.param(
            {"stage": Stage.CALLING, "exit_status": None, "out_of_time": True},
            {"time_limit": 60.0},
            Failure.TIMEOUT,
            "the validation took longer than its time limit of 60 s and was stopped during "
            "the calls",
            id="time limit",
        ),
    ],
)
def test_each_way_of_failing_has_its_reason(bundle, calls, changes, kw, failure, reason):
    report = verdict(bundle, calls, trial((), **changes), **kw)
    assert (report.passed, report.failure, report.reason) == (False, failure, reason)


def test_a_server_that_ended_after_some_answers_marks_the_rest_not_run(bundle, calls):
    report = verdict(bundle, calls, trial(all_ok(calls)[:2], stage=Stage.CALLING, exit_status=-11))
    assert report.reason == (
        "the server was killed by signal 11 while answering the examples: loaded"
    )
    assert [r.outcome for r in report.examples] == [Outcome.PASSED] * 2 + [Outcome.NOT_RUN] * 4


def test_missing_module_reads_both_messages():
    assert missing_module(["x", "ModuleNotFoundError: No module named 'yaml'"]) == "yaml"
    assert missing_module(["unpickling the model needs module 'a.b', which is"]) == "a.b"
    assert missing_module(["all fine"]) is None


def test_a_failure_before_the_trial_marks_every_example_not_run(bundle, calls):
    report = failed_before_trial(
        bundle.manifest,
        calls,
        Failure.REQUIREMENTS,
        "its requirements cannot be installed: no such version",
        bundle="b",
        digest="d",
        environment=ENV,
        pickle=PickleReach(()),
        phases=Phases(2.0, None, None, 2.5),
    )
    assert (report.passed, report.failure) == (False, Failure.REQUIREMENTS)
    assert {r.outcome for r in report.examples} == {Outcome.NOT_RUN}
    assert [(m.method, m.calls, m.p50_ms) for m in report.methods][:1] == [("echo_record", 0, None)]


def test_reports_round_trip_through_json(bundle, calls, tmp_path: Path):
    from modelwire.bundle.report import report_from_json, report_json

    report = verdict(bundle, calls, trial(all_ok(calls)[:2], stage=Stage.CALLING, exit_status=1))
    assert report_from_json(report_json(report)) == report


def test_an_environment_that_reported_nothing_is_its_own_failure(bundle, calls):
    from modelwire.bundle.trial import NO_TRIAL

    t = trial((), stage=Stage.LOADING, load_seconds=None, log_tail=("Killed",), note=NO_TRIAL)
    report = verdict(bundle, calls, t)
    assert (report.failure, report.reason) == (
        Failure.ENVIRONMENT,
        "the environment ended without reporting a trial: Killed",
    )
