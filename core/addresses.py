"""The one parser of the gRPC addresses modelwire's settings and clients name, and the
default ports of its servers.

`parse_address` checks HOST:PORT (or a gRPC target URI) and says what is wrong with the
right example; `modelwire call` and `health`, `connect()`, blueprint `address:` models
and the catalog's `--catalog` use it (through `modelwire.config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwire.errors import ConfigError

__all__ = [
    "DEFAULT_CATALOG_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_PORT",
    "Address",
    "address_problem",
    "parse_address",
]

DEFAULT_PORT = 50051
DEFAULT_HTTP_PORT = 8080
DEFAULT_CATALOG_PORT = 50060


# gRPC target URIs that name no HOST:PORT modelwire could check (grpc parses them itself)
_GRPC_SCHEMES = frozenset({"dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock"})


@dataclass(frozen=True, slots=True)
class Address:
    """A gRPC address as given, and its host and port (None for a target URI such as unix:)."""

    text: str
    host: str | None = None
    port: int | None = None


def address_problem(address: str, *, example_port: int = DEFAULT_PORT) -> str | None:
    """Why `address` is not a gRPC address to dial, with the right example; None if it is one.

    HOST:PORT (`[IPV6]:PORT`) with a port from 1 to 65535, or a gRPC target URI
    (`dns:`, `unix:`, `ipv4:`, ...). A URL scheme (`http://`), a missing host or
    port, a space or a bare IPv6 address is a problem; so is a port grpc would
    wrap silently.
    """
    text = address
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() not in _GRPC_SCHEMES:
        hostport = rest.split("/", 1)[0] or "localhost"
        if address_problem(hostport) is not None:
            hostport = f"{hostport.rsplit(':', 1)[0] or 'localhost'}:{example_port}"
        return f"expected HOST:PORT, e.g. {hostport} (a gRPC address has no {scheme}:// scheme)"
    if text.partition(":")[0].lower() in _GRPC_SCHEMES:
        return None
    if not text.strip():
        return f"expected HOST:PORT, e.g. localhost:{example_port}"
    if any(c.isspace() for c in text):
        return f"expected HOST:PORT without spaces, e.g. {''.join(text.split())}"
    if text.count(":") > 1 and not text.startswith("["):
        return f"expected [IPV6]:PORT for an IPv6 address, e.g. [::1]:{example_port}"
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:  # no port at all, or `[::1]`
        if text.isdigit():
            return f"expected HOST:PORT, e.g. localhost:{text}"
        return f"expected HOST:PORT, e.g. {text}:{example_port}"
    if not host:
        return f"expected HOST:PORT, e.g. localhost{text}"
    if not port:
        return f"expected HOST:PORT, e.g. {text}{example_port}"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not 1-65535"
    return None


def parse_address(
    address: str, key: str = "address", source: str = "", *, example_port: int = DEFAULT_PORT
) -> Address:
    """`address` checked (`address_problem`) and split into host and port.

    The one parser of gRPC addresses: `modelwire call` and `health`, `connect()`,
    blueprint `address:` models and the catalog's `--catalog` use it.

    Raises:
        ConfigError: `address` is not one, naming `key` and giving the right example.
    """
    problem = address_problem(address, example_port=example_port)
    if problem is not None:
        raise ConfigError(key, address, problem, source=source)
    host, sep, port = address.rpartition(":")
    if not sep or address.partition(":")[0].lower() in _GRPC_SCHEMES:
        return Address(address)
    return Address(address, host.removeprefix("[").removesuffix("]"), int(port))
