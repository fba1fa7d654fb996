"""gRPC plumbing shared by every service modelwire runs and every client it makes.

The runtime, the broker and the catalog all serve health (whose Watch streams
end on shutdown), reflection over a private descriptor pool, and
`modelwire.runtime.v1.ModelInfoService`; they bind ports the same way and stop
on the same signals. Clients (`connect()`, `modelwire call`, the broker's
`address:` models) read a service's proto through reflection and its manifest
through ModelInfoService. It lives here, below the components, so that none of
them imports another (the broker reaches models only over gRPC).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2

from modelwire.codegen.descriptors import build_file, message_classes
from modelwire.codegen.schema import (
    Field,
    Message,
    Method,
    ModelSchema,
    Scalar,
    ScalarType,
    lower,
)
from modelwire.errors import ConfigError, ServiceError

__all__ = [
    "ENV_PARENT_PID",
    "HEALTH_SERVICE",
    "INFO_FILE",
    "INFO_SCHEMA",
    "INFO_SERVICE",
    "AioHealthServicer",
    "HealthServicer",
    "Interrupted",
    "Reflected",
    "bind",
    "check_port_free",
    "connect_host",
    "enable_reflection",
    "fetch_info",
    "follow_parent",
    "format_host",
    "grpc_options",
    "health_status",
    "info_handler",
    "interrupt",
    "reflect",
    "reflection_pool",
    "reflection_services",
    "rpc_error",
    "signals_to",
    "stop_on_signal",
    "tune_malloc",
    "uninterrupted",
    "wait_for_signal",
    "wait_ready",
]

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
_INFRA = ("grpc.health.", "grpc.reflection.", "modelwire.runtime.v1.")

# ---------------------------------------------------------------- processes

# glibc mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Keep large message buffers on the heap instead of fresh mmaps.

    With glibc's defaults every multi-MB message is mapped and unmapped, which
    costs 2-4x on 4 MB payloads (reference/grpc-limits.md §3). Returns whether
    the settings took effect (False off glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024 * 1024)
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 512 * 1024 * 1024)
    return bool(ok)


ENV_PARENT_PID = "MODELWIRE_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def follow_parent() -> None:
    """If started by a modelwire supervisor (MODELWIRE_PARENT_PID), die with it.

    Asks the kernel (Linux) for SIGTERM when the parent dies, even by SIGKILL, so
    workers and local models never outlive the process that started them.
    """
    expected = os.environ.get(ENV_PARENT_PID)
    if not expected:
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != expected:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def signals_to(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """SIGTERM and SIGINT go to `handler` for a while (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived before the solution served (a BaseException, like
    KeyboardInterrupt, so no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt(signum: int, frame: object) -> None:
    """A signal handler: unwind with Interrupted."""
    raise Interrupted(signum)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """SIGTERM and SIGINT take effect after the block: whatever the engine creates in it is
    created whole, and the run's cleanup (which finds it by label) sees it."""
    received: list[int] = []
    with signals_to(lambda signum, frame: received.append(signum)):
        yield
    if received:
        raise Interrupted(received[0])


@contextlib.contextmanager
def stop_on_signal() -> Iterator[tuple[threading.Event, list[int]]]:
    """For a while, SIGTERM and SIGINT set the Event and are recorded in the list.

    Only the first signal touches the Event: Event.set() takes a lock that is not
    reentrant, and a second signal can run the handler inside the first one's set() (a
    parent killed with SIGKILL sends PR_SET_PDEATHSIG again for each of its threads that
    exits), which deadlocked the process for good.
    """
    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            stop.set()

    with signals_to(handler):
        yield stop, received


def wait_for_signal(on_ready: Callable[[], None] | None = None) -> int:
    """Block until SIGTERM or SIGINT (calling `on_ready` once the handlers are in place)."""
    with stop_on_signal() as (stop, received):
        if on_ready is not None:
            on_ready()
        while not stop.wait(3600):
            pass
    return received[0]


# ---------------------------------------------------------------- binding


def format_host(host: str) -> str:
    """`::1` -> `[::1]`, for `host:port` text."""
    return f"[{host}]" if ":" in host else host


def connect_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host` (a wildcard
    address -> 127.0.0.1)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host


def grpc_options(max_message_bytes: int, *, reuse_port: bool = False) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # grpcio turns SO_REUSEPORT on by default, which would let a second server
        # silently share a busy port; only workers of one service share a port.
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]


def check_port_free(host: str, port: int, key: str = "port") -> None:
    """Fail with the OS's reason if the host or the port cannot be listened on, before
    grpcio tries (an unresolvable host, an address of another machine, a taken port).

    grpcio logs its own bind error on stderr and only says "Failed to bind";
    SO_REUSEADDR keeps a port whose old connections linger in TIME_WAIT usable.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(
            "host",
            host,
            f"cannot resolve it ({exc.strerror or exc}); use a name or an IP address "
            "of this machine",
        ) from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    "host",
                    host,
                    f"not an address of this machine ({exc.strerror}); use 127.0.0.1, "
                    "0.0.0.0 for every interface, or one of its own addresses",
                ) from None
            hint = "; is another server using it?" if exc.errno == errno.EADDRINUSE else ""
            raise ConfigError(
                key,
                port,
                f"cannot listen on {format_host(host)}:{port} ({exc.strerror}){hint}",
            ) from exc


def bind(server: Any, address: str) -> int:
    """`add_insecure_port` with a clear error; returns the bound port."""
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(
            "address", address, f"cannot listen there ({exc}); is the port in use?"
        ) from exc
    if not port:
        raise ConfigError("address", address, "cannot listen there; is the port in use?")
    return int(port)


# ---------------------------------------------------------------- health


class HealthServicer(health.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """The sync servicer; `enter_graceful_shutdown()` also ends the Watch streams.

    grpcio-health-checking sends NOT_SERVING to watchers on graceful shutdown but
    keeps their streams open, so a single Watch (a load balancer, a mesh sidecar)
    made every SIGTERM wait the whole grace period.
    """

    def enter_graceful_shutdown(self) -> None:
        # Sends NOT_SERVING to every watcher; each send blocks until it is written.
        super().enter_graceful_shutdown()
        with self._lock:
            callbacks = [
                cb for cbs in getattr(self, "_send_response_callbacks", {}).values() for cb in cbs
            ]
        for callback in callbacks:
            callback(None)  # ends the stream with OK


class AioHealthServicer(health_aio.HealthServicer):  # type: ignore[misc]
    """The asyncio servicer; a Watch returns once it has reported NOT_SERVING in shutdown."""

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        condition = self._server_watchers[request.service]
        self._watcher_count_by_service[request.service] += 1
        last = None
        try:
            async with condition:
                while True:
                    status = self._server_status.get(
                        request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
                    )
                    if status != last:
                        await context.write(health_pb2.HealthCheckResponse(status=status))
                    last = status
                    if self._gracefully_shutting_down:
                        return
                    await condition.wait()
        finally:
            self._watcher_count_by_service[request.service] -= 1
            if self._watcher_count_by_service[request.service] == 0:
                del self._server_watchers[request.service]
                del self._watcher_count_by_service[request.service]


# ---------------------------------------------------------------- model info

_STRING = ScalarType(Scalar.STRING)

INFO_SCHEMA = ModelSchema(
    name="info",
    package="modelwire.runtime.v1",
    service="ModelInfoService",
    methods=(
        Method(
            "get_model_info",
            "GetModelInfo",
            "GetModelInfoRequest",
            "GetModelInfoResponse",
            (),
            "message",
            "The manifest of the model this server runs.",
        ),
    ),
    messages=(
        Message("GetModelInfoRequest", ()),
        Message(
            "GetModelInfoResponse",
            (
                Field("name", 1, _STRING),
                Field("version", 2, _STRING),
                Field("manifest_json", 3, _STRING),
            ),
            doc="The model's name, version, and its modelwire.json manifest as JSON text.",
        ),
    ),
)
INFO_SERVICE = "modelwire.runtime.v1.ModelInfoService"
INFO_FILE = "modelwire/runtime/v1/info.proto"


def _info_file() -> descriptor_pb2.FileDescriptorProto:
    return build_file(lower(INFO_SCHEMA), INFO_FILE)


def info_handler(
    name: str, version: str, manifest: dict[str, Any], *, aio: bool
) -> grpc.GenericRpcHandler:
    """ModelInfoService answering with a fixed manifest."""
    response_cls = message_classes(_info_file()).get("GetModelInfoResponse")
    reply = response_cls(
        name=name, version=version, manifest_json=json.dumps(manifest, sort_keys=True)
    ).SerializeToString()
    if aio:

        async def get_async(request: bytes, context: Any) -> bytes:
            return reply

        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
            get_async
        )
    else:
        handler = grpc.unary_unary_rpc_method_handler(lambda request, context: reply)
    return grpc.method_handlers_generic_handler(INFO_SERVICE, {"GetModelInfo": handler})


# ---------------------------------------------------------------- reflection, server side


def reflection_pool(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> descriptor_pool.DescriptorPool:
    """A private pool with health, reflection, model info and `files`, for reflection."""
    from grpc_reflection.v1alpha import reflection_pb2

    pool = descriptor_pool.DescriptorPool()
    for mod in (health_pb2, reflection_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(mod.DESCRIPTOR.serialized_pb))
    pool.Add(_info_file())
    for f in files:
        pool.Add(f)
    return pool


def reflection_services(*names: str) -> list[str]:
    from grpc_reflection.v1alpha import reflection

    return [*names, INFO_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME]


def enable_reflection(
    server: Any, names: Iterable[str], files: Iterable[descriptor_pb2.FileDescriptorProto]
) -> None:
    """Serve reflection for `names` (plus health, reflection, info) from `files`."""
    from grpc_reflection.v1alpha import reflection

    reflection.enable_server_reflection(
        reflection_services(*names), server, pool=reflection_pool(files)
    )


# ---------------------------------------------------------------- clients


def rpc_error(target: str, rpc: str, exc: grpc.RpcError) -> ServiceError:
    """A ServiceError for a failed call, with the status and details."""
    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    name = code.name if code is not None else "UNKNOWN"
    return ServiceError(
        f"{target} {rpc}: {name}: {details}", target=target, status=name, details=details or ""
    )


def wait_ready(channel: grpc.Channel, address: str, timeout: float) -> None:
    """Wait until a server answers on `channel`.

    The first call waits for the connection. (grpc.channel_ready_future would do,
    but it polls connectivity every 200 ms.) Any answer, even UNIMPLEMENTED from a
    server without health checks, proves the server is there.
    """
    check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{HEALTH_SERVICE}/Check"
    )
    try:
        check(b"", timeout=timeout, wait_for_ready=True)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
            raise ServiceError(
                f"cannot reach {address}: no connection within {timeout:g} s{_port_hint(address)}",
                target=address,
            ) from None


def _port_hint(address: str) -> str:
    """A hint for an address without a port (gRPC would try 443)."""
    if "://" in address or address.startswith("unix:"):
        return ""
    if ":" in address.rpartition("]")[2]:
        return ""
    return f" (no port given: write HOST:PORT, e.g. {address}:50051)"


def health_status(address: str, service: str = "", timeout: float = 5.0) -> str:
    """The health of a service: SERVING, NOT_SERVING, ... (ServiceError if unreachable)."""
    with grpc.insecure_channel(address) as channel:
        check: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            f"/{HEALTH_SERVICE}/Check",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            if service and isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND:
                raise ServiceError(
                    f"{address}: the health service knows no service {service!r} "
                    "(leave out --service for the server as a whole)",
                    target=address,
                ) from None
            raise rpc_error(address, "Check", exc) from None
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


@dataclass(frozen=True)
class Reflected:
    """A service read through reflection: its file, full name, and all services served."""

    file: descriptor_pb2.FileDescriptorProto
    service: str
    services: tuple[str, ...]


def reflect(channel: grpc.Channel, address: str, service: str | None = None) -> Reflected:
    """Read a service's proto through server reflection.

    Without `service`, the server must serve exactly one service besides health,
    reflection and model info.

    Raises:
        ServiceError: no reflection, no such service, or several to choose from.
    """
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(channel)
    try:
        services = list(db.get_services())
    except grpc.RpcError as exc:
        raise rpc_error(address, "ServerReflectionInfo", exc) from None
    candidates = [s for s in services if not s.startswith(_INFRA)]
    if service is not None:
        if service not in services:
            raise ServiceError(
                f"{address} has no service {service!r}; it has {', '.join(candidates) or 'none'}",
                target=address,
            )
        chosen = service
    elif len(candidates) == 1:
        chosen = candidates[0]
    else:
        raise ServiceError(
            f"{address} serves {len(candidates)} services ({', '.join(candidates) or 'none'}); "
            "choose one with connect(address, service=...)",
            target=address,
        )
    pool = descriptor_pool.DescriptorPool(db)
    try:
        desc = pool.FindServiceByName(chosen)
    except (KeyError, grpc.RpcError) as exc:
        raise ServiceError(
            f"{address}: cannot read the schema of {chosen}: {exc}", target=address
        ) from None
    fdp = descriptor_pb2.FileDescriptorProto()
    desc.file.CopyToProto(fdp)
    return Reflected(fdp, desc.full_name, tuple(services))


def fetch_info(channel: grpc.Channel, timeout: float = 10.0) -> dict[str, Any] | None:
    """The manifest a modelwire service publishes, or None if it has none."""
    resp_cls = message_classes(_info_file()).get("GetModelInfoResponse")
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{INFO_SERVICE}/GetModelInfo"
    )
    try:
        reply = resp_cls.FromString(call(b"", timeout=timeout))
    except grpc.RpcError:
        return None
    try:
        data: dict[str, Any] = json.loads(reply.manifest_json)  # type: ignore[attr-defined]
    except ValueError:
        return None
    return data
