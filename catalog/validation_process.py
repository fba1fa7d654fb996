"""One validation worker as a subprocess: started in a session of its own, its steps read as
they come, stopped (with everything it started) at the job's time limit or when the catalog
stops, and its answer read back.

`run_worker` is the only place the catalog starts `modelwire.catalog.validation_worker`;
what the answer means for the job is `modelwire.catalog.validation_jobs`'s business.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modelwire.catalog.validation_worker import (
    RESULT_MARKER,
    STEP_MARKER,
    WorkerJob,
    processes_in,
)

__all__ = ["WorkerOutcome", "run_worker"]

_TAIL = 20


@dataclass(frozen=True)
class WorkerOutcome:
    """How a worker ended.

    Attributes:
        answer: its answer ({"report": ...} or {"error": ...}); None if it gave none.
        status: its exit status (None if it was stopped).
        tail: its last stderr lines.
        step: the last step it reported ("" if none).
        overran: stopped at the time limit.
        stopped: stopped because the catalog is stopping.
    """

    answer: dict[str, Any] | None
    status: int | None
    tail: tuple[str, ...]
    step: str
    overran: bool = False
    stopped: bool = False

    def problem(self) -> str:
        """What went wrong with a worker that gave no report, in one line."""
        if self.answer is not None and "error" in self.answer:
            return str(self.answer["error"])
        last = next((x for x in reversed(self.tail) if not x.startswith(STEP_MARKER)), "")
        text = f"the validation worker ended with status {self.status} and no answer"
        return text + (f": {last}" if last else "")


def _kill(proc: subprocess.Popen[str], folder: Path) -> None:
    """The worker's session, and whatever runs in its folder: a venv's model runs in a
    session of its own (`run_as`)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    # A child forked by the worker just before the kill may exec into the folder a moment
    # later (it is in a session of its own): scan until two scans in a row find nothing.
    quiet = 0
    for _ in range(50):
        found = processes_in(folder)
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        quiet = 0 if found else quiet + 1
        if quiet == 2:
            break
        time.sleep(0.05)


def _answer(lines: list[str]) -> dict[str, Any] | None:
    for line in reversed(lines):
        if line.startswith(RESULT_MARKER):
            try:
                found = json.loads(line[len(RESULT_MARKER) :])
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def run_worker(
    job: WorkerJob,
    folder: Path,
    *,
    timeout: float,
    stopping: threading.Event,
    on_step: Callable[[str], None],
) -> WorkerOutcome:
    """Run the worker for `job` in `folder` (its TMPDIR and working directory) to its end,
    for at most `timeout` seconds or until `stopping` is set; `on_step` gets each step."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    env["TMPDIR"] = str(folder)  # whatever the worker leaves there goes with the folder
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwire.catalog.validation_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
        start_new_session=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
    steps: list[str] = []
    out: list[str] = []

    def read_steps(stream: IO[str] | None) -> None:
        for raw in stream or ():
            line = raw.rstrip("\n")
            tail.append(line)
            if line.startswith(STEP_MARKER):
                steps.append(line[len(STEP_MARKER) :])
                with contextlib.suppress(Exception):  # a step note is worth no failed job
                    on_step(steps[-1])

    readers = [
        threading.Thread(target=read_steps, args=(proc.stderr,), daemon=True),
        threading.Thread(target=lambda: out.extend(proc.stdout or ()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(job.to_json())
        proc.stdin.close()
    overran = stopped = False
    try:
        while proc.poll() is None:
            if stopping.is_set():
                stopped = True
                break
            if time.monotonic() > deadline:
                overran = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.25)
    finally:
        _kill(proc, folder)
        for reader in readers:
            reader.join(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    status = None if (overran or stopped) else proc.returncode
    return WorkerOutcome(
        None if (overran or stopped) else _answer(out),
        status,
        tuple(tail),
        steps[-1] if steps else "",
        overran=overran,
        stopped=stopped,
    )
