"""The one service host: what every modelwire server does around its own rpcs.

A `HostSpec` describes what is served (the services' handlers and files, the
ModelInfo manifest), where (host, port, message size, reuse_port, threads), the
metrics, the grace period and the listening line. `ServiceHost` (sync, a thread pool)
and `AioServiceHost` (asyncio) run it; they share the spec, the faces' order and every
log line, and differ only in their loop:

1. start every face (any other listener given, then the gRPC server last, so a server
   that answers gRPC answers on all of them), each binding with a clear ConfigError,
   then the metrics endpoint; a failure stops what was started;
2. mark the shared `ServingState` SERVING and tell every face (health says SERVING);
3. `run()`: once SIGTERM/SIGINT are handled, announce every other face's line (the HTTP
   face's `modelwire runtime http on HOST:PORT`), then `<listening> HOST:PORT` last, so
   a reader that waits for the listening line has seen them all; wait for a signal,
   then drain: NOT_SERVING (health Watch streams end, /readyz answers 503), every face
   stops with in-flight calls given up to the grace period, then the metrics endpoint.

A face is any listener with start / set_serving / stop hooks (`modelwire.hosting.faces`):
the gRPC face is built from the spec; the HTTP face (`modelwire.hosting.http_host`)
attaches as one more, made with the host's `ServingState`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2

from modelwire.config import ServerTls
from modelwire.errors import ConfigError
from modelwire.hosting.binding import connect_host, format_host
from modelwire.hosting.faces import AioFace, Face, Serving, ServingState
from modelwire.hosting.grpc_face import AioGrpcFace, GrpcFace
from modelwire.hosting.metrics_http import MetricsServer
from modelwire.hosting.process import wait_for_signal

__all__ = [
    "AioFace",
    "AioServiceHost",
    "Face",
    "HostSpec",
    "Info",
    "Listen",
    "Service",
    "ServiceHost",
    "Serving",
    "ServingState",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """One gRPC service: its full name (health and reflection list it), its rpcs, and the
    file describing it (for reflection)."""

    name: str
    handler: grpc.GenericRpcHandler
    file: descriptor_pb2.FileDescriptorProto


@dataclass(frozen=True)
class Info:
    """What `ModelInfoService/GetModelInfo` answers."""

    name: str
    version: str
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class Listen:
    """Where and how the gRPC face listens.

    Attributes:
        host: the address to bind (`0.0.0.0` for every interface).
        port: the port; 0 picks a free one.
        max_message_bytes: the largest message sent or received.
        reuse_port: share the port with sibling workers (SO_REUSEPORT); a busy port is
            then not refused up front.
        threads: request threads of the sync server.
        also: more `host:port` addresses the same server listens on, e.g. a worker's
            own loopback port, where its supervisor checks the health of that one
            worker (the shared port reaches whichever worker the kernel picks); these
            are plaintext, for loopback addresses only.
        tls: the certificate the port (and the HTTP face, metrics) presents; None:
            plaintext.
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_message_bytes: int = 4 * 1024 * 1024
    reuse_port: bool = False
    threads: int = 8
    also: tuple[str, ...] = ()
    tls: ServerTls | None = None


@dataclass(frozen=True)
class HostSpec:
    """Everything a host serves; the same for the sync and the aio runner.

    Attributes:
        listening: the stable line's prefix, e.g. `modelwire runtime listening on`.
        services: the services, with handlers of the runner's kind (sync or aio).
        listen: where the gRPC face binds.
        info: the ModelInfoService answer; None serves none.
        metrics: renders the Prometheus scrape; None: no metrics.
        metrics_port: where the host serves `metrics` over HTTP; None: not served.
        grace: how long draining waits for in-flight calls, in seconds.
    """

    listening: str
    services: tuple[Service, ...]
    listen: Listen = Listen()
    info: Info | None = None
    metrics: Callable[[], bytes] | None = None
    metrics_port: int | None = None
    grace: float = 10.0

    def __post_init__(self) -> None:
        if self.metrics_port is not None and self.metrics is None:
            raise ValueError("metrics_port needs metrics to serve")
        if self.metrics_port and self.metrics_port == self.listen.port:
            raise ConfigError(
                "metrics_port", self.metrics_port, "is the gRPC port too; choose another one"
            )


class _Common:
    """What both runners share: the spec, the state, the metrics endpoint, the log lines."""

    spec: HostSpec
    state: ServingState
    metrics_server: MetricsServer | None
    _grpc: GrpcFace | AioGrpcFace

    @property
    def port(self) -> int:
        """The gRPC face's bound port."""
        return self._grpc.port

    @property
    def also_ports(self) -> tuple[int, ...]:
        """The ports bound for `Listen.also`, in its order."""
        return tuple(self._grpc.also_ports)

    @property
    def address(self) -> str:
        """Where a client on this machine reaches the gRPC face (`host:port`)."""
        return f"{format_host(connect_host(self.spec.listen.host))}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_server.port if self.metrics_server is not None else None

    def _start_metrics(self) -> None:
        spec = self.spec
        if spec.metrics_port is None or spec.metrics is None:
            return
        self.metrics_server = MetricsServer(
            spec.listen.host, spec.metrics_port, spec.metrics, tls=spec.listen.tls
        )

    def _stop_metrics(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()

    def _announce(
        self,
        announce: Callable[[str], None] | None,
        on_ready: Callable[[], None] | None,
        faces: Sequence[Face | AioFace],
    ) -> None:
        if self.metrics_server is not None:
            logger.info(
                "metrics at %s",
                self.metrics_server.url,
                extra={"metrics_port": self.metrics_server.port},
            )
        if announce is not None:
            for face in faces:
                if line := face.announcement():
                    announce(line)
            host = format_host(self.spec.listen.host)
            announce(f"{self.spec.listening} {host}:{self.port}")
        if on_ready is not None:
            on_ready()

    def _log_drain(self, signum: int) -> None:
        logger.info(
            "%s received: draining in-flight calls (up to %.0f s)",
            signal.Signals(signum).name,
            self.spec.grace,
        )


class ServiceHost(_Common):
    """Runs a `HostSpec` with the sync gRPC server (handlers run on its thread pool).

    Example:
        >>> host = ServiceHost(spec).start()  # doctest: +SKIP
        >>> host.run(announce=print)          # until SIGTERM/SIGINT, then drained
    """

    def __init__(
        self, spec: HostSpec, faces: Sequence[Face] = (), *, state: ServingState | None = None
    ) -> None:
        """`faces`: listeners besides the gRPC one; `state`: the one they read, if they
        were made with it (default: a new one)."""
        self.spec = spec
        self.state = state or ServingState()
        self.metrics_server = None
        self._grpc = GrpcFace(spec, self.state)
        # the gRPC face starts last: a server that answers gRPC answers on every face
        self.faces: list[Face] = [*faces, self._grpc]

    def start(self) -> ServiceHost:
        """Bind and start every face and the metrics endpoint; SERVING.

        Raises:
            ConfigError: a port or host cannot be listened on (nothing is left running).
        """
        started: list[Face] = []
        try:
            for face in self.faces:
                face.start()
                started.append(face)
            self._start_metrics()
        except BaseException:
            for face in reversed(started):
                face.stop(0)
            self.state.advance(Serving.STOPPED)
            raise
        self.state.advance(Serving.SERVING)
        for face in self.faces:
            face.set_serving(True)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Drain: NOT_SERVING, in-flight calls finish (up to `grace` s), stop. Only the
        first call does it."""
        if not self.state.advance(Serving.DRAINING):
            return
        for face in self.faces:
            face.set_serving(False)
        if len(self.faces) == 1:
            self.faces[0].stop(grace)
        else:  # every face drains at once: the grace period is not spent once per face
            with futures.ThreadPoolExecutor(len(self.faces)) as pool:
                list(pool.map(lambda face: face.stop(grace), self.faces))
        self._stop_metrics()
        self.state.advance(Serving.STOPPED)

    def run(
        self,
        announce: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Announce, serve until SIGTERM/SIGINT, drain; returns the signal's number."""
        signum = wait_for_signal(lambda: self._announce(announce, on_ready, self.faces))
        self._log_drain(signum)
        self.stop(self.spec.grace)
        return signum

    def __enter__(self) -> ServiceHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(0)


class AioServiceHost(_Common):
    """Runs a `HostSpec` with the asyncio gRPC server, on the running event loop."""

    def __init__(
        self, spec: HostSpec, faces: Sequence[AioFace] = (), *, state: ServingState | None = None
    ) -> None:
        self.spec = spec
        self.state = state or ServingState()
        self.metrics_server = None
        self._grpc = AioGrpcFace(spec, self.state)
        self.faces: list[AioFace] = [*faces, self._grpc]

    async def start(self) -> AioServiceHost:
        """Bind and start every face and the metrics endpoint; SERVING (see `ServiceHost`)."""
        started: list[AioFace] = []
        try:
            for face in self.faces:
                await face.start()
                started.append(face)
            self._start_metrics()
        except BaseException:
            for face in reversed(started):
                await face.stop(0)
            self.state.advance(Serving.STOPPED)
            raise
        self.state.advance(Serving.SERVING)
        for face in self.faces:
            await face.set_serving(True)
        return self

    async def stop(self, grace: float | None = None) -> None:
        """Drain (see `ServiceHost.stop`)."""
        if not self.state.advance(Serving.DRAINING):
            return
        for face in self.faces:
            await face.set_serving(False)
        await asyncio.gather(*(face.stop(grace) for face in self.faces))
        self._stop_metrics()
        self.state.advance(Serving.STOPPED)

    async def run(
        self,
        announce: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Announce, serve until SIGTERM/SIGINT, drain; returns the signal's number."""
        stop = asyncio.Event()
        received: list[int] = []
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if not received:
                received.append(signum)
                stop.set()

        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, on_signal, s)
        try:
            self._announce(announce, on_ready, self.faces)
            await stop.wait()
            self._log_drain(received[0])
            await self.stop(self.spec.grace)  # a second signal meanwhile changes nothing
        finally:
            for s in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(s)
        return received[0]
