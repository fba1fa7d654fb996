"""The gRPC face of a service host: one grpcio server with the host's services, health,
reflection and ModelInfoService, in a sync (thread pool) and an asyncio variant.

Both variants are built by `_register` from the same `HostSpec`; they differ only in the
grpcio server and health servicer they use and in whether their hooks are awaited. The
host decides when each hook runs (`modelwire.hosting.host`); this module never handles
signals or logs the host's life.

Health follows the host's `ServingState` while SERVING: the server as a whole ('') and
each service report SERVING only while the state is ready, and each part of the state
(a solution's method, named `<package>.<Service>/<Method>`) has an entry of its own.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelwire.hosting.binding import bind, check_port_free, format_host, grpc_options
from modelwire.hosting.faces import Serving, ServingState
from modelwire.hosting.health import AioHealthServicer, HealthServicer
from modelwire.hosting.info import info_handler
from modelwire.hosting.reflection import enable_reflection
from modelwire.hosting.tls import server_certs

if TYPE_CHECKING:
    from modelwire.hosting.host import HostSpec

__all__ = ["AioGrpcFace", "GrpcFace"]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health_names(spec: HostSpec) -> tuple[str, ...]:
    """The server as a whole ('') and each of its services."""
    return ("", *(s.name for s in spec.services))


def _statuses(spec: HostSpec, state: ServingState) -> dict[str, int]:
    """What health reports for each name while SERVING: the whole server and each service
    as the state's readiness says, each of its parts as its own."""
    whole = _SERVING if state.ready else _NOT_SERVING
    statuses = dict.fromkeys(_health_names(spec), whole)
    for part in state.parts:
        statuses[part] = _SERVING if state.part_ready(part) else _NOT_SERVING
    return statuses


def _register(server: Any, health: Any, spec: HostSpec, *, aio: bool) -> None:
    """Put the spec's services, ModelInfoService, health and reflection on `server`."""
    handlers = [s.handler for s in spec.services]
    if spec.info is not None:
        i = spec.info
        handlers.append(info_handler(i.name, i.version, dict(i.manifest), aio=aio))
    server.add_generic_rpc_handlers(handlers)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection(server, [s.name for s in spec.services], [s.file for s in spec.services])


def _credentials(spec: HostSpec) -> grpc.ServerCredentials | None:
    """The port's TLS credentials (None: plaintext); a worker's own loopback port (`also`)
    stays plaintext, for its supervisor's health checks."""
    tls = spec.listen.tls
    return server_certs(tls).grpc_credentials() if tls is not None else None


def _bind_address(spec: HostSpec) -> str:
    listen = spec.listen
    if not listen.reuse_port:  # a sibling worker's port is taken on purpose
        check_port_free(listen.host, listen.port)
    return f"{format_host(listen.host)}:{listen.port}"


class GrpcFace:
    """The sync gRPC server (a thread pool of `listen.threads`); health follows `state`."""

    def __init__(self, spec: HostSpec, state: ServingState | None = None) -> None:
        self.spec = spec
        self.state = state or ServingState()
        self.port = 0
        self.also_ports: list[int] = []
        self.server: grpc.Server | None = None
        self.health = HealthServicer()
        self._serving = False
        self._applied: dict[str, int] = {}
        self._apply_lock = threading.Lock()  # one snapshot of the state applied at a time
        self.state.subscribe(self._state_changed)

    def _apply(self) -> None:
        with self._apply_lock:
            # draining is set_serving(False)'s: Watch streams see NOT_SERVING once, then end
            if self._serving and self.state.status is Serving.SERVING:
                for name, status in _statuses(self.spec, self.state).items():
                    if self._applied.get(name) != status:
                        self.health.set(name, status)
                        self._applied[name] = status

    def _state_changed(self) -> None:
        self._apply()

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
        self.port = bind(server, address, _credentials(self.spec))
        self.also_ports = [bind(server, a) for a in listen.also]
        server.start()
        self.server = server

    def set_serving(self, serving: bool) -> None:
        """Health as the state says (SERVING when ready); or NOT_SERVING, ending Watch
        streams."""
        self._serving = serving
        if serving:
            self._apply()
        else:
            self.health.enter_graceful_shutdown()

    def stop(self, grace: float | None) -> None:
        """Refuse new calls, let in-flight ones finish (up to `grace` s), stop."""
        if self.server is not None:
            self.server.stop(grace).wait()


class AioGrpcFace:
    """The asyncio gRPC server (handlers run on the event loop); health follows `state`."""

    def __init__(self, spec: HostSpec, state: ServingState | None = None) -> None:
        self.spec = spec
        self.state = state or ServingState()
        self.port = 0
        self.also_ports: list[int] = []
        self.server: grpc.aio.Server | None = None
        self.health = AioHealthServicer()
        self._serving = False
        self._applied: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._apply_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.state.subscribe(self._state_changed)

    async def _apply(self) -> None:
        assert self._apply_lock is not None
        async with self._apply_lock:  # the latest state wins, never an interleaving
            if self._serving and self.state.status is Serving.SERVING:
                for name, status in _statuses(self.spec, self.state).items():
                    if self._applied.get(name) != status:
                        await self.health.set(name, status)
                        self._applied[name] = status

    def _state_changed(self) -> None:
        """From any thread: apply the state on the face's loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def schedule() -> None:
            task = loop.create_task(self._apply())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            schedule()
        else:
            loop.call_soon_threadsafe(schedule)

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
        self.port = bind(server, address, _credentials(self.spec))
        self.also_ports = [bind(server, a) for a in listen.also]
        await server.start()
        self.server = server
        self._loop = asyncio.get_running_loop()
        self._apply_lock = asyncio.Lock()

    async def set_serving(self, serving: bool) -> None:
        self._serving = serving
        if serving:
            await self._apply()
        else:
            await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float | None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
