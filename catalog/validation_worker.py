"""One catalog validation in a process of its own: `python -m modelwire.catalog.validation_worker`.

The catalog (`modelwire.catalog.validation_jobs`) starts it for each job, writes the job
as one JSON object (`WorkerJob`) on its stdin and reads its answer, one stdout line
after `RESULT_MARKER`: ``{"report": <report_json>}`` when the validation ended (passed or
failed: anything the bundle causes), or ``{"error": "..."}`` when the validator itself
failed (no engine, no base image, modelwire's wheels unavailable), which the catalog
retries later. Each step of building the environment is a stderr line after
`STEP_MARKER`.

A process of its own so that the catalog can stop a job at its time limit, together with
the pip and venv commands it started (its session), and so that nothing a validation
does can take the catalog down. If the catalog dies (SIGKILL), the worker stops what it
started and itself: the job runs again when a catalog next starts. Like `validate()`,
it never unpickles the bundle.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["RESULT_MARKER", "STEP_MARKER", "WorkerJob", "main", "processes_in", "run_job"]

RESULT_MARKER = "modelwire-validation-result: "
STEP_MARKER = "step: "


@dataclass(frozen=True)
class WorkerJob:
    """What the worker validates, and how (see `modelwire.containers.validation.validate`).

    Attributes:
        bundle: the bundle's zip (the catalog's blob).
        docker: in its image as a sandbox; else in a fresh venv.
        user: venv mode: the user the model runs as (None: the worker's own).
    """

    bundle: str
    docker: bool
    memory: int
    cpus: float
    load_timeout: float
    call_timeout: float
    run_timeout: float
    repeat: int
    image_prefix: str
    user: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        return cls(**json.loads(text))


def run_job(job: WorkerJob) -> dict[str, Any]:
    """The worker's answer to one job: {"report": ...} or {"error": ...}."""
    from modelwire.bundle.report import report_json
    from modelwire.containers.validation import validate
    from modelwire.errors import ModelwireError

    def step(line: str) -> None:
        print(STEP_MARKER + line, file=sys.stderr, flush=True)

    try:
        report = validate(
            job.bundle,
            docker=job.docker,
            load_timeout=job.load_timeout,
            call_timeout=job.call_timeout,
            repeat=job.repeat,
            timeout=job.run_timeout,
            memory=job.memory,
            cpus=job.cpus,
            user=job.user,
            image_prefix=job.image_prefix,
            progress=step,
        )
    except ModelwireError as exc:  # the validator's own failure: nothing is known of the model
        return {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return {"report": report_json(report)}


def processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is in `folder` (Linux's /proc; none elsewhere):
    a venv's model runs in a session of its own (`run_as`), in the job's folder."""
    found = []
    inside = str(folder.resolve())
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cwd = os.readlink(entry / "cwd")
            if cwd == inside or cwd.startswith(inside + "/"):
                found.append(int(entry.name))
    return found


def _remove_my_sandboxes() -> None:
    """Remove the sandbox containers this process started (labelled with its pid)."""
    from modelwire.containers.sandbox import SANDBOX_LABEL

    with contextlib.suppress(Exception):  # best effort: the next catalog removes strays
        import docker

        client = docker.from_env(timeout=30)
        try:
            mine = {"label": [SANDBOX_LABEL, f"io.modelwire.pid={os.getpid()}"]}
            for c in client.api.containers(all=True, filters=mine):
                client.api.remove_container(c["Id"], force=True)
        finally:
            client.close()


def _die_with(parent: int, docker: bool) -> None:
    """Once the catalog that started this worker is gone: stop what the job runs, and end."""
    while os.getppid() == parent:
        time.sleep(1.0)
    if docker:
        _remove_my_sandboxes()
    for pid in processes_in(Path(tempfile.gettempdir())):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main() -> None:
    parent = os.getppid()
    job = WorkerJob.from_json(sys.stdin.read())
    threading.Thread(target=_die_with, args=(parent, job.docker), daemon=True).start()
    answer = run_job(job)
    print(RESULT_MARKER + json.dumps(answer, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
