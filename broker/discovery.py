"""The replicas behind a `dns:///NAME:PORT` address: every address NAME resolves to.

A model deployed as several replicas behind one name (a Swarm service with
`endpoint_mode: dnsrr`, a Kubernetes headless Service) has one DNS name that resolves to
the address of each replica. The broker balances calls over them itself
(`modelwire.broker.endpoints`), which a single HTTP/2 connection to a virtual IP cannot
do: that balances connections, and the broker holds one. This module only resolves;
it keeps no endpoints and opens no channels.
"""

from __future__ import annotations

import asyncio
import socket

__all__ = ["Discovery", "dns_host_port", "is_dns_target"]

_GRPC_DNS_DEFAULT_PORT = 443  # what grpc's own dns resolver assumes without a port


def is_dns_target(address: str) -> bool:
    """Whether `address` is a gRPC `dns:` target (`dns:///NAME:PORT`, `dns:NAME:PORT`)."""
    return address[:4].lower() == "dns:"


def dns_host_port(target: str) -> tuple[str, int]:
    """(NAME, PORT) of a `dns:` target; grpc's rules (an authority is ignored here: the
    system resolver answers).

    Raises:
        ValueError: it is not a `dns:` target with a name, or its port is not a number.
    """
    if not is_dns_target(target):
        raise ValueError(f"{target!r} is not a dns: target")
    rest = target[4:]
    if rest.startswith("//"):
        rest = rest[2:].partition("/")[2]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:
        host, port = rest, ""
    if not host:
        raise ValueError(f"{target!r} names no host")
    if port and not port.isdigit():
        raise ValueError(f"{target!r}: port {port!r} is not a number")
    return host, int(port) if port else _GRPC_DNS_DEFAULT_PORT


class Discovery:
    """Resolves one `dns:` target to the addresses of its replicas."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.host, self.port = dns_host_port(target)

    async def addresses(self) -> list[str] | str:
        """The sorted `ip:port` addresses the name resolves to now; or, when it does not
        resolve, why (a string)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return f"({self.host} does not resolve: {exc})"
        found = set()
        for family, _, _, _, sockaddr in infos:
            ip = str(sockaddr[0])
            found.add(f"[{ip}]:{self.port}" if family == socket.AF_INET6 else f"{ip}:{self.port}")
        return sorted(found)
