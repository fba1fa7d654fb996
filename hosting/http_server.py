"""Serve an ASGI app (the HTTP face) with uvicorn + httptools: on a thread, or on the loop.

`HttpServer` is the sync host's: the gRPC server keeps the main thread (and its signal
handling) and uvicorn runs its own event loop (uvloop where installed) in a daemon
thread. `AioHttpServer` is the asyncio host's: uvicorn serves on the host's running
loop, beside the aio gRPC server, and never touches signal handlers (the host handles
SIGTERM and SIGINT). Either way the socket is bound here, so that a port in use is a
clear `ConfigError` before anything starts, and so that worker processes can share one
port (`reuse_port`, SO_REUSEPORT, as the gRPC port does). uvicorn does not touch
logging (`log_config=None`); its own loggers only report warnings.
"""

from __future__ import annotations

import asyncio
import errno
import math
import socket
import ssl
import threading
import time
from typing import Any

from modelwire.errors import ConfigError
from modelwire.hosting.binding import check_port_free, format_host

__all__ = ["AioHttpServer", "HttpServer"]


def _bind(host: str, port: int, reuse_port: bool, backlog: int) -> socket.socket:
    if not reuse_port:  # a sibling worker's port is taken on purpose
        # an unknown host, another machine's address or a taken port are said as the gRPC
        # face says them
        check_port_free(host, port, "http_port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said, not 0: asyncio's own loop turns TCP_NODELAY on only for sockets of
    # that proto, and without it uvicorn's separate head and body writes meet delayed ACKs
    # (every answer of the aio face took 40 ms more); uvloop sets it either way
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        hint = "; is another server using it?" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(
            "http_port",
            port,
            f"cannot serve HTTP on {format_host(host)}:{port} ({exc.strerror or exc}){hint}",
        ) from exc
    return sock


def _server(app: Any, grace: float, backlog: int, ssl_context: ssl.SSLContext | None) -> Any:
    """A uvicorn.Server of `app`, configured as both variants serve it (HTTPS with
    `ssl_context`)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http="httptools",
        interface="asgi3",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=math.ceil(grace),
        backlog=backlog,
        ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context else None,
    )
    return uvicorn.Server(config)


class _Bound:
    """What both variants share: the bound socket, the uvicorn server, the address."""

    host: str
    port: int
    grace: float
    _sock: socket.socket
    _server: Any

    def _setup(
        self,
        app: Any,
        host: str,
        port: int,
        reuse_port: bool,
        grace: float,
        backlog: int,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.host = host
        self._sock = _bind(host, port, reuse_port, backlog)
        self.port = int(self._sock.getsockname()[1])
        self.grace = grace
        self._server = _server(app, grace, backlog, ssl_context)

    @property
    def address(self) -> str:
        return f"{format_host(self.host)}:{self.port}"

    def _exit(self, grace: float | None) -> None:
        if grace is not None:
            self._server.config.timeout_graceful_shutdown = math.ceil(grace)
        self._server.should_exit = True


class HttpServer(_Bound):
    """An ASGI app served on host:port from a thread of its own, until `stop()`.

    Args:
        app: the ASGI 3 application (an `HttpFace`).
        host: the address to bind.
        port: the port; 0 picks a free one (see `.port`).
        reuse_port: set SO_REUSEPORT, for several processes on one port.
        grace: seconds `stop()` lets requests in flight finish.
        backlog: the listen queue length.
        ssl_context: serve HTTPS with it (`modelwire.hosting.tls`); None: plain HTTP.

    Raises:
        ConfigError: the address cannot be bound (in use, unknown host), or uvicorn did
            not start.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reuse_port: bool = False,
        grace: float = 10.0,
        backlog: int = 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._setup(app, host, port, reuse_port, grace, backlog, ssl_context)
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="modelwire-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                reason = repr(self._failed[0]) if self._failed else "it did not start in 30 s"
                raise ConfigError("http_port", port, f"the HTTP server failed to start: {reason}")
            time.sleep(0.005)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # SystemExit from uvicorn's startup, too
            self._failed.append(exc)

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests in flight finish (up to `grace` s), and return."""
        self._exit(grace)
        self._thread.join((grace if grace is not None else self.grace) + 5)

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(0)


class AioHttpServer(_Bound):
    """An ASGI app served on host:port on the running event loop, from `start()` to
    `stop()` (the arguments are `HttpServer`'s).

    Raises:
        ConfigError: the address cannot be bound (from the constructor).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reuse_port: bool = False,
        grace: float = 10.0,
        backlog: int = 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._setup(app, host, port, reuse_port, grace, backlog, ssl_context)
        self._ticks: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start answering on the running loop (uvicorn's `serve()` without its signal
        handlers: startup, then its once-a-tick loop as a task)."""
        server = self._server
        config = server.config
        if not config.loaded:
            config.load()
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[self._sock])
        except SystemExit as exc:  # uvicorn's way of saying its startup failed
            self._sock.close()
            raise ConfigError(
                "http_port", self.port, f"the HTTP server failed to start: {exc!r}"
            ) from None
        self._ticks = asyncio.ensure_future(server.main_loop())

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests in flight finish (up to `grace` s), and return."""
        self._exit(grace)
        if self._ticks is None:
            self._sock.close()
            return
        await self._ticks
        self._ticks = None
        await self._server.shutdown(sockets=[self._sock])
