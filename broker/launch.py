"""`modelwire run`: check a blueprint, start its models, serve the solution, stop it all.

The embedded default (`LocalModels`) starts every `bundle:` model as a local
`modelwire serve --port 0 --no-http` process (the solution answers HTTP itself). Each
child asks the kernel for SIGTERM when this process dies (MODELWIRE_PARENT_PID, see
`modelwire.hosting.process.follow_parent`), so even a SIGKILLed broker leaves no model
processes behind.

With `--docker` (`modelwire.containers.runner.DockerModels`) every bundle model
runs as a container of its image, built once per bundle digest, on a Docker
network made for this run; the broker stays on this host and reaches them
through loopback ports. Containers and network are removed when the run stops.

Either way, Ctrl-C and SIGTERM stop everything in order: the solution drains
first, then the models; the models' logs are relayed into the broker's, each
record naming its model. `address:` models are waited for (up to the startup
timeout) before the blueprint is checked: on Kubernetes the broker may start
before its models.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc

from modelwire.broker.blueprint import Blueprint
from modelwire.broker.check import check_blueprint, read_blueprint
from modelwire.broker.plan import SolutionPlan
from modelwire.broker.resolve import CatalogResolver
from modelwire.broker.service import LISTENING, start_solution
from modelwire.config import BrokerConfig
from modelwire.containers.images import DEFAULT_BASE, DEFAULT_PREFIX
from modelwire.containers.runner import DockerModels
from modelwire.errors import ServiceError
from modelwire.hosting.binding import check_port_free
from modelwire.hosting.process import (
    ENV_PARENT_PID,
    Interrupted,
    interrupt,
    signals_to,
    tune_malloc,
    uninterrupted,
)
from modelwire.hosting.remote import wait_ready, wait_serving

__all__ = ["LISTENING", "DockerModels", "LocalModels", "Models", "run"]

logger = logging.getLogger(__name__)

_MODEL_LISTENING = "modelwire runtime listening on"


class Models(Protocol):
    """How `run` starts the bundle models and stops them again."""

    def start(self, timeout: float) -> dict[str, str]:
        """Start every model; wait until each reports SERVING. Returns their addresses."""

    def stop(self, grace: float) -> None:
        """Stop every model started (also after a failed or interrupted start)."""


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[str]
    address: str | None = None
    stderr: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    stderr_done: threading.Event = field(default_factory=threading.Event)


class LocalModels:
    """Bundle models as local `modelwire serve` processes on free loopback ports."""

    def __init__(self, bundles: dict[str, Path], *, max_message_mb: int = 256) -> None:
        self.bundles = bundles
        self.max_message_mb = max_message_mb
        self.children: dict[str, _Child] = {}

    def start(self, timeout: float) -> dict[str, str]:
        """Start every model at once; wait until each reports SERVING. Returns addresses."""
        for name, path in self.bundles.items():
            # a signal between the fork and the registration would lose the child to stop()
            with uninterrupted():
                self._spawn(name, path)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            while not child.ready.wait(0.05):
                if (exited := self._exited(child)) is not None:
                    raise ServiceError(exited)
                if time.monotonic() > deadline:
                    raise ServiceError(f"model {child.name!r} did not start within {timeout:g} s")
        for child in self.children.values():
            assert child.address is not None
            wait_serving(
                child.address,
                max(0.0, deadline - time.monotonic()),
                alive=functools.partial(self._exited, child),
                what=f"model {child.name!r}",
            )
            logger.info(
                "model %s serving at %s",
                child.name,
                child.address,
                extra={"model": child.name, "address": child.address},
            )
        return {name: c.address for name, c in self.children.items() if c.address}

    def _exited(self, child: _Child) -> str | None:
        """Why `child` is gone (its status and last words), or None while it runs."""
        if child.proc.poll() is None:
            return None
        child.stderr_done.wait(5)  # its last words, before they are quoted
        tail = "".join(child.stderr[-10:]).strip()
        return (
            f"model {child.name!r} ({self.bundles[child.name]}) exited with status "
            f"{child.proc.returncode} before serving:\n{tail}"
        )

    def _spawn(self, name: str, path: Path) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelwire",
                "serve",
                str(path),
                "--port",
                "0",
                "--host",
                "127.0.0.1",
                "--max-message-mb",
                str(self.max_message_mb),
                "--no-http",  # the broker calls its models over gRPC only
                "--log-format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, ENV_PARENT_PID: str(os.getpid())},
        )
        child = _Child(name, proc)
        self.children[name] = child
        threading.Thread(target=self._read_stdout, args=(child,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(child,), daemon=True).start()

    def _read_stdout(self, child: _Child) -> None:
        assert child.proc.stdout is not None
        for line in child.proc.stdout:
            if line.startswith(_MODEL_LISTENING):
                child.address = line[len(_MODEL_LISTENING) :].strip()
                child.ready.set()
        child.proc.stdout.close()

    def _read_stderr(self, child: _Child) -> None:
        assert child.proc.stderr is not None
        try:
            for line in child.proc.stderr:
                child.stderr.append(line)
                if len(child.stderr) > 200:
                    del child.stderr[:100]
                _relay(child.name, line)
            child.proc.stderr.close()
        finally:
            child.stderr_done.set()

    def stop(self, grace: float) -> None:
        """SIGTERM every model, wait for them (then SIGKILL stragglers)."""
        for c in self.children.values():
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        for c in self.children.values():
            try:
                c.proc.wait(grace + 5)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        for c in self.children.values():
            c.stderr_done.wait(5)  # their last log lines are relayed before we return

    @property
    def pids(self) -> dict[str, int]:
        return {name: c.proc.pid for name, c in self.children.items()}


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_RECORD_KEYS = frozenset({"time", "level", "logger", "message", "traceback"})
_STANDARD = frozenset(vars(logging.makeLogRecord({})))  # names `extra=` must not use
models_logger = logging.getLogger("modelwire.broker.models")


def _relay(model: str, line: str) -> None:
    """A model's log line, logged again by the broker with `model` added.

    Models log JSON (`--log-format json`); the broker's own format then applies to their
    records too. Their tracebacks matter most: a failed step's status tells the caller the
    traceback is in the model's log.
    """
    text = line.rstrip("\n")
    if not text.strip():
        return
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "message" not in doc:
        # not a log record: e.g. `modelwire serve` reporting why it cannot start
        level = logging.ERROR if text.startswith("error: ") else logging.WARNING
        models_logger.log(level, "%s: %s", model, text, extra={"model": model})
        return
    message = str(doc["message"])
    if doc.get("traceback"):
        message += "\n" + str(doc["traceback"])
    extra = {k: v for k, v in doc.items() if k not in _RECORD_KEYS and k not in _STANDARD}
    extra["model"] = model
    extra["model_logger"] = doc.get("logger", "")
    level = _LEVELS.get(str(doc.get("level")), logging.INFO)
    models_logger.log(level, "%s: %s", model, message, extra=extra)


def run(
    path: str | Path,
    config: BrokerConfig,
    *,
    announce: Callable[[str], None] | None = None,
    catalog: CatalogResolver | None = None,
    base: str = DEFAULT_BASE,
    image_prefix: str = DEFAULT_PREFIX,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Check `path`, start its models, serve the solution until SIGTERM/SIGINT; exit status.

    Args:
        base: with `config.docker`, the base image of the models' images.
        image_prefix: with `config.docker`, the prefix of their tags.
        progress: with `config.docker`, where image builds report their steps.

    Raises:
        BlueprintError: the blueprint has errors (nothing was started).
        ConfigError: the solution's port or metrics port is taken (nothing was started).
        ServiceError: a model could not be started.
    """
    tune_malloc()  # large messages pass through the broker as they do through models
    bp, diagnostics = read_blueprint(path)
    if not diagnostics:
        wait_for_addresses(bp, config.startup_seconds)
    plan, bundles, addresses = check_blueprint(bp, diagnostics, catalog=catalog)
    # a busy port fails before any model is started, not after they all are
    check_port_free(config.host, config.port)
    if config.http_port:
        check_port_free(config.host, config.http_port, "http_port")
    if config.metrics_port:
        check_port_free(config.host, config.metrics_port, "metrics_port")
    models: Models
    if config.docker:
        models = DockerModels(
            bundles,
            solution=plan.schema.name,
            base=base,
            image_prefix=image_prefix,
            max_message_mb=config.max_message_mb,
            progress=progress,
            relay=_relay,
        )
    else:
        models = LocalModels(bundles, max_message_mb=config.max_message_mb)
    try:
        # A SIGTERM or Ctrl-C before the solution serves (and handles them) unwinds through
        # `finally`, which stops what was started: containers would outlive us otherwise,
        # and local models, which die with us anyway, would be cut off mid-load.
        with signals_to(interrupt):
            addresses = {**addresses, **models.start(config.startup_seconds)}
            return asyncio.run(_serve(plan, addresses, config, announce))
    except Interrupted as stop:
        logger.warning("%s received while the models were starting: stopping them", stop)
        return 128 + stop.signum
    finally:
        with signals_to(_already_stopping):
            models.stop(config.grace_seconds)
        logger.info("stopped")


def _already_stopping(signum: int, frame: object) -> None:
    logger.warning("%s received: already stopping the models", signal.Signals(signum).name)


_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def wait_for_addresses(bp: Blueprint, seconds: float) -> None:
    """Wait up to `seconds` for the blueprint's `address:` models to answer.

    Only reachability is waited for: once a server answers (or time is up), the
    check (`modelwire.broker.check.check_blueprint`) reports whatever is wrong with it.
    """
    deadline = time.monotonic() + seconds
    for m in bp.models.values():
        if m.kind != "address":
            continue
        waited = False
        while True:
            remaining = deadline - time.monotonic()
            try:
                # a new channel each time: no reconnect or DNS backoff carried over
                with grpc.insecure_channel(m.value, options=_FAST_RECONNECT) as channel:
                    wait_ready(channel, m.value, max(0.1, min(1.0, remaining)))
            except ServiceError:
                if time.monotonic() >= deadline:
                    break
                if not waited:
                    logger.info(
                        "waiting for model %s at %s (up to %.0f s)",
                        m.name,
                        m.value,
                        remaining,
                        extra={"model": m.name, "address": m.value},
                    )
                    waited = True
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
            if waited:
                logger.info("model %s at %s answers", m.name, m.value, extra={"model": m.name})
            break


async def _serve(
    plan: SolutionPlan,
    addresses: dict[str, str],
    config: BrokerConfig,
    announce: Callable[[str], None] | None,
) -> int:
    running = await start_solution(plan, addresses, config)
    logger.info(
        "serving solution %s (%s) on %s",
        plan.schema.name,
        "; ".join(plan.summary()),
        running.address,
    )
    await running.run(announce)
    return 0
