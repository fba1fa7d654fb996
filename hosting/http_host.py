"""The HTTP face as a face of the service host: `HttpListener` for the sync host,
`AioHttpListener` for the asyncio one.

Each serves an `HttpFace` (the ASGI app of one service) on the host's address and a
port of its own: the sync variant with `HttpServer` (uvicorn on a thread of its own, the
gRPC server keeping the main thread), the aio variant with `AioHttpServer` (uvicorn on
the host's event loop, beside the aio gRPC server). /readyz reads the host's
`ServingState`, which the app is made with (`set_serving` only logs the URL once the
host serves); draining closes the listener and lets requests in flight finish. The
face's stable line is what tools read to find the port (the host announces it before its
own listening line):

    modelwire runtime http on 127.0.0.1:8080

Example:
    >>> state = ServingState()
    >>> app = HttpFace(schema, handlers, ready=lambda: state.ready)
    >>> http = HttpListener(app, HttpListen("127.0.0.1", 8080, listening="x http on"))
    >>> ServiceHost(spec, faces=[http], state=state).start()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from modelwire.config import ServerTls
from modelwire.hosting.binding import connect_host, format_host
from modelwire.hosting.http_face import HttpFace
from modelwire.hosting.http_server import AioHttpServer, HttpServer
from modelwire.hosting.tls import server_certs

__all__ = ["AioHttpListener", "HttpListen", "HttpListener"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpListen:
    """Where and how the HTTP face listens.

    Attributes:
        host: the address to bind (the gRPC face's).
        port: the port; 0 picks a free one.
        reuse_port: share the port with sibling workers (SO_REUSEPORT).
        grace: seconds a stop lets requests in flight finish, unless the host says.
        listening: the stable line's prefix (`modelwire runtime http on`); '' for none.
        tls: serve HTTPS with this certificate (the gRPC face's); None: plain HTTP.
    """

    host: str = "127.0.0.1"
    port: int = 0
    reuse_port: bool = False
    grace: float = 10.0
    listening: str = ""
    tls: ServerTls | None = None

    def server_options(self) -> dict[str, Any]:
        """The keyword arguments of `HttpServer` and `AioHttpServer` for this listen."""
        context = server_certs(self.tls).ssl_context() if self.tls is not None else None
        return {
            "host": self.host,
            "port": self.port,
            "reuse_port": self.reuse_port,
            "grace": self.grace,
            "ssl_context": context,
        }


class _Listener:
    app: HttpFace
    listen: HttpListen
    port: int

    def announcement(self) -> str:
        if not self.listen.listening:
            return ""
        return f"{self.listen.listening} {format_host(self.listen.host)}:{self.port}"

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the face (`http://host:port`, or
        `https://` with TLS)."""
        scheme = "https" if self.listen.tls is not None else "http"
        return f"{scheme}://{format_host(connect_host(self.listen.host))}:{self.port}"

    def _serving(self, serving: bool) -> None:
        # said once every face is up: a face that fails after this one started says nothing
        if serving:
            url = self.url
            logger.info("HTTP at %s (docs at %s/docs)", url, url, extra={"http_port": self.port})


class HttpListener(_Listener):
    """The HTTP face of a sync host (a `modelwire.hosting.faces.Face`).

    Args:
        app: the service's HTTP face, made with the host's `ServingState` for /readyz.
        listen: where it listens.
    """

    def __init__(self, app: HttpFace, listen: HttpListen) -> None:
        self.app = app
        self.listen = listen
        self.port = 0
        self.server: HttpServer | None = None

    def start(self) -> None:
        """Bind and serve (ConfigError `http_port=...` if the port cannot be bound)."""
        self.server = HttpServer(self.app, **self.listen.server_options())
        self.port = self.server.port

    def set_serving(self, serving: bool) -> None:
        """Log where it serves; /readyz reads the host's state itself."""
        self._serving(serving)

    def stop(self, grace: float | None) -> None:
        """Close the listener, let requests in flight finish (up to `grace` s), stop the
        handler threads."""
        if self.server is not None:
            self.server.stop(grace)
        self.app.close()


class AioHttpListener(_Listener):
    """The HTTP face of an asyncio host (a `modelwire.hosting.faces.AioFace`); see
    `HttpListener`."""

    def __init__(self, app: HttpFace, listen: HttpListen) -> None:
        self.app = app
        self.listen = listen
        self.port = 0
        self.server: AioHttpServer | None = None

    async def start(self) -> None:
        server = AioHttpServer(self.app, **self.listen.server_options())
        await server.start()
        self.server = server
        self.port = server.port

    async def set_serving(self, serving: bool) -> None:
        self._serving(serving)

    async def stop(self, grace: float | None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
        self.app.close()
