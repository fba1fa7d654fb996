"""Run a model service: a loaded model's rpcs over gRPC and HTTP, served by the service host.

`start()` (sync) and `start_aio()` run a loaded model in this process and return a
handle (tests and embedding use them). `serve()` is what `modelwire serve` runs: it
loads a bundle, announces the bound addresses on stdout in stable lines, the HTTP
face's (unless `http_port` is None) and then the gRPC one's,

    modelwire runtime http on 127.0.0.1:8080
    modelwire runtime listening on 127.0.0.1:50321

and on SIGTERM or SIGINT reports NOT_SERVING, lets in-flight calls finish (up to the
grace period) and returns 0. With several workers it supervises that many processes
sharing the ports (see `modelwire.runtime.workers`). Binding, health, reflection, model
info, metrics and draining are the host's (`modelwire.hosting.host`); the HTTP face
(`modelwire.hosting.http_face`) calls the same `ModelService.call` as the gRPC
handlers, so one model object serves both. The sync server calls the model from a pool
of `threads` threads on both faces; the aio server on its event loop, on both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelwire.bundle import LoadedModel, load
from modelwire.config import RuntimeConfig
from modelwire.hosting.host import (
    AioServiceHost,
    HostSpec,
    Info,
    Listen,
    Service,
    ServiceHost,
    ServingState,
)
from modelwire.hosting.http_face import HttpFace
from modelwire.hosting.http_host import AioHttpListener, HttpListen, HttpListener
from modelwire.hosting.metrics import Metrics
from modelwire.hosting.process import tune_malloc
from modelwire.hosting.tls import tls_note
from modelwire.runtime.http_handlers import async_unary_handlers, unary_handlers
from modelwire.runtime.service import ModelService

__all__ = [
    "HTTP_LISTENING",
    "LISTENING",
    "RunningAioServer",
    "RunningServer",
    "serve",
    "start",
    "start_aio",
]

logger = logging.getLogger(__name__)

LISTENING = "modelwire runtime listening on"
HTTP_LISTENING = "modelwire runtime http on"


def _host_spec(
    loaded: LoadedModel,
    config: RuntimeConfig,
    service: ModelService,
    metrics: Metrics,
    *,
    aio: bool,
    reuse_port: bool,
    also: tuple[str, ...] = (),
) -> HostSpec:
    m = loaded.manifest
    return HostSpec(
        listening=LISTENING,
        services=(Service(service.service_name, service.generic_handler(aio=aio), service.file),),
        listen=Listen(
            config.host,
            config.port,
            config.max_message_bytes,
            reuse_port,
            config.threads,
            also,
            config.tls,
        ),
        info=Info(m.name, m.version, dict(m.raw)),
        metrics=metrics.exposition,
        metrics_port=config.metrics_port,
        grace=config.grace_seconds,
    )


def _http_face(
    loaded: LoadedModel,
    config: RuntimeConfig,
    service: ModelService,
    metrics: Metrics,
    state: ServingState,
    *,
    aio: bool,
    reuse_port: bool,
) -> tuple[HttpFace, HttpListen] | None:
    """The HTTP face's app and where it listens; None without an HTTP port."""
    if config.http_port is None:
        return None
    m = loaded.manifest
    app = HttpFace(
        service.schema,
        async_unary_handlers(service) if aio else unary_handlers(service),
        ready=lambda: state.ready,
        observe=metrics.observe,
        metrics=metrics.scrape,
        max_body_bytes=config.max_message_bytes,
        threads=None if aio else config.threads,
        classes=service.classes,
        version=m.version,
        info=dict(m.raw),
        access_log=config.access_log,
    )
    listen = HttpListen(
        config.host, config.http_port, reuse_port, config.grace_seconds, HTTP_LISTENING, config.tls
    )
    return app, listen


def _service(loaded: LoadedModel, config: RuntimeConfig) -> tuple[ModelService, Metrics]:
    metrics = Metrics(loaded.manifest.name, loaded.manifest.version)
    service = ModelService(
        loaded, metrics, access_log=config.access_log, max_message_bytes=config.max_message_bytes
    )
    return service, metrics


@dataclass
class RunningServer:
    """A model service running in this process (sync server)."""

    host: ServiceHost
    service: ModelService
    metrics: Metrics

    @property
    def port(self) -> int:
        return self.host.port

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def metrics_port(self) -> int | None:
        return self.host.metrics_port

    @property
    def http_port(self) -> int | None:
        """The HTTP face's bound port; None without one."""
        return _http_port(self.host.faces)

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, finish in-flight calls (up to `grace` s), stop."""
        self.host.stop(grace)
        self.service.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(0)


@dataclass
class RunningAioServer:
    """A model service running on this process's event loop (asyncio server)."""

    host: AioServiceHost
    service: ModelService
    metrics: Metrics

    @property
    def port(self) -> int:
        return self.host.port

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def metrics_port(self) -> int | None:
        return self.host.metrics_port

    @property
    def http_port(self) -> int | None:
        """The HTTP face's bound port; None without one."""
        return _http_port(self.host.faces)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, finish in-flight calls (up to `grace` s), stop."""
        await self.host.stop(grace)
        self.service.close()


def start(
    loaded: LoadedModel,
    config: RuntimeConfig | None = None,
    *,
    reuse_port: bool = False,
    also: tuple[str, ...] = (),
) -> RunningServer:
    """Serve a loaded model from this process with the sync (thread pool) server.

    Args:
        loaded: the model.
        config: how to serve it (default: 127.0.0.1, free gRPC and HTTP ports).
        reuse_port: share the ports with sibling workers.
        also: more addresses to listen on (a worker's own health port).

    Raises:
        ConfigError: the port, the HTTP port or the metrics port cannot be bound.

    Example:
        >>> config = RuntimeConfig(port=0, http_port=0)
        >>> with start(load("build/iris"), config) as running:  # doctest: +SKIP
        ...     print(running.address, running.http_port)
    """
    config = config or RuntimeConfig(port=0, http_port=0)
    service, metrics = _service(loaded, config)
    spec = _host_spec(loaded, config, service, metrics, aio=False, reuse_port=reuse_port, also=also)
    state = ServingState()
    http = _http_face(loaded, config, service, metrics, state, aio=False, reuse_port=reuse_port)
    faces = [HttpListener(*http)] if http is not None else []
    return RunningServer(ServiceHost(spec, faces, state=state).start(), service, metrics)


async def start_aio(
    loaded: LoadedModel,
    config: RuntimeConfig,
    *,
    reuse_port: bool = False,
    also: tuple[str, ...] = (),
) -> RunningAioServer:
    """Serve a loaded model with the asyncio server; the model runs on the event loop (for
    HTTP calls too)."""
    service, metrics = _service(loaded, config)
    spec = _host_spec(loaded, config, service, metrics, aio=True, reuse_port=reuse_port, also=also)
    state = ServingState()
    http = _http_face(loaded, config, service, metrics, state, aio=True, reuse_port=reuse_port)
    faces = [AioHttpListener(*http)] if http is not None else []
    host = await AioServiceHost(spec, faces, state=state).start()
    return RunningAioServer(host, service, metrics)


def _describe(loaded: LoadedModel, config: RuntimeConfig, port: int, service: ModelService) -> None:
    logger.info(
        "serving %s %s (%s) on %s:%d with the %s server%s",
        loaded.manifest.name,
        loaded.manifest.version,
        ", ".join(m.name for m in loaded.schema.methods),
        config.host,
        port,
        config.server,
        tls_note(config.tls),
        extra={"bundle": str(loaded.path)},
    )
    for name, policy in service.batching.items():
        logger.info(
            "%s is batched: %s",
            name,
            policy.describe(),
            extra={
                "rpc": name,
                "max_batch_size": policy.max_batch_size,
                "max_delay_ms": policy.max_delay_ms,
            },
        )
        if config.server == "sync" and config.threads < policy.max_batch_size:
            # a queued call holds one of the sync server's threads while it waits
            logger.warning(
                "%s: the sync server's %d threads hold at most %d calls at once, so its "
                "batches stay at or below %d; serve with --threads %d or --server aio for "
                "batches of up to %d",
                name,
                config.threads,
                config.threads,
                config.threads,
                policy.max_batch_size,
                policy.max_batch_size,
                extra={"rpc": name},
            )


def serve(
    bundle: str,
    config: RuntimeConfig,
    *,
    announce: Callable[[str], None] | None = None,
    reuse_port: bool = False,
    on_ready: Callable[[int, tuple[int, ...]], None] | None = None,
    also: tuple[str, ...] = (),
) -> int:
    """Load and serve a bundle until SIGTERM/SIGINT; returns the exit status.

    Args:
        bundle: path of the bundle (directory or zip).
        config: how to serve it.
        announce: called with the listening line once the service is SERVING.
        reuse_port: share the port with sibling workers.
        on_ready: called with the bound port and the ports bound for `also` once
            SERVING (after `announce`).
        also: more addresses to listen on (a worker's own health port).

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
        return asyncio.run(_serve_aio(loaded, config, announce, reuse_port, on_ready, also))
    running = start(loaded, config, reuse_port=reuse_port, also=also)
    _describe(loaded, config, running.port, running.service)
    running.host.run(announce, _ready(on_ready, running.host))
    logger.info("stopped")
    return 0


def _http_port(faces: Sequence[object]) -> int | None:
    for face in faces:
        if isinstance(face, HttpListener | AioHttpListener):
            port: int = face.port
            return port
    return None


def _ready(
    on_ready: Callable[[int, tuple[int, ...]], None] | None, host: ServiceHost | AioServiceHost
) -> Callable[[], None] | None:
    return None if on_ready is None else lambda: on_ready(host.port, host.also_ports)


async def _serve_aio(
    loaded: LoadedModel,
    config: RuntimeConfig,
    announce: Callable[[str], None] | None,
    reuse_port: bool,
    on_ready: Callable[[int, tuple[int, ...]], None] | None,
    also: tuple[str, ...],
) -> int:
    running = await start_aio(loaded, config, reuse_port=reuse_port, also=also)
    _describe(loaded, config, running.port, running.service)
    await running.host.run(announce, _ready(on_ready, running.host))
    logger.info("stopped")
    return 0
