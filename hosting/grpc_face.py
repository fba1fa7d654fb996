"""The gRPC face of a service host: one grpcio server with the host's services, health,
reflection and ModelInfoService, in a sync (thread pool) and an asyncio variant.

Both variants are built by `_register` from the same `HostSpec`; they differ only in the
grpcio server and health servicer they use and in whether their hooks are awaited. The
host decides when each hook runs (`modelwire.hosting.host`); this module never handles
signals or logs the host's life.
"""

from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelwire.hosting.binding import bind, check_port_free, format_host, grpc_options
from modelwire.hosting.health import AioHealthServicer, HealthServicer
from modelwire.hosting.info import info_handler
from modelwire.hosting.reflection import enable_reflection

if TYPE_CHECKING:
    from modelwire.hosting.host import HostSpec

__all__ = ["AioGrpcFace", "GrpcFace"]

_SERVING = health_pb2.HealthCheckResponse.SERVING


def _health_names(spec: HostSpec) -> tuple[str, ...]:
    """The server as a whole ('') and each of its services."""
    return ("", *(s.name for s in spec.services))


def _register(server: Any, health: Any, spec: HostSpec, *, aio: bool) -> None:
    """Put the spec's services, ModelInfoService, health and reflection on `server`."""
    handlers = [s.handler for s in spec.services]
    if spec.info is not None:
        i = spec.info
        handlers.append(info_handler(i.name, i.version, dict(i.manifest), aio=aio))
    server.add_generic_rpc_handlers(handlers)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection(server, [s.name for s in spec.services], [s.file for s in spec.services])


def _bind_address(spec: HostSpec) -> str:
    listen = spec.listen
    if not listen.reuse_port:  # a sibling worker's port is taken on purpose
        check_port_free(listen.host, listen.port)
    return f"{format_host(listen.host)}:{listen.port}"


class GrpcFace:
    """The sync gRPC server (a thread pool of `listen.threads`)."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.port = 0
        self.server: grpc.Server | None = None
        self.health = HealthServicer()

    def announcement(self) -> str:
        return ""  # the host's own line (`HostSpec.listening`) says where gRPC listens

    def start(self) -> None:
        """Bind and start answering calls (health knows no service until `set_serving`).

        Raises:
            ConfigError: the host or port cannot be listened on.
        """
        listen = self.spec.listen
        address = _bind_address(self.spec)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=listen.threads, thread_name_prefix="modelwire"),
            options=grpc_options(listen.max_message_bytes, reuse_port=listen.reuse_port),
        )
        _register(server, self.health, self.spec, aio=False)
        self.port = bind(server, address)
        server.start()
        self.server = server

    def set_serving(self, serving: bool) -> None:
        """SERVING for the server and every service; or NOT_SERVING, ending Watch streams."""
        if serving:
            for name in _health_names(self.spec):
                self.health.set(name, _SERVING)
        else:
            self.health.enter_graceful_shutdown()

    def stop(self, grace: float | None) -> None:
        """Refuse new calls, let in-flight ones finish (up to `grace` s), stop."""
        if self.server is not None:
            self.server.stop(grace).wait()


class AioGrpcFace:
    """The asyncio gRPC server (handlers run on the event loop)."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.port = 0
        self.server: grpc.aio.Server | None = None
        self.health = AioHealthServicer()

    def announcement(self) -> str:
        return ""

    async def start(self) -> None:
        """Bind and start answering calls (see `GrpcFace.start`)."""
        listen = self.spec.listen
        address = _bind_address(self.spec)
        server = grpc.aio.server(
            options=grpc_options(listen.max_message_bytes, reuse_port=listen.reuse_port)
        )
        _register(server, self.health, self.spec, aio=True)
        self.port = bind(server, address)
        await server.start()
        self.server = server

    async def set_serving(self, serving: bool) -> None:
        if serving:
            for name in _health_names(self.spec):
                await self.health.set(name, _SERVING)
        else:
            await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float | None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
