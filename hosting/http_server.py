"""Serve an ASGI app (the HTTP face) with uvicorn + httptools, from a background thread.

The gRPC server keeps the main thread (and its signal handling); uvicorn runs its own
event loop (uvloop where installed) in a daemon thread, on a socket bound here so that
a port in use is a clear `ConfigError` before anything starts, and so that worker
processes can share one port (`reuse_port`, SO_REUSEPORT, as the gRPC port does).
uvicorn does not touch logging (`log_config=None`); its own loggers only report
warnings.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from typing import Any

from modelwire.errors import ConfigError

__all__ = ["HttpServer"]


def _bind(host: str, port: int, reuse_port: bool, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise ConfigError(
            "http_port", port, f"cannot serve HTTP on {shown}:{port} ({exc.strerror or exc})"
        ) from exc
    return sock


class HttpServer:
    """An ASGI app served on host:port until `stop()`.

    Args:
        app: the ASGI 3 application (an `HttpFace`).
        host: the address to bind.
        port: the port; 0 picks a free one (see `.port`).
        reuse_port: set SO_REUSEPORT, for several processes on one port.
        grace: seconds `stop()` lets requests in flight finish.
        backlog: the listen queue length.

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
    ) -> None:
        import uvicorn

        self.host = host
        self._sock = _bind(host, port, reuse_port, backlog)
        self.port: int = self._sock.getsockname()[1]
        self.grace = grace
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
        )
        self._server = uvicorn.Server(config)
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

    @property
    def address(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests in flight finish (up to `grace` s), and return."""
        if grace is not None:
            self._server.config.timeout_graceful_shutdown = math.ceil(grace)
        self._server.should_exit = True
        self._thread.join((grace if grace is not None else self.grace) + 5)

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(0)
