"""`--metrics-port`: `GET /metrics` over HTTP from a daemon thread, for a Prometheus scraper.

One small standard-library server rather than prometheus-client's `start_http_server`,
which answers every path with the metrics and binds without saying which port failed;
here other paths get 404 and a busy port is a ConfigError naming it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelwire.config import ServerTls
from modelwire.errors import ConfigError
from modelwire.hosting.binding import format_host
from modelwire.hosting.metrics import CONTENT_TYPE
from modelwire.hosting.tls import server_certs

__all__ = ["MetricsServer"]


class MetricsServer:
    """Serves `render()` (Prometheus text, see `modelwire.hosting.metrics`) at `/metrics`.

    Raises:
        ConfigError: the address cannot be bound (port in use, unknown host).
    """

    def __init__(
        self, host: str, port: int, render: Callable[[], bytes], *, tls: ServerTls | None = None
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404, "try /metrics")
                    return
                body = render()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self._httpd = Server((host, port), Handler)
        except OSError as exc:
            raise ConfigError(
                "metrics_port",
                port,
                f"cannot serve metrics on {format_host(host)}:{port} ({exc.strerror or exc})",
            ) from exc
        if tls is not None:
            # the handshake happens on the request's own thread, at its first read
            self._httpd.socket = (
                server_certs(tls)
                .ssl_context()
                .wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
            )
        self.scheme = "https" if tls is not None else "http"
        self._httpd.daemon_threads = True
        self.host = host
        self.port: int = self._httpd.server_address[1]
        # shutdown() waits for the loop's next poll: 0.1 s, not the default 0.5 s, so a
        # server with metrics stops as fast as one without (at 10 wakeups a second)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="modelwire-metrics",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{format_host(self.host)}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
