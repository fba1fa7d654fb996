"""The catalog validating every pushed version: a queue in its database, one job at a time.

`Validator.submit()` queues a version as it is stored; one thread claims the oldest
pending job (`modelwire.catalog.validations`) and runs it as a
`modelwire.catalog.validation_worker` subprocess in a session of its own
(`modelwire.catalog.validation_process`), under the job's overall time limit (building
the environment included), recording its steps as it goes. What the bundle causes
ends the job, passed or failed, with its report; a failure of the validator itself (no
engine, no base image, no wheels) puts the job back in the queue to be retried later,
with backoff, and says so. A catalog that stops gives its running job back; one that
was killed has its claims released when a catalog next starts on the data directory,
which also queues every version that no validating catalog has queued yet.

In docker mode the sandboxes of dead validators are removed at start, and after each
job all but the newest `keep_images` validation images (under the catalog's own prefix).
The catalog process never unpickles a bundle: the worker does not either, and a job
that overran its time is failed from what the manifest says.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelwire.bundle.report import (
    Environment,
    Failure,
    ValidationReport,
    report_from_json,
    report_json,
)
from modelwire.catalog import validations
from modelwire.catalog.store import Store
from modelwire.catalog.validation_process import run_worker
from modelwire.catalog.validation_worker import WorkerJob
from modelwire.codegen.conventions import LABEL_DIGEST
from modelwire.config import ValidationConfig
from modelwire.errors import ConfigError, ToolError

__all__ = ["POLL_SECONDS", "Validator", "choose_mode", "prune_images"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 5.0  # how often the queue is looked at for jobs other processes queued
_BACKOFF = (30.0, 1800.0)  # the validator's own failures: the first retry, the longest wait


def choose_mode(mode: str) -> tuple[str, str]:
    """The mode to validate in, and why: `auto` is docker when an engine answers, else off.

    Raises:
        ConfigError: docker was asked for and no engine answers.
    """
    if mode in ("venv", "off"):
        return mode, "asked for"
    from modelwire.containers.images import docker_client

    try:
        docker_client().close()
    except ToolError as exc:
        if mode == "docker":
            raise ConfigError(
                "validate", "docker", f"{exc}; or choose --validate venv or off"
            ) from None
        return "off", str(exc)
    return "docker", "a Docker engine answers" if mode == "auto" else "asked for"


def _venv_user() -> str | None:
    """Who runs the model in venv mode: `nobody` when the catalog runs as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody").pw_name
    except KeyError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def prune_images(client: Any, prefix: str, keep: int) -> int:
    """Remove all but the `keep` newest validation images under `prefix`; how many went.

    Only images carrying modelwire's bundle label are touched; one a container still
    uses stays.
    """
    import docker.errors

    found = [
        image
        for image in client.api.images(filters={"reference": f"{prefix}/*"})
        if (image.get("Labels") or {}).get(LABEL_DIGEST)
    ]
    found.sort(key=lambda image: int(image.get("Created") or 0), reverse=True)
    removed = 0
    for image in found[keep:]:
        for tag in image.get("RepoTags") or ():
            if tag.startswith(f"{prefix}/"):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    client.images.remove(tag)
                    removed += 1
    return removed


class Validator:
    """Validates every version pushed to one store, one job at a time.

    Args:
        store: the catalog's store.
        config: the limits and where images go.
        mode: ``docker`` or ``venv`` (`choose_mode` resolved ``auto``).
    """

    def __init__(self, store: Store, config: ValidationConfig, mode: str) -> None:
        if mode not in ("docker", "venv"):
            raise ValueError(f"a Validator validates in docker or venv, not {mode!r}")
        self.store = store
        self.config = config
        self.mode = mode
        self.user = _venv_user() if mode == "venv" else None
        self.claimer = f"{os.getpid()}:{secrets.token_hex(6)}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life cycle

    def describe(self) -> str:
        """One line for the catalog's log at start: how pushed versions are validated."""
        c = self.config
        if self.mode == "docker":
            return (
                "validating every pushed version in docker: no network, a read-only root, "
                f"a non-root user, memory {c.memory >> 20}m, cpus {c.cpus:g}, "
                f"{c.run_timeout:g} s to load and answer, {c.job_timeout:g} s per job"
            )
        who = f"user {self.user}" if self.user else "this catalog's own user"
        return (
            "validating every pushed version in a fresh venv on this machine, NOT "
            f"isolated: the model runs as {who} with this machine's network and the files "
            f"that user may read or write{'' if self.user else ', the catalog data included'}"
            "; --validate docker runs it in a sandbox"
        )

    def start(self) -> None:
        """Start the worker thread (it first recovers what a killed catalog left)."""
        self._thread = threading.Thread(target=self._loop, name="validation", daemon=True)
        self._thread.start()

    def submit(self, model: int) -> None:
        """Queue a version that was just stored."""
        validations.queue(self.store.db, model)
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running job (it goes back to the queue) and the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------ the worker thread

    def _loop(self) -> None:
        try:
            self._recover()
        except Exception:
            logger.exception("could not recover the validation queue")
        while not self._stopping.is_set():
            try:
                job = validations.claim_next(self.store.db, self.claimer, time.time())
                if job is None:
                    self._idle()
                    continue
                self._run(job)
            except Exception:  # a bug here must not end validation for good
                logger.exception("the validation queue failed; trying again shortly")
                self._stopping.wait(POLL_SECONDS)

    def _idle(self) -> None:
        wait = POLL_SECONDS
        retry = validations.next_retry(self.store.db)
        if retry is not None:
            wait = min(wait, max(0.05, retry - time.time()))
        self._wake.wait(wait)
        self._wake.clear()

    def _recover(self) -> None:
        def dead(claimer: str) -> bool:
            pid = claimer.partition(":")[0]
            if not pid.isdigit():
                return True
            if int(pid) == os.getpid():
                return claimer != self.claimer  # a predecessor with our pid (a container)
            return not _alive(int(pid))

        released = validations.release_dead_claims(self.store.db, dead)
        queued = validations.queue_unlooked(self.store.db)
        if released or queued:
            logger.info(
                "validation: %d job(s) of a stopped catalog queued again, %d version(s) "
                "never validated queued",
                len(released),
                queued,
            )
        if self.mode == "docker":
            self._docker_cleanup(prune=False)

    def _docker_cleanup(self, *, prune: bool) -> None:
        from modelwire.containers.images import docker_client
        from modelwire.containers.sandbox import remove_strays

        try:
            client = docker_client()
        except ToolError as exc:
            logger.warning("cannot clean up validation containers: %s", exc)
            return
        try:
            strays = remove_strays(client)
            pruned = prune_images(client, self.config.image_prefix, self.config.keep_images)
            if strays or (prune and pruned):
                logger.info(
                    "validation: removed %d stray sandbox(es) and %d old image(s)",
                    strays,
                    pruned,
                )
        finally:
            client.close()

    # ------------------------------------------------------------ one job

    def _run(self, job: validations.Job) -> None:
        ref = f"{job.name}:{job.version}"
        logger.info("validating %s in %s", ref, self.mode, extra={"model": ref})
        c = self.config
        spec = WorkerJob(
            bundle=str(self.store.blob_path(job.sha256)),
            docker=self.mode == "docker",
            memory=c.memory,
            cpus=c.cpus,
            load_timeout=c.load_timeout,
            call_timeout=c.call_timeout,
            run_timeout=c.run_timeout,
            repeat=c.repeat,
            image_prefix=c.image_prefix,
            user=self.user,
        )

        def step(note: str) -> None:
            validations.set_note(self.store.db, job, self.claimer, note, mode=self.mode)

        folder = Path(tempfile.mkdtemp(prefix="modelwire-catalog-job-"))
        try:
            folder.chmod(0o711)  # venv mode: the model's user must reach its venv in here
            outcome = run_worker(
                spec, folder, timeout=c.job_timeout, stopping=self._stopping, on_step=step
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if self.mode == "docker":
                self._docker_cleanup(prune=True)
        if outcome.stopped:
            validations.release(self.store.db, job, self.claimer)
        elif outcome.overran:
            self._overran(job, outcome.step)
        elif outcome.answer is not None and "report" in outcome.answer:
            try:
                report = report_from_json(outcome.answer["report"])
            except ValueError as exc:
                self._retry(job, f"the worker's report cannot be read ({exc})")
            else:
                self._verdict(job, replace(report, bundle=ref))
        else:
            self._retry(job, outcome.problem())

    def _verdict(self, job: validations.Job, report: ValidationReport) -> None:
        ref = f"{job.name}:{job.version}"
        validations.finish(
            self.store.db,
            job,
            self.claimer,
            passed=report.passed,
            mode=report.environment.mode or self.mode,
            reason=report.reason,
            report=json.dumps(report_json(report), sort_keys=True),
        )
        logger.info(
            "validation of %s %s%s",
            ref,
            "passed" if report.passed else "failed: ",
            report.reason,
            extra={"model": ref, "passed": report.passed},
        )

    def _retry(self, job: validations.Job, problem: str) -> None:
        wait = min(_BACKOFF[1], _BACKOFF[0] * 2**job.attempts)
        at = time.time() + wait
        when = time.strftime("%H:%M:%S", time.localtime(at))
        note = f"the validator failed ({problem}); it tries again at {when}"
        validations.retry_later(self.store.db, job, self.claimer, note, at)
        logger.warning(
            "could not validate %s:%s: %s; retrying in %.0f s",
            job.name,
            job.version,
            problem,
            wait,
            extra={"model": f"{job.name}:{job.version}"},
        )

    def _overran(self, job: validations.Job, step: str) -> None:
        """Fail a job that overran the catalog's limit, from what its manifest says."""
        from modelwire.containers.validation_run import ValidationRun

        limit = self.config.job_timeout
        reason = (
            f"the validation took longer than the catalog's limit of {limit:g} s per job "
            "(building its environment included) and was stopped"
            + (f" at the step {step!r}" if step else "")
        )
        run = ValidationRun(self.store.blob_path(job.sha256), time.monotonic() - limit)
        report = run.failed(Failure.TIMEOUT, reason, Environment(self.mode), None)
        self._verdict(job, replace(report, bundle=f"{job.name}:{job.version}"))
