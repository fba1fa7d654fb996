"""Binding a server's port: addresses as text, channel options, and clear bind errors."""

from __future__ import annotations

import errno
import socket
from typing import Any

from modelwire.errors import ConfigError

__all__ = ["bind", "check_port_free", "connect_host", "format_host", "grpc_options"]


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


def bind(server: Any, address: str, credentials: Any = None) -> int:
    """`add_insecure_port` (or `add_secure_port`, with `credentials`) with a clear error;
    returns the bound port."""
    try:
        if credentials is not None:
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(
            "address", address, f"cannot listen there ({exc}); is the port in use?"
        ) from exc
    if not port:
        raise ConfigError("address", address, "cannot listen there; is the port in use?")
    return int(port)
