"""`modelwire run`: check a blueprint, start its models, serve the solution, supervise
the models, stop it all.

The embedded default (`modelwire.broker.local_models.LocalModels`) starts every
`bundle:` model as a local `modelwire serve --port 0 --no-http` process (the solution
answers HTTP itself); with `--docker` (`modelwire.containers.runner.DockerModels`) every
bundle model runs as a container of its image on a Docker network made for this run.

A model with `replicas: N` (or `--replicas MODEL=N`) runs as N processes or
containers (`modelwire.broker.replicas`), each supervised on its own; the broker
balances the calls over those that serve.

Either way the models are supervised once the solution serves
(`modelwire.hosting.supervisor`): a model that exits, is killed, or stops answering its
health checks (the router's probes, `modelwire.broker.endpoints`) is logged once and
restarted with backoff on a new address, which the router switches to as soon as it
reports SERVING; while it is down the methods that need it are NOT_SERVING and their
calls fail at once with UNAVAILABLE. A model whose restarts keep failing is reported
failed, and the methods that do not need it serve on.

Ctrl-C and SIGTERM stop everything in order: the solution drains first, then the
models; the models' logs are relayed into the broker's, each record naming its model.
`address:` models are waited for (up to the startup timeout) before the blueprint is
checked: on Kubernetes the broker may start before its models.

With fusing (`run --fuse`, or `fuse:` in the blueprint) the models that can fuse are
loaded into this process instead (`modelwire.broker.fused`); nobody supervises them:
a crash of a fused model is a crash of the solution.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from modelwire.broker.blueprint import Blueprint
from modelwire.broker.check import check_blueprint, read_blueprint
from modelwire.broker.fused import FusedModel, load_fused
from modelwire.broker.local_models import LocalModels
from modelwire.broker.model_logs import relay
from modelwire.broker.plan import SolutionPlan
from modelwire.broker.replicas import Replica, plan_replicas
from modelwire.broker.resolve import CatalogResolver
from modelwire.broker.service import LISTENING, start_solution
from modelwire.config import BrokerConfig
from modelwire.containers.images import DEFAULT_BASE, DEFAULT_PREFIX
from modelwire.containers.runner import DockerModels
from modelwire.errors import ConfigError, ServiceError
from modelwire.hosting.binding import check_port_free
from modelwire.hosting.process import Interrupted, interrupt, signals_to, tune_malloc
from modelwire.hosting.remote import wait_ready
from modelwire.hosting.supervisor import Instance, RestartPolicy, Supervisor
from modelwire.hosting.tls import open_channel, tls_note

__all__ = ["LISTENING", "DockerModels", "LocalModels", "Models", "run"]

logger = logging.getLogger(__name__)


class Models(Protocol):
    """How `run` starts the bundle models, starts them again, and stops them."""

    def start(self, timeout: float) -> dict[str, str]:
        """Start every model; wait until each reports SERVING. Returns their addresses."""

    def spawn(self, name: str) -> Instance:
        """Start one more copy of model `name` (its supervisor waits for it)."""

    @property
    def instances(self) -> Mapping[str, Instance]:
        """The copy of each model `start()` started."""

    def stop(self, grace: float) -> None:
        """Stop every copy started (also after a failed or interrupted start)."""


def run(
    path: str | Path,
    config: BrokerConfig,
    *,
    announce: Callable[[str], None] | None = None,
    catalog: CatalogResolver | None = None,
    base: str = DEFAULT_BASE,
    image_prefix: str = DEFAULT_PREFIX,
    progress: Callable[[str], None] | None = None,
    replicas: Mapping[str, int] | None = None,
) -> int:
    """Check `path`, start its models, serve the solution until SIGTERM/SIGINT; exit status.

    Args:
        base: with `config.docker`, the base image of the models' images.
        image_prefix: with `config.docker`, the prefix of their tags.
        progress: with `config.docker`, where image builds report their steps.
        replicas: model -> how many copies to start, over the blueprint's `replicas`.

    Raises:
        BlueprintError: the blueprint has errors (nothing was started).
        ConfigError: the solution's port or metrics port is taken, `replicas` names a
            model that has none, or --docker is asked for with fused models (nothing was
            started).
        ServiceError: a model could not be started.
    """
    tune_malloc()  # large messages pass through the broker as they do through models
    bp, diagnostics = read_blueprint(path)
    if not diagnostics:
        wait_for_addresses(bp, config.startup_seconds)
    plan, bundles, addresses = check_blueprint(bp, diagnostics, catalog=catalog, fuse=config.fuse)
    fusing = {name: path for name, path in bundles.items() if name in plan.fused}
    if fusing and config.docker:
        raise ConfigError(
            "docker",
            None,
            "--docker runs every model in a container of its own and cannot fuse models "
            f"({', '.join(fusing)}) into the broker yet; run without --docker, or without "
            "fusing (no --fuse, no 'fuse: true')",
            source="default",
        )
    bundles = {name: path for name, path in bundles.items() if name not in fusing}
    copies = plan_replicas(bp, bundles, replicas)
    started = {r.key: bundles[r.model] for r in copies}
    # a busy port fails before any model is started, not after they all are
    check_port_free(config.host, config.port)
    if config.http_port:
        check_port_free(config.host, config.http_port, "http_port")
    if config.metrics_port:
        check_port_free(config.host, config.metrics_port, "metrics_port")
    models: Models
    if config.docker:
        models = DockerModels(
            started,
            solution=plan.schema.name,
            base=base,
            image_prefix=image_prefix,
            max_message_mb=config.max_message_mb,
            progress=progress,
            relay=relay,
        )
    else:
        models = LocalModels(started, max_message_mb=config.max_message_mb, relay=relay)
    fused: dict[str, FusedModel] = {}
    try:
        # A SIGTERM or Ctrl-C before the solution serves (and handles them) unwinds through
        # `finally`, which stops what was started: containers would outlive us otherwise,
        # and local models, which die with us anyway, would be cut off mid-load.
        with signals_to(interrupt):
            fused = load_fused(fusing, max_message_bytes=config.max_message_bytes)
            at = models.start(config.startup_seconds)
            every: dict[str, str | list[str]] = dict(addresses)
            for r in copies:
                every.setdefault(r.model, [])
                every_of = every[r.model]
                assert isinstance(every_of, list)
                every_of.append(at[r.key])
            return asyncio.run(_serve(plan, every, copies, models, config, announce, fused))
    except Interrupted as stop:
        logger.warning("%s received while the models were starting: stopping them", stop)
        return 128 + stop.signum
    finally:
        with signals_to(_already_stopping):
            models.stop(config.grace_seconds)
            for model in fused.values():
                model.close()
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
                with open_channel(m.value, m.tls, _FAST_RECONNECT) as channel:
                    wait_ready(channel, m.value, max(0.1, min(1.0, remaining)), tls=m.tls)
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
    addresses: dict[str, str | list[str]],
    copies: list[Replica],
    models: Models,
    config: BrokerConfig,
    announce: Callable[[str], None] | None,
    fused: Mapping[str, FusedModel],
) -> int:
    supervisor: Supervisor | None = None
    because = f"stopped answering its health checks for {config.liveness_seconds:g} s"
    replica = {r.key: r for r in copies}
    keys: dict[str, list[str]] = {}
    for r in copies:
        keys.setdefault(r.model, []).append(r.key)

    def unresponsive(model: str, address: str) -> None:
        if supervisor is not None:  # `address:` models are nobody's to kill
            for key in keys.get(model, ()):  # only the replica at `address` is killed
                supervisor.kill(key, address, because)

    running = await start_solution(
        plan, addresses, config, on_unresponsive=unresponsive, fused=fused
    )
    endpoints = running.router.endpoints

    def changed(key: str, address: str | None, why: str) -> None:
        r = replica[key]
        endpoints.replace_threadsafe(r.model, address, why, r.index)

    supervisor = Supervisor(
        "model",
        models.spawn,
        RestartPolicy(backoff=config.restart_backoff, max_restarts=config.max_restarts),
        config.startup_seconds,
        changed,
    )
    for key, instance in models.instances.items():
        r = replica[key]
        at = addresses[r.model]
        supervisor.adopt(key, instance, at[r.index] if isinstance(at, list) else at)
    logger.info(
        "serving solution %s (%s) on %s%s",
        plan.schema.name,
        "; ".join(plan.summary()),
        running.address,
        tls_note(config.tls),
    )
    try:
        await running.run(announce)
    finally:
        supervisor.stop()  # nothing is restarted while the models are stopped
    return 0
