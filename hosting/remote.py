"""The client side of every modelwire service: readiness, health, waiting for SERVING,
reflection, model info.

`connect()`, `modelwire call` and `health`, the broker's `address:` models and the
catalog client read a service through these.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2

from modelwire.codegen.descriptors import message_classes
from modelwire.config import ClientTls, address_problem, parse_address
from modelwire.errors import ConfigError, ModelwireError, ServiceError
from modelwire.hosting.health import HEALTH_SERVICE
from modelwire.hosting.info import INFO_SERVICE, info_file
from modelwire.hosting.tls import explain, open_channel

__all__ = [
    "Reflected",
    "fetch_info",
    "health_status",
    "reflect",
    "rpc_error",
    "wait_ready",
    "wait_serving",
]

_INFRA = ("grpc.health.", "grpc.reflection.", "modelwire.runtime.v1.")


_UNREACHED = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def rpc_error(
    target: str, rpc: str, exc: grpc.RpcError, *, waited: float | None = None, hint: str = ""
) -> ServiceError:
    """The ServiceError of a failed call, in the one text form of the client side.

    `TARGET RPC: STATUS: details` (`TARGET RPC: STATUS` when the status has no
    details), then `(hint)` if given. With `waited`, the call was waiting that many
    seconds for a connection (wait_for_ready), so UNAVAILABLE or DEADLINE_EXCEEDED mean
    no server answered: `cannot reach TARGET: no connection within T s`. An address
    without a port that cannot be reached gets a hint (gRPC would try port 443).

    `modelwire call` and `health`, `connect()` and its methods, the broker's
    `address:` models and the catalog client all render a failed call through this.
    """
    code = exc.code() if isinstance(exc, grpc.Call) else None
    status = code.name if code is not None else "UNKNOWN"
    details = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
    if waited is not None and status in _UNREACHED:
        text = f"cannot reach {target}: no connection within {waited:g} s"
    else:
        text = f"{target} {rpc}: {status}: {details}" if details else f"{target} {rpc}: {status}"
    if hint:
        text += f" ({hint})"
    elif status in _UNREACHED:
        text += _port_hint(target)
    return ServiceError(text, target=target, rpc=rpc, status=status, details=details)


def wait_ready(
    channel: grpc.Channel, address: str, timeout: float, *, tls: ClientTls | None = None
) -> None:
    """Wait until a server answers on `channel`.

    A HOST:PORT where nothing listens (the connection is refused) or whose host
    has no address fails at once, found by a plain TCP connect first. Otherwise
    the first call waits for the connection. (grpc.channel_ready_future would do,
    but it polls connectivity every 200 ms.) Any answer, even UNIMPLEMENTED from a
    server without health checks, proves the server is there.

    Something listens, so the first call does not wait for a connection: if that fails
    for a reason of TLS (`tls` is what the channel speaks, None for plaintext), that
    reason is the error at once (`modelwire.hosting.tls.explain`).

    Raises:
        ServiceError: nothing listens there (`nothing is listening on ADDRESS`), the
            TLS handshake fails (`cannot reach ADDRESS: the server's certificate ...`),
            or no connection within `timeout` (`cannot reach ADDRESS: ...`).
    """
    started = time.monotonic()
    refused = _refused(address, min(timeout, 2.0))
    if refused is not None:
        raise refused
    check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{HEALTH_SERVICE}/Check"
    )
    try:
        check(b"", timeout=max(0.0, min(5.0, timeout - (time.monotonic() - started))))
        return
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if (
            code is not grpc.StatusCode.UNAVAILABLE
            and code is not grpc.StatusCode.DEADLINE_EXCEEDED
        ):
            return  # any answer, even UNIMPLEMENTED, proves the server is there
        details = (exc.details() if isinstance(exc, grpc.Call) else "") or ""
        _raise_tls_problem(address, tls, details)
    try:
        check(b"", timeout=max(0.0, timeout - (time.monotonic() - started)), wait_for_ready=True)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
            raise rpc_error(address, "Check", exc, waited=timeout) from None


def _raise_tls_problem(address: str, tls: ClientTls | None, details: str) -> None:
    """Raise the ServiceError saying why the TLS handshake failed, if TLS is why."""
    why = explain(address, tls, details)
    if why is not None:
        raise ServiceError(
            f"cannot reach {address}: {why}", target=address, status="UNAVAILABLE", details=details
        )


def _refused(address: str, timeout: float) -> ServiceError | None:
    """The error for a HOST:PORT that refuses a TCP connection or names an unknown host.

    None when a connection is made, or nothing can be told this way: a target URI
    (`unix:`, `dns:///`), a proxy grpc would go through, no answer within `timeout`.
    """
    try:
        target = parse_address(address)
    except ConfigError:
        return None
    host, port = target.host, target.port
    if host is None or port is None or (_proxied() and host not in _LOOPBACK):
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        message = f"nothing is listening on {address}"
    except socket.gaierror as exc:
        if exc.errno != socket.EAI_NONAME:
            return None
        message = f"cannot reach {address}: no host {host!r} is known"
    except OSError:
        return None
    return ServiceError(message, target=address, status="UNAVAILABLE")


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _proxied() -> bool:
    """Whether grpc would dial through an HTTP proxy (the variables grpc core reads)."""
    return any(os.environ.get(k) for k in ("grpc_proxy", "https_proxy", "http_proxy"))


def _port_hint(address: str) -> str:
    """A hint for an address that is not HOST:PORT (without a port, gRPC would try 443)."""
    problem = address_problem(address)
    return f" ({problem})" if problem else ""


def health_status(
    address: str, service: str = "", timeout: float = 5.0, *, tls: ClientTls | None = None
) -> str:
    """The health of a service: SERVING, NOT_SERVING, ... (ServiceError if unreachable,
    saying why when TLS is why)."""
    with open_channel(address, tls) as channel:
        check: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            f"/{HEALTH_SERVICE}/Check",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            if service and isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND:
                hint = f"no service {service!r} there; leave out --service for the whole server"
                raise rpc_error(address, "Check", exc, hint=hint) from None
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNAVAILABLE:
                _raise_tls_problem(address, tls, exc.details() or "")
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
    resp_cls = message_classes(info_file()).get("GetModelInfoResponse")
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


def wait_serving(
    address: str | Callable[[], str | None],
    timeout: float,
    *,
    alive: Callable[[], str | None] | None = None,
    what: str = "",
    interval: float = 0.05,
    tls: ClientTls | None = None,
) -> str:
    """Poll grpc.health.v1 until the server at `address` reports SERVING.

    Every poll is a new connection (a channel's reconnect backoff would add up to
    seconds to a server that comes up late); each waits at most 1 s for its answer.

    Args:
        address: `host:port`, or a function giving it (None while it is not known yet,
            e.g. before a container's port is published).
        timeout: seconds to wait in all.
        alive: called before every poll: None while the server's process or container
            lives, else why it is gone -- the wait then fails at once with that reason.
        what: how the error names the server (default: its address).
        interval: seconds between polls.
        tls: how to reach a TLS server; None: plaintext.

    Returns:
        The address that reported SERVING.

    Raises:
        ServiceError: `alive` gave a reason, or no SERVING within `timeout` (the message
            says what the last poll saw).

    Example:
        >>> wait_serving("127.0.0.1:50051", 30, alive=lambda: None)  # doctest: +SKIP
        '127.0.0.1:50051'
    """
    deadline = time.monotonic() + timeout
    target: str | None = None
    last = "its address is not known yet"
    while True:
        if alive is not None and (gone := alive()) is not None:
            raise ServiceError(gone, target=target or "")
        target = address() if callable(address) else address
        if target is not None:
            try:
                status = health_status(
                    target, timeout=max(0.1, min(1.0, deadline - time.monotonic())), tls=tls
                )
            except ModelwireError as exc:
                last = str(exc)
            else:
                if status == "SERVING":
                    return target
                last = f"it reports {status}"
        if time.monotonic() >= deadline:
            name = what or target or "the server"
            raise ServiceError(
                f"{name} never reported SERVING within {timeout:g} s ({last})", target=target or ""
            )
        time.sleep(interval)
