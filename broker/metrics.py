"""The broker's metrics: per step calls, latency and bytes; forwarded vs transcoded edges.

`modelwire_step_requests_total{method,step,code}`, a latency histogram and
byte counters per step, and `modelwire_edges_total{method,step,mode}` where
mode is `forwarded` (bytes passed on untouched) or `transcoded` (decoded and
re-encoded by field name) -- the number that shows the forwarding path works.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

from modelwire.hosting.metrics import BUCKETS

__all__ = ["BrokerMetrics", "render_broker"]


class BrokerMetrics:
    """Counters of one broker process (thread-safe)."""

    def __init__(self, solution: str = "") -> None:
        self.solution = solution
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str, str], int] = {}
        self._hist: dict[tuple[str, str], list[float]] = {}
        self._bytes: dict[tuple[str, str], list[int]] = {}
        self._edges: dict[tuple[str, str, str], int] = {}
        self._solution_calls: dict[tuple[str, str], int] = {}
        self._solution_hist: dict[str, list[float]] = {}

    def observe_step(
        self, method: str, step: str, code: str, seconds: float, sent: int, received: int
    ) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            key = (method, step, code)
            self._calls[key] = self._calls.get(key, 0) + 1
            h = self._hist.get((method, step))
            if h is None:
                h = self._hist[(method, step)] = [0.0] * (len(BUCKETS) + 2)
            if i < len(BUCKETS):
                h[i] += 1
            h[-2] += seconds
            h[-1] += 1
            b = self._bytes.get((method, step))
            if b is None:
                b = self._bytes[(method, step)] = [0, 0]
            b[0] += sent
            b[1] += received

    def count_edges(self, method: str, step: str, forwarded: int, transcoded: int) -> None:
        self.count_call_edges(method, [(step, forwarded, transcoded)])

    def count_call_edges(self, method: str, steps: list[tuple[str, int, int]]) -> None:
        """One call's edges: (step, forwarded, transcoded) per step, under one lock."""
        with self._lock:
            for step, forwarded, transcoded in steps:
                for mode, n in (("forwarded", forwarded), ("transcoded", transcoded)):
                    if n:
                        key = (method, step, mode)
                        self._edges[key] = self._edges.get(key, 0) + n

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            key = (method, code)
            self._solution_calls[key] = self._solution_calls.get(key, 0) + 1
            h = self._solution_hist.get(method)
            if h is None:
                h = self._solution_hist[method] = [0.0] * (len(BUCKETS) + 2)
            if i < len(BUCKETS):
                h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def edges(self, method: str, mode: str) -> int:
        """Edges of `method` handled in `mode` so far, summed over its steps."""
        with self._lock:
            return sum(n for (m, _, md), n in self._edges.items() if m == method and md == mode)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "solution": self.solution,
                "calls": [[*k, n] for k, n in sorted(self._calls.items())],
                "hist": [[*k, list(h)] for k, h in sorted(self._hist.items())],
                "bytes": [[*k, list(b)] for k, b in sorted(self._bytes.items())],
                "edges": [[*k, n] for k, n in sorted(self._edges.items())],
                "solution_calls": [[*k, n] for k, n in sorted(self._solution_calls.items())],
                "solution_hist": [[k, list(h)] for k, h in sorted(self._solution_hist.items())],
            }


def _hist_lines(name: str, labels: str, h: list[float]) -> list[str]:
    out = []
    cumulative = 0.0
    for le, n in zip(BUCKETS, h, strict=False):
        cumulative += n
        out.append(f'{name}_bucket{{{labels},le="{le}"}} {int(cumulative)}')
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {int(h[-1])}')
    out.append(f"{name}_sum{{{labels}}} {h[-2]!r}")
    out.append(f"{name}_count{{{labels}}} {int(h[-1])}")
    return out


def render_broker(s: dict[str, Any]) -> str:
    """Prometheus text exposition format 0.0.4."""
    p = "modelwire"
    out = [
        f"# HELP {p}_solution_info The solution this broker serves.",
        f"# TYPE {p}_solution_info gauge",
        f'{p}_solution_info{{solution="{s["solution"]}"}} 1',
        f"# HELP {p}_requests_total Solution calls handled, by method and gRPC status code.",
        f"# TYPE {p}_requests_total counter",
    ]
    out += [f'{p}_requests_total{{method="{m}",code="{c}"}} {n}' for m, c, n in s["solution_calls"]]
    out += [
        f"# HELP {p}_request_duration_seconds Solution call latency, by method.",
        f"# TYPE {p}_request_duration_seconds histogram",
    ]
    for m, h in s["solution_hist"]:
        out += _hist_lines(f"{p}_request_duration_seconds", f'method="{m}"', h)
    out += [
        f"# HELP {p}_step_requests_total Calls to model services, by method, step and status.",
        f"# TYPE {p}_step_requests_total counter",
    ]
    out += [
        f'{p}_step_requests_total{{method="{m}",step="{st}",code="{c}"}} {n}'
        for m, st, c, n in s["calls"]
    ]
    out += [
        f"# HELP {p}_step_duration_seconds Latency of a step's call to its model, by step.",
        f"# TYPE {p}_step_duration_seconds histogram",
    ]
    for m, st, h in s["hist"]:
        out += _hist_lines(f"{p}_step_duration_seconds", f'method="{m}",step="{st}"', h)
    for kind, idx in (("sent", 0), ("received", 1)):
        out += [
            f"# HELP {p}_step_{kind}_bytes_total Bytes {kind} by a step.",
            f"# TYPE {p}_step_{kind}_bytes_total counter",
        ]
        out += [
            f'{p}_step_{kind}_bytes_total{{method="{m}",step="{st}"}} {b[idx]}'
            for m, st, b in s["bytes"]
        ]
    out += [
        f"# HELP {p}_edges_total Inputs of steps, forwarded as bytes or transcoded by name.",
        f"# TYPE {p}_edges_total counter",
    ]
    out += [
        f'{p}_edges_total{{method="{m}",step="{st}",mode="{md}"}} {n}'
        for m, st, md, n in s["edges"]
    ]
    return "\n".join(out) + "\n"
