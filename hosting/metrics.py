"""Request metrics per method and status, exposed in Prometheus' text format.

Standard library only: the runtime, the broker and the catalog all serve metrics.

`Metrics.observe()` is called once per call (a lock and a few additions);
`MetricsServer` serves `/metrics` over HTTP from a daemon thread. With several
worker processes, each worker serves a JSON snapshot on a private loopback port
and the supervisor merges them (`merge()`), so one scrape sees every worker.
"""

from __future__ import annotations

import bisect
import json
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelwire.errors import ConfigError

__all__ = ["BUCKETS", "Metrics", "MetricsServer", "fetch_snapshot", "merge", "render"]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Snapshot = dict[str, Any]


class Metrics:
    """Counters and latency histograms of one process."""

    def __init__(self, model: str = "", version: str = "") -> None:
        self._lock = threading.Lock()
        self.model = model
        self.version = version
        self._calls: dict[tuple[str, str], int] = {}
        self._hist: dict[str, list[float]] = {}  # method -> bucket counts + [sum, count]
        self._bytes: dict[str, list[int]] = {}  # method -> [request bytes, response bytes]

    def observe(
        self, method: str, code: str, seconds: float, request_bytes: int, response_bytes: int
    ) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            key = (method, code)
            self._calls[key] = self._calls.get(key, 0) + 1
            h = self._hist.get(method)
            if h is None:
                h = self._hist[method] = [0.0] * (len(BUCKETS) + 2)
            if i < len(BUCKETS):
                h[i] += 1
            h[-2] += seconds
            h[-1] += 1
            b = self._bytes.get(method)
            if b is None:
                b = self._bytes[method] = [0, 0]
            b[0] += request_bytes
            b[1] += response_bytes

    def snapshot(self) -> Snapshot:
        with self._lock:
            return {
                "model": self.model,
                "version": self.version,
                "calls": [[m, c, n] for (m, c), n in sorted(self._calls.items())],
                "hist": {m: list(h) for m, h in sorted(self._hist.items())},
                "bytes": {m: list(b) for m, b in sorted(self._bytes.items())},
            }


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """Sum snapshots of several workers."""
    calls: dict[tuple[str, str], int] = {}
    hist: dict[str, list[float]] = {}
    nbytes: dict[str, list[int]] = {}
    model = version = ""
    for s in snapshots:
        model, version = s.get("model", model), s.get("version", version)
        for m, c, n in s["calls"]:
            calls[(m, c)] = calls.get((m, c), 0) + n
        for m, h in s["hist"].items():
            acc = hist.setdefault(m, [0.0] * len(h))
            for i, v in enumerate(h):
                acc[i] += v
        for m, b in s["bytes"].items():
            accb = nbytes.setdefault(m, [0, 0])
            accb[0] += b[0]
            accb[1] += b[1]
    return {
        "model": model,
        "version": version,
        "calls": [[m, c, n] for (m, c), n in sorted(calls.items())],
        "hist": dict(sorted(hist.items())),
        "bytes": dict(sorted(nbytes.items())),
    }


def _fmt(v: float) -> str:
    return repr(float(v)) if v != int(v) else f"{int(v)}"


def render(s: Snapshot, prefix: str = "modelwire") -> str:
    """Prometheus text exposition format 0.0.4."""
    out = []
    if s.get("model"):
        out += [
            f"# HELP {prefix}_model_info The model this process serves.",
            f"# TYPE {prefix}_model_info gauge",
            f'{prefix}_model_info{{model="{s["model"]}",version="{s["version"]}"}} 1',
        ]
    out += [
        f"# HELP {prefix}_requests_total Calls handled, by method and gRPC status code.",
        f"# TYPE {prefix}_requests_total counter",
    ]
    out += [f'{prefix}_requests_total{{method="{m}",code="{c}"}} {n}' for m, c, n in s["calls"]]
    out += [
        f"# HELP {prefix}_request_duration_seconds Time from request received to reply, by method.",
        f"# TYPE {prefix}_request_duration_seconds histogram",
    ]
    for m, h in s["hist"].items():
        cumulative = 0.0
        for le, n in zip(BUCKETS, h, strict=False):
            cumulative += n
            out.append(
                f'{prefix}_request_duration_seconds_bucket{{method="{m}",le="{le}"}} '
                f"{_fmt(cumulative)}"
            )
        out.append(
            f'{prefix}_request_duration_seconds_bucket{{method="{m}",le="+Inf"}} {_fmt(h[-1])}'
        )
        out.append(f'{prefix}_request_duration_seconds_sum{{method="{m}"}} {h[-2]!r}')
        out.append(f'{prefix}_request_duration_seconds_count{{method="{m}"}} {_fmt(h[-1])}')
    for kind, idx in (("request", 0), ("response", 1)):
        out += [
            f"# HELP {prefix}_{kind}_bytes_total Bytes of {kind} messages, by method.",
            f"# TYPE {prefix}_{kind}_bytes_total counter",
        ]
        out += [
            f'{prefix}_{kind}_bytes_total{{method="{m}"}} {b[idx]}' for m, b in s["bytes"].items()
        ]
    return "\n".join(out) + "\n"


class MetricsServer:
    """`/metrics` (Prometheus text) and `/snapshot` (JSON) over HTTP, in a daemon thread.

    `source` returns a snapshot; `text` renders it (default: a model server's metrics).

    Raises:
        ConfigError: the address cannot be bound (port in use, unknown host).
    """

    def __init__(
        self,
        host: str,
        port: int,
        source: Callable[[], Snapshot],
        text: Callable[[Snapshot], str] | None = None,
    ) -> None:
        to_text = text or render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body = to_text(source()).encode()
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                elif self.path == "/snapshot":
                    body = json.dumps(source()).encode()
                    ctype = "application/json"
                else:
                    self.send_error(404, "try /metrics")
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
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
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc})",
            ) from exc
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        # shutdown() waits for the loop's next poll: 0.1 s, not the default 0.5 s, so a
        # server with metrics stops as fast as one without (at 10 wakeups a second)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="modelwire-metrics",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def fetch_snapshot(port: int, timeout: float = 2.0) -> Snapshot:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot", timeout=timeout) as r:
        data: Snapshot = json.load(r)
        return data
