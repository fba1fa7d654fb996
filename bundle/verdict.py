"""The verdict of a validation: a trial judged against the bundle's examples.

`judge()` is pure: it takes the calls the validator meant (`example_calls`), the
`Trial` the environment reported and the schema, and returns a `ValidationReport`
(`modelwire.bundle.report`): pass or fail, the one reason a contributor can act on,
the result of every example, the p50 latency per method. `failed_before_trial()` is
the report of a validation that never got to run the model (requirements that cannot
be installed, no interpreter of the bundle's Python).
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from modelwire.bundle.examples import ExampleCall, ExampleKind
from modelwire.bundle.manifest import Manifest
from modelwire.bundle.pickle_scan import PickleReach
from modelwire.bundle.report import (
    Environment,
    ExampleResult,
    Failure,
    MethodTiming,
    Outcome,
    Phases,
    ValidationReport,
)
from modelwire.bundle.trial import NO_TRIAL, Answer, Stage, Trial
from modelwire.codegen.answers import DEFAULT_TOLERANCE, Tolerance, compare_response

if TYPE_CHECKING:
    from modelwire.codegen.values import ValueCodec

__all__ = ["failed_before_trial", "judge", "missing_module"]

_LOG_LINES = 10  # log lines a reason quotes at most
_WRONG_REQUEST = "the environment answered another request than the one sent"


def missing_module(log_tail: Sequence[str]) -> str | None:
    """The module a server's log says could not be imported, if any."""
    for line in reversed(log_tail):
        found = re.search(r"needs module '([^']+)'", line) or re.search(
            r"No module named '([^']+)'", line
        )
        if found:
            return found.group(1)
    return None


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _quote(log_tail: Sequence[str]) -> str:
    """The last meaningful log line, for a one-line reason."""
    for line in reversed(log_tail):
        text = line.strip()
        if text and not text.startswith("File ") and text != "^" * len(text):
            return text if len(text) <= 300 else text[:297] + "..."
    return "it logged nothing"


class _Answers:
    """Decodes recorded and received answers with one codec (built on first use)."""

    def __init__(self, manifest: Manifest, tolerance: Tolerance) -> None:
        self.schema = manifest.schema
        self.tolerance = tolerance
        self._codec: ValueCodec | None = None

    def codec(self) -> ValueCodec:
        if self._codec is None:
            from modelwire.codegen.descriptors import file_descriptor, message_classes
            from modelwire.codegen.values import ValueCodec

            self._codec = ValueCodec(self.schema, message_classes(file_descriptor(self.schema)))
        return self._codec

    def judge(self, call: ExampleCall, answer: Answer) -> tuple[Outcome, str]:
        if answer.request_sha256 != hashlib.sha256(call.request).hexdigest():
            return Outcome.ERROR, _WRONG_REQUEST
        if answer.status != "OK":
            return Outcome.ERROR, f"{answer.status}: {answer.details}"
        if call.response is None:  # generated: answering is all that is asked
            return Outcome.PASSED, ""
        from modelwire.codegen.values import DecodeError

        method = self.schema.method(call.method)
        codec = self.codec().method(call.method)
        expected = codec.decode_response(call.response)
        for got_bytes in answer.responses:
            try:
                got = codec.decode_response(got_bytes)
            except DecodeError as exc:
                return Outcome.DIFFERENT, f"the answer is not a valid {method.response}: {exc}"
            difference = compare_response(self.schema, method, expected, got, self.tolerance)
            if difference is not None:
                return Outcome.DIFFERENT, str(difference)
        return Outcome.PASSED, ""


def judge(
    manifest: Manifest,
    calls: Sequence[ExampleCall],
    trial: Trial,
    *,
    bundle: str,
    digest: str,
    environment: Environment,
    pickle: PickleReach,
    phases: Phases,
    oom_killed: bool = False,
    timed_out: bool = False,
    time_limit: float | None = None,
    load_timeout: float | None = None,
    distribution_of: Callable[[str], str | None] = lambda module: None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> ValidationReport:
    """Judge a trial.

    Args:
        manifest: the bundle's manifest (its schema decodes the answers).
        calls: what the validator meant to send (`example_calls`).
        trial: what the environment reported.
        bundle, digest: the bundle's path and identity, for the report.
        environment, pickle, phases: for the report.
        oom_killed: the sandbox says the server was killed for its memory use.
        timed_out: the sandbox stopped the run at its time limit.
        time_limit: that limit in seconds, for the reason.
        load_timeout: the load timeout the trial ran with, for its reason.
        distribution_of: the requirement line that provides a module (e.g.
            ``sklearn`` -> ``scikit-learn==1.5.2``), where the validator knows it.
        tolerance: how far float answers may drift.
    """
    by_key = {(a.method, a.index): a for a in trial.answers}
    answers = _Answers(manifest, tolerance)
    results = []
    for call in calls:
        answer = by_key.get((call.method, call.index))
        if answer is None:
            results.append(ExampleResult(call.method, call.index, call.kind, Outcome.NOT_RUN))
            continue
        outcome, detail = answers.judge(call, answer)
        results.append(
            ExampleResult(
                call.method, call.index, call.kind, outcome, detail, _median(answer.latencies_ms)
            )
        )
    methods = tuple(
        MethodTiming(
            m.name,
            sum(len(a.latencies_ms) for a in trial.answers if a.method == m.name),
            _median(
                [
                    x
                    for a in trial.answers
                    if a.method == m.name and a.status == "OK"
                    for x in a.latencies_ms
                ]
            ),
        )
        for m in manifest.schema.methods
    )
    failure, reason = _reason(
        trial,
        results,
        oom_killed=oom_killed,
        timed_out=timed_out or trial.out_of_time,
        time_limit=time_limit,
        load_timeout=load_timeout,
        distribution_of=distribution_of,
        environment=environment,
    )
    return ValidationReport(
        bundle=bundle,
        name=manifest.name,
        version=manifest.version,
        digest=digest,
        passed=failure is None,
        failure=failure,
        reason=reason,
        examples=tuple(results),
        methods=methods,
        phases=phases,
        environment=environment,
        pickle=pickle,
        log_tail=() if failure is None else trial.log_tail[-_LOG_LINES * 2 :],
        tolerance=tolerance,
    )


def _reason(
    trial: Trial,
    results: Sequence[ExampleResult],
    *,
    oom_killed: bool,
    timed_out: bool,
    time_limit: float | None,
    load_timeout: float | None,
    distribution_of: Callable[[str], str | None],
    environment: Environment,
) -> tuple[Failure | None, str]:
    """The first thing that went wrong, as (failure, one line); (None, "") if nothing."""
    module = missing_module(trial.log_tail)
    if module is not None:
        requirement = distribution_of(module) or f"<the distribution of {module.split('.')[0]}>"
        return Failure.MISSING_MODULE, (
            f"the model needs module {module!r}, which the bundle's requirements do not "
            f"install; dump it again with -r {requirement} (or requirements=[...])"
        )
    memory = next(
        (p.split()[1] for p in environment.isolation if p.startswith("memory ")), "its limit"
    )
    if oom_killed or (trial.exit_status is not None and "MemoryError" in " ".join(trial.log_tail)):
        return Failure.MEMORY, (
            f"the model used more memory than {memory} and was "
            f"stopped {'while loading' if trial.stage is Stage.LOADING else 'while answering'}"
        )
    if timed_out:
        when = "while the model loaded" if trial.stage is Stage.LOADING else "during the calls"
        return Failure.TIMEOUT, (
            f"the validation took longer than its time limit"
            f"{f' of {time_limit:g} s' if time_limit is not None else ''} and was stopped {when}"
        )
    if trial.exit_status is not None:
        how = (
            f"was killed by signal {-trial.exit_status}"
            if trial.exit_status < 0
            else f"exited with status {trial.exit_status}"
        )
        when = "while loading" if trial.stage is Stage.LOADING else "while answering the examples"
        return Failure.CRASHED, f"the server {how} {when}: {_quote(trial.log_tail)}"
    if trial.note == NO_TRIAL:
        return Failure.ENVIRONMENT, (
            f"the environment ended without reporting a trial: {_quote(trial.log_tail)}"
        )
    if trial.stage is Stage.LOADING:
        limit = f"{load_timeout:g} s" if load_timeout is not None else "the load timeout"
        return Failure.LOAD_TIMEOUT, (
            f"the model did not report SERVING within {limit} (--load-timeout); it was still "
            f"loading: {_quote(trial.log_tail)}"
        )
    for r in results:
        where = f"{r.kind.value} example {r.index} of {r.method!r}"
        if r.detail == _WRONG_REQUEST:
            return Failure.ENVIRONMENT, f"{where}: {_WRONG_REQUEST}"
        if r.outcome is Outcome.ERROR:
            hint = (
                " (generated requests match only the types: record real ones with "
                "dump(examples=...) or --example)"
                if r.kind is ExampleKind.GENERATED
                else ""
            )
            return Failure.CALL, f"{where} was answered with {r.detail}{hint}"
        if r.outcome is Outcome.DIFFERENT:
            return Failure.ANSWER, f"{where} was answered differently: {r.detail}"
        if r.outcome is Outcome.NOT_RUN:
            return Failure.CRASHED, f"{where} was never answered: {_quote(trial.log_tail)}"
    return None, ""


def failed_before_trial(
    manifest: Manifest,
    calls: Sequence[ExampleCall],
    failure: Failure,
    reason: str,
    *,
    bundle: str,
    digest: str,
    environment: Environment,
    pickle: PickleReach,
    phases: Phases,
    log_tail: Sequence[str] = (),
) -> ValidationReport:
    """The report of a validation that failed before the model ran."""
    return ValidationReport(
        bundle=bundle,
        name=manifest.name,
        version=manifest.version,
        digest=digest,
        passed=False,
        failure=failure,
        reason=reason,
        examples=tuple(ExampleResult(c.method, c.index, c.kind, Outcome.NOT_RUN) for c in calls),
        methods=tuple(MethodTiming(m.name, 0, None) for m in manifest.schema.methods),
        phases=phases,
        environment=environment,
        pickle=pickle,
        log_tail=tuple(log_tail),
    )
