"""What every validation does around its environment: read the bundle, list the calls,
scan the pickle, tell the environment what to replay, read the trial it printed, and
judge it (`modelwire.bundle.verdict`).

Nothing here unpickles the bundle or runs its code; `modelwire.containers.validation`
builds the environments and runs the replay there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from modelwire.bundle import Bundle
from modelwire.bundle.examples import ExampleCall, example_calls
from modelwire.bundle.manifest import CODE_DIR, PICKLE
from modelwire.bundle.pickle_scan import PickleReach, scan_pickle, scan_sources
from modelwire.bundle.report import Environment, Failure, Phases, ValidationReport
from modelwire.bundle.trial import NO_TRIAL, TRIAL_MARKER, Stage, Trial
from modelwire.bundle.verdict import failed_before_trial, judge
from modelwire.errors import ToolError

__all__ = ["ReplayOptions", "ValidationRun", "pip_reason", "trial_from"]

_REPLAY = "modelwire.runtime.replay"
# the replay stops itself this long before the time limit, so its trial still comes out
_MARGIN = 5.0


class ValidationRun:
    """What every validation knows about its bundle before the environment exists."""

    def __init__(self, path: Path, started: float) -> None:
        self.bundle = Bundle(path)
        self.manifest = self.bundle.manifest
        self.digest = self.bundle.digest()
        self.calls: tuple[ExampleCall, ...] = example_calls(self.manifest, self.bundle.read)
        self.pickle: PickleReach = scan_sources(
            scan_pickle(self.bundle.read(PICKLE)),
            ((f"{CODE_DIR}/{rel}", data) for rel, data in self.bundle.code_files()),
        )
        self.started = started

    def phases(self, environment: float | None, trial: Trial | None = None) -> Phases:
        return Phases(
            environment=None if environment is None else round(environment, 3),
            load=trial.load_seconds if trial else None,
            calls=trial.calls_seconds if trial else None,
            total=round(time.monotonic() - self.started, 3),
        )

    def failed(
        self,
        failure: Failure,
        reason: str,
        environment: Environment,
        env_seconds: float | None,
        log_tail: tuple[str, ...] = (),
    ) -> ValidationReport:
        return failed_before_trial(
            self.manifest,
            self.calls,
            failure,
            reason,
            bundle=str(self.bundle.path),
            digest=self.digest,
            environment=environment,
            pickle=self.pickle,
            phases=self.phases(env_seconds),
            log_tail=log_tail,
        )

    def judged(
        self,
        trial: Trial,
        environment: Environment,
        env_seconds: float,
        *,
        oom_killed: bool,
        timed_out: bool,
        time_limit: float,
        load_timeout: float,
    ) -> ValidationReport:
        return judge(
            self.manifest,
            self.calls,
            trial,
            bundle=str(self.bundle.path),
            digest=self.digest,
            environment=Environment(
                environment.mode,
                trial.python,
                trial.packages,
                environment.image,
                environment.isolation,
            ),
            pickle=self.pickle,
            phases=self.phases(env_seconds, trial),
            oom_killed=oom_killed,
            timed_out=timed_out,
            time_limit=time_limit,
            load_timeout=load_timeout,
            distribution_of=_distribution_of,
        )


def _distribution_of(module: str) -> str | None:
    """The requirement line that provides `module` here (None if not installed here)."""
    from modelwire.bundle.requirements import resolve_modules

    pins = resolve_modules((module.split(".", 1)[0],)).pins
    return next(iter(pins.values()), None)


def pip_reason(exc: ToolError) -> str:
    """The line of pip's output that says what it could not do."""
    lines = [x.strip() for x in exc.stderr_tail.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("ERROR:")]
    return (errors or lines or [str(exc).splitlines()[0]])[-1].removeprefix("ERROR: ")


def trial_from(
    stdout: str, exit_status: int | None, log_tail: tuple[str, ...], stopped: bool
) -> Trial:
    """The trial the replay printed, or one saying it printed none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(TRIAL_MARKER):
            try:
                return Trial.from_json(json.loads(line[len(TRIAL_MARKER) :]))
            except (ValueError, KeyError, TypeError):
                break
    return Trial(
        stage=Stage.LOADING,
        load_seconds=None,
        calls_seconds=None,
        exit_status=None if stopped else (exit_status if exit_status != 0 else None),
        answers=(),
        python="",
        packages=(),
        log_tail=log_tail,
        out_of_time=stopped,
        note=NO_TRIAL,
    )


@dataclass(frozen=True)
class ReplayOptions:
    """What the replay in the environment is told (`python -m modelwire.runtime.replay`)."""

    load_timeout: float
    call_timeout: float
    repeat: int
    timeout: float

    def argv(self, bundle: str) -> list[str]:
        """The replay's arguments after `python -m`, for the bundle at `bundle` there."""
        return [
            _REPLAY,
            bundle,
            "--load-timeout",
            f"{self.load_timeout:g}",
            "--call-timeout",
            f"{self.call_timeout:g}",
            "--repeat",
            str(self.repeat),
            "--time-limit",
            f"{max(1.0, self.timeout - _MARGIN):g}",
        ]
