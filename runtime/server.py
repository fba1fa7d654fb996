"""Run a model service: the gRPC server, health, reflection, metrics, signals.

`start()` runs a loaded model in this process and returns a handle (tests and
embedding use it). `serve()` is what `modelwire serve` runs: it loads a bundle,
announces the bound address on stdout in one stable line,

    modelwire runtime listening on 127.0.0.1:50321

and on SIGTERM or SIGINT reports NOT_SERVING, lets in-flight calls finish
(up to the grace period) and returns 0. With several workers it supervises that
many processes sharing one port (see `modelwire.runtime.workers`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelwire.bundle import LoadedModel, load
from modelwire.config import RuntimeConfig
from modelwire.errors import ConfigError
from modelwire.hosting.binding import bind, check_port_free, connect_host, format_host, grpc_options
from modelwire.hosting.health import AioHealthServicer, HealthServicer
from modelwire.hosting.info import info_handler
from modelwire.hosting.metrics import Metrics
from modelwire.hosting.metrics_http import MetricsServer
from modelwire.hosting.process import tune_malloc, wait_for_signal
from modelwire.hosting.reflection import enable_reflection
from modelwire.runtime.service import ModelService

__all__ = [
    "LISTENING",
    "RunningServer",
    "serve",
    "start",
    "start_aio",
    "tune_malloc",
    "wait_for_signal",
]

logger = logging.getLogger(__name__)

LISTENING = "modelwire runtime listening on"


def _info(loaded: LoadedModel, *, aio: bool) -> grpc.GenericRpcHandler:
    m = loaded.manifest
    return info_handler(m.name, m.version, dict(m.raw), aio=aio)


@dataclass
class RunningServer:
    """A model service running in this process (sync server)."""

    server: grpc.Server
    port: int
    host: str
    service: ModelService
    health: HealthServicer
    metrics: Metrics
    metrics_server: MetricsServer | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, finish in-flight calls (up to `grace` s), stop."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.metrics_server is not None:
            self.metrics_server.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(0)


def start(
    loaded: LoadedModel,
    config: RuntimeConfig | None = None,
    *,
    reuse_port: bool = False,
) -> RunningServer:
    """Serve a loaded model from this process with the sync (thread pool) server.

    Args:
        loaded: the model.
        config: how to serve it (default: 127.0.0.1, a free port).
        reuse_port: share the port with sibling workers.

    Raises:
        ConfigError: the port or the metrics port cannot be bound.

    Example:
        >>> with start(load("build/iris"), RuntimeConfig(port=0)) as running:  # doctest: +SKIP
        ...     print(running.address)
    """
    config = config or RuntimeConfig(port=0)
    if not reuse_port:
        check_port_free(config.host, config.port)
    metrics = Metrics(loaded.manifest.name, loaded.manifest.version)
    service = ModelService(
        loaded, metrics, access_log=config.access_log, max_message_bytes=config.max_message_bytes
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="modelwire"),
        options=grpc_options(config.max_message_bytes, reuse_port=reuse_port),
    )
    server.add_generic_rpc_handlers((service.generic_handler(), _info(loaded, aio=False)))
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, [service.service_name], [service.file])
    port = bind(server, config.address)
    server.start()
    for name in ("", service.service_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics_server = None
    if config.metrics_port is not None:
        try:
            metrics_server = MetricsServer(config.host, config.metrics_port, metrics.exposition)
        except ConfigError:
            server.stop(None).wait()
            raise
    return RunningServer(
        server,
        port,
        connect_host(config.host),
        service,
        health_servicer,
        metrics,
        metrics_server,
    )


async def start_aio(
    loaded: LoadedModel, config: RuntimeConfig, *, reuse_port: bool = False
) -> tuple[grpc.aio.Server, int, Any, Metrics, ModelService]:
    """Serve a loaded model with the asyncio server; the model runs on the event loop."""
    if not reuse_port:
        check_port_free(config.host, config.port)
    metrics = Metrics(loaded.manifest.name, loaded.manifest.version)
    service = ModelService(
        loaded, metrics, access_log=config.access_log, max_message_bytes=config.max_message_bytes
    )
    server = grpc.aio.server(options=grpc_options(config.max_message_bytes, reuse_port=reuse_port))
    server.add_generic_rpc_handlers((service.generic_handler(aio=True), _info(loaded, aio=True)))
    health_servicer = AioHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, [service.service_name], [service.file])
    port = bind(server, config.address)
    await server.start()
    for name in ("", service.service_name):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer, metrics, service


def _describe_metrics(host: str, port: int) -> None:
    logger.info(
        "metrics at http://%s:%d/metrics",
        format_host(host),
        port,
        extra={"metrics_port": port},
    )


def _describe(loaded: LoadedModel, config: RuntimeConfig, port: int) -> None:
    logger.info(
        "serving %s %s (%s) on %s:%d with the %s server",
        loaded.manifest.name,
        loaded.manifest.version,
        ", ".join(m.name for m in loaded.schema.methods),
        config.host,
        port,
        config.server,
        extra={"bundle": str(loaded.path)},
    )


def serve(
    bundle: str,
    config: RuntimeConfig,
    *,
    announce: Callable[[str], None] | None = None,
    reuse_port: bool = False,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """Load and serve a bundle until SIGTERM/SIGINT; returns the exit status.

    Args:
        bundle: path of the bundle (directory or zip).
        config: how to serve it.
        announce: called with the listening line once the service is SERVING.
        reuse_port: share the port with sibling workers.
        on_ready: called with the bound port once SERVING.

    Raises:
        BundleError: the bundle cannot be loaded.
        ConfigError: the address cannot be bound.
    """
    tune_malloc()
    if config.workers > 1:
        from modelwire.runtime.workers import supervise

        return supervise(bundle, config, announce=announce)
    loaded = load(bundle)
    if config.server == "aio":
        return asyncio.run(_serve_aio(loaded, config, announce, reuse_port, on_ready))
    running = start(loaded, config, reuse_port=reuse_port)
    _describe(loaded, config, running.port)
    if running.metrics_server is not None:
        _describe_metrics(config.host, running.metrics_server.port)

    def ready() -> None:
        if announce is not None:
            announce(f"{LISTENING} {format_host(config.host)}:{running.port}")
        if on_ready is not None:
            on_ready(running.port)

    signum = wait_for_signal(ready)
    logger.info(
        "%s received: draining in-flight calls (up to %.0f s)",
        signal.Signals(signum).name,
        config.grace_seconds,
    )
    running.stop(config.grace_seconds)
    logger.info("stopped")
    return 0


async def _serve_aio(
    loaded: LoadedModel,
    config: RuntimeConfig,
    announce: Callable[[str], None] | None,
    reuse_port: bool,
    on_ready: Callable[[int], None] | None,
) -> int:
    server, port, health_servicer, metrics, _ = await start_aio(
        loaded, config, reuse_port=reuse_port
    )
    metrics_server = None
    if config.metrics_port is not None:
        try:
            metrics_server = MetricsServer(config.host, config.metrics_port, metrics.exposition)
        except ConfigError:
            await server.stop(None)
            raise
    _describe(loaded, config, port)
    if metrics_server is not None:
        _describe_metrics(config.host, metrics_server.port)
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, on_signal, s)
    if announce is not None:
        announce(f"{LISTENING} {format_host(config.host)}:{port}")
    if on_ready is not None:
        on_ready(port)
    await stop.wait()
    logger.info(
        "%s received: draining in-flight calls (up to %.0f s)",
        signal.Signals(received[0]).name,
        config.grace_seconds,
    )
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_seconds)
    if metrics_server is not None:
        metrics_server.close()
    logger.info("stopped")
    return 0
