"""`modelwire validate`: prove, in an environment made from the bundle alone, that it loads
and answers its examples as recorded.

`validate()` builds the environment from the bundle's own files (a fresh venv from its
requirements and modelwire's wheel, or its image with `docker=True`), runs
`python -m modelwire.runtime.replay` there (it serves the bundle, sends every example
and reports a `Trial`), and judges the trial here (`modelwire.bundle.verdict`). Nothing
is unpickled in this process: the pickle is only read with pickletools
(`modelwire.bundle.pickle_scan`), so the catalog can call this for every push.

Docker mode confines the model (`SandboxLimits`: no network, a read-only root, a
non-root user, memory, CPU and time limits). Venv mode is less isolated: the model is
a subprocess of this machine, with its network and file system; it can run as
another, unprivileged user (`user=`, needs root) with an address-space limit.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelwire.bundle.report import Environment, Failure, ValidationReport
from modelwire.containers.images import (
    DEFAULT_PREFIX,
    check_python,
    docker_client,
    ensure_image,
    inspect_base,
)
from modelwire.containers.sandbox import SandboxLimits, memory_bytes, run_sandbox
from modelwire.containers.validation_run import (
    ReplayOptions,
    ValidationRun,
    pip_reason,
    trial_from,
)
from modelwire.containers.venv_env import (
    Account,
    account,
    create_venv,
    find_python,
    install,
    run_as,
    wheelhouse,
)
from modelwire.containers.wheelhouse import Target
from modelwire.errors import ConfigError, ToolError

__all__ = ["validate"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


def validate(
    bundle: str | os.PathLike[str],
    *,
    docker: bool = False,
    load_timeout: float = 120.0,
    call_timeout: float = 30.0,
    repeat: int = 5,
    timeout: float = 600.0,
    memory: str | int = "2g",
    cpus: float = 1.0,
    network: bool = False,
    read_only: bool = True,
    user: str | int | None = None,
    base: str | None = None,
    image_prefix: str = DEFAULT_PREFIX,
    progress: Progress = _quiet,
    client: Any = None,
) -> ValidationReport:
    """Validate a bundle in an environment built from its own files.

    Args:
        bundle: the bundle (directory or zip).
        docker: run it in its image (built if needed), confined; else in a fresh venv.
        load_timeout: seconds the model has to report SERVING.
        call_timeout: seconds each call may take.
        repeat: how many times each example is sent (for the p50 latency).
        timeout: seconds the run (load and calls) may take; then it is stopped.
        memory: the memory limit (``2g``, ``512m`` or bytes): the container's, or in a
            venv the server's address space.
        cpus: CPUs the container may use (docker only).
        network: give the container a network (docker only; default none).
        read_only: a read-only root file system for the container (docker only).
        user: docker: `uid[:gid]` to run as instead of the image's non-root user; venv:
            a user name or uid to run the model as (needs root).
        base: the base image (default ``python:<the bundle's Python>-slim``).
        image_prefix: the prefix of the image's tag.
        progress: called with a line per step (environment building).
        client: a Docker SDK client to use (docker mode).

    Returns:
        The report; `passed` says whether the model loaded and answered every example.

    Raises:
        BundleError: the bundle is missing, malformed or tampered with.
        ConfigError: an invalid limit or user.
        ToolError: the validator's own tools failed (no Docker engine, modelwire's own
            wheels unavailable): nothing is known about the model then.
    """
    started = time.monotonic()
    size = memory if isinstance(memory, int) else memory_bytes(memory)
    replay = ReplayOptions(load_timeout, call_timeout, repeat, timeout)
    if docker:
        limits = SandboxLimits(network, read_only, size, cpus, timeout, str(user or ""))
        report = _in_docker(
            Path(bundle), started, limits, replay, base, image_prefix, progress, client
        )
    else:
        who = account(user) if user is not None else None
        report = _in_venv(Path(bundle), started, who, size, replay, progress)
    logger.info(
        "validated %s %s in %s: %s%s",
        report.name,
        report.version,
        report.environment.mode,
        "passed" if report.passed else "failed: ",
        report.reason,
        extra={"bundle": report.bundle, "passed": report.passed},
    )
    return report


def _in_venv(
    path: Path,
    started: float,
    who: Account | None,
    memory: int,
    replay: ReplayOptions,
    progress: Progress,
) -> ValidationReport:
    run = ValidationRun(path, started)
    isolation = (
        "a subprocess of this machine: its network and file system are not isolated",
        f"user {who.name} (uid {who.uid})" if who else "this process's user",
        f"memory {memory >> 20}m (address space)",
        f"time {replay.timeout:g} s",
    )
    env = Environment("venv", isolation=isolation)
    python = find_python(run.manifest.python, for_others=who is not None)
    if python is None:
        anyone = " that any user can run" if who else ""
        return run.failed(
            Failure.PYTHON,
            f"the bundle needs Python {run.manifest.python}, and no python{run.manifest.python}"
            f"{anyone} is installed here; install one, or validate with --docker",
            env,
            None,
        )
    workdir = Path(tempfile.mkdtemp(prefix="modelwire-validate-"))
    try:
        workdir.chmod(0o755)  # the model's user must reach the venv and the bundle
        t0 = time.monotonic()
        wheels, failed = wheelhouse(
            workdir / "context",
            Target.host(run.manifest.python),
            run.manifest.requirements,
            progress,
        )
        if failed is not None:
            return run.failed(
                Failure.REQUIREMENTS,
                f"its requirements cannot be installed: {pip_reason(failed)}",
                env,
                time.monotonic() - t0,
            )
        venv_python = create_venv(python, workdir / "venv", progress)
        try:
            install(venv_python, wheels, progress)
        except ToolError as exc:
            return run.failed(
                Failure.REQUIREMENTS,
                f"its requirements cannot be installed with modelwire: {pip_reason(exc)}",
                env,
                time.monotonic() - t0,
            )
        copy = workdir / ("bundle.zip" if run.bundle.path.is_file() else "bundle")
        if run.bundle.path.is_file():
            shutil.copyfile(run.bundle.path, copy)
            copy.chmod(0o644)
        else:
            shutil.copytree(run.bundle.path, copy, ignore=shutil.ignore_patterns("__pycache__"))
        env_seconds = time.monotonic() - t0
        progress(f"serving the bundle in the venv and sending {len(run.calls)} requests")
        argv = [
            str(venv_python),
            "-m",
            *replay.argv(str(copy)),
        ]
        argv += ["--memory", str(memory)]
        log = workdir / "server.log"
        finished = run_as(argv, cwd=workdir / "run", log=log, timeout=replay.timeout, user=who)
        tail = tuple(log.read_text(errors="replace").splitlines()[-40:])
        trial = trial_from(finished.stdout, finished.returncode, tail, finished.returncode is None)
        return run.judged(
            trial,
            env,
            env_seconds,
            oom_killed=False,
            timed_out=finished.returncode is None,
            time_limit=replay.timeout,
            load_timeout=replay.load_timeout,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _in_docker(
    path: Path,
    started: float,
    limits: SandboxLimits,
    replay: ReplayOptions,
    base: str | None,
    image_prefix: str,
    progress: Progress,
    client: Any,
) -> ValidationReport:
    run = ValidationRun(path, started)
    base = base or f"python:{run.manifest.python}-slim"
    env = Environment("docker", isolation=limits.describe())
    engine = client or docker_client()
    try:
        t0 = time.monotonic()
        base_image = inspect_base(engine, base, progress=progress)
        try:
            check_python(base_image, run.bundle)
        except ConfigError as exc:
            return run.failed(Failure.PYTHON, str(exc), env, None)
        with tempfile.TemporaryDirectory(prefix="modelwire-validate-") as tmp:
            _, failed = wheelhouse(
                Path(tmp), base_image.target, run.manifest.requirements, progress
            )
        if failed is not None:
            return run.failed(
                Failure.REQUIREMENTS,
                f"its requirements cannot be installed: {pip_reason(failed)}",
                env,
                time.monotonic() - t0,
            )
        try:
            ref = ensure_image(
                path, base=base, prefix=image_prefix, progress=progress, client=engine
            )
        except ToolError as exc:
            if not str(exc).startswith("docker build failed"):
                raise
            return run.failed(
                Failure.REQUIREMENTS,
                f"its image cannot be built: {pip_reason(exc)}",
                env,
                time.monotonic() - t0,
            )
        env = Environment("docker", image=ref.tag, isolation=limits.describe())
        entrypoint = engine.images.get(ref.tag).attrs["Config"]["Entrypoint"] or []
        if "serve" not in entrypoint or entrypoint.index("serve") + 1 >= len(entrypoint):
            raise ToolError(f"image {ref.tag} does not serve a bundle ({entrypoint!r})")
        inside = entrypoint[entrypoint.index("serve") + 1]
        env_seconds = time.monotonic() - t0
        progress(f"running {ref.tag} confined and sending {len(run.calls)} requests")
        ran = run_sandbox(
            engine,
            ref.tag,
            replay.argv(inside),
            limits,
        )
        stopped = ran.exit_status is None
        trial = trial_from(ran.stdout, ran.exit_status, ran.log_tail, stopped)
        return run.judged(
            trial,
            env,
            env_seconds,
            oom_killed=ran.oom_killed,
            timed_out=stopped,
            time_limit=limits.timeout,
            load_timeout=replay.load_timeout,
        )
    finally:
        if client is None:
            engine.close()
