"""What a validation's environment reports back: the trial of one bundle, as JSON both ways.

The environment (a fresh venv, or the bundle's image in a sandboxed container) runs
`python -m modelwire.runtime.replay`, which serves the bundle, sends it every example
and prints one `Trial` on stdout after `TRIAL_MARKER`. The validator parses it with
`Trial.from_json` and judges it (`modelwire.bundle.verdict`); it never trusts the
environment to judge itself, and it checks that every answer is to the request it
meant (`Answer.request_sha256`).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NO_TRIAL", "TRIAL_MARKER", "Answer", "Stage", "Trial"]

# the line prefix of the trial on the environment's stdout (a model may print there too)
TRIAL_MARKER = "modelwire-trial "
# the note of the trial the validator makes up when the environment printed none
NO_TRIAL = "the environment reported no trial"


class Stage(enum.Enum):
    """How far the trial got."""

    LOADING = "loading"  # the server never reported SERVING
    CALLING = "calling"  # it served, and the server ended during the calls
    DONE = "done"  # every call was made


@dataclass(frozen=True)
class Answer:
    """The answers to one request, sent `len(latencies_ms)` times.

    Attributes:
        method: the model's method.
        index: the request's index among the method's calls.
        request_sha256: sha256 of the request bytes sent.
        status: the gRPC status name of the first call that did not answer OK, else "OK".
        details: that call's status message ("" when OK).
        responses: the distinct answers received (wire bytes), in order of arrival.
        latencies_ms: every call's latency, in milliseconds.
    """

    method: str
    index: int
    request_sha256: str
    status: str
    details: str
    responses: tuple[bytes, ...]
    latencies_ms: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "index": self.index,
            "request_sha256": self.request_sha256,
            "status": self.status,
            "details": self.details,
            "responses": [base64.b64encode(r).decode() for r in self.responses],
            "latencies_ms": list(self.latencies_ms),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        return cls(
            method=str(data["method"]),
            index=int(data["index"]),
            request_sha256=str(data["request_sha256"]),
            status=str(data["status"]),
            details=str(data["details"]),
            responses=tuple(base64.b64decode(r) for r in data["responses"]),
            latencies_ms=tuple(float(x) for x in data["latencies_ms"]),
        )


@dataclass(frozen=True)
class Trial:
    """One run of a bundle in its environment.

    Attributes:
        stage: how far it got.
        load_seconds: from starting the server to SERVING (None if it never served).
        calls_seconds: the wall time of all the calls (None if none was made).
        exit_status: the server's exit status if it ended before it was stopped
            (negative: killed by that signal), else None.
        answers: one per request sent.
        python: the environment's Python version, e.g. "3.11.7".
        packages: the distributions installed there, (name, version), sorted.
        log_tail: the last lines the server wrote to stderr.
        out_of_time: the run stopped at its time limit.
        note: what the environment could not do, in a line ("" if nothing).
    """

    stage: Stage
    load_seconds: float | None
    calls_seconds: float | None
    exit_status: int | None
    answers: tuple[Answer, ...]
    python: str
    packages: tuple[tuple[str, str], ...]
    log_tail: tuple[str, ...]
    out_of_time: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "load_seconds": self.load_seconds,
            "calls_seconds": self.calls_seconds,
            "exit_status": self.exit_status,
            "answers": [a.to_json() for a in self.answers],
            "python": self.python,
            "packages": [list(p) for p in self.packages],
            "log_tail": list(self.log_tail),
            "out_of_time": self.out_of_time,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trial:
        """Raises KeyError, TypeError or ValueError on a malformed document."""
        load, calls = data["load_seconds"], data["calls_seconds"]
        status = data["exit_status"]
        return cls(
            stage=Stage(data["stage"]),
            load_seconds=None if load is None else float(load),
            calls_seconds=None if calls is None else float(calls),
            exit_status=None if status is None else int(status),
            answers=tuple(Answer.from_json(a) for a in data["answers"]),
            python=str(data["python"]),
            packages=tuple((str(n), str(v)) for n, v in data["packages"]),
            log_tail=tuple(str(x) for x in data["log_tail"]),
            out_of_time=bool(data.get("out_of_time", False)),
            note=str(data.get("note", "")),
        )
