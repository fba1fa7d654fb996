"""The broker's metrics: per step calls, latency and bytes; forwarded vs transcoded edges.

`modelwire_step_requests_total{method,step,code}`, a latency histogram and
byte counters per step, and `modelwire_edges_total{method,step,mode}` where
mode is `forwarded` (bytes passed on untouched) or `transcoded` (decoded and
re-encoded by field name) -- the number that shows the forwarding path works.
The solution's own calls are `modelwire_requests_total{method,code,protocol}` and
`modelwire_request_duration_seconds{method,protocol}`, as a model server counts them
(protocol: grpc, or connect and acumos for the HTTP face).
`modelwire_replica_requests_total{model,replica,code}` counts the calls sent to each
replica of a model: `replica` is its number (1..N) for replicas the runner started,
its `ip:port` for those found by resolving a `dns:///` address.
Kept by prometheus-client, in a registry per broker; rendered by
`modelwire.hosting.metrics.exposition`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelwire.hosting.metrics import BUCKETS, exposition

__all__ = ["BrokerMetrics"]


class BrokerMetrics:
    """Counters of one broker process (thread-safe)."""

    def __init__(self, solution: str = "") -> None:
        self.solution = solution
        self.registry = CollectorRegistry()
        r = self.registry
        info = Gauge(
            "modelwire_solution_info", "The solution this broker serves.", ["solution"], registry=r
        )
        info.labels(solution).set(1)
        self._solution_calls = Counter(
            "modelwire_requests",
            "Solution calls handled, by method, gRPC status code and protocol.",
            ["method", "code", "protocol"],
            registry=r,
        )
        self._solution_latency = Histogram(
            "modelwire_request_duration_seconds",
            "Solution call latency, by method and protocol.",
            ["method", "protocol"],
            buckets=BUCKETS,
            registry=r,
        )
        self._calls = Counter(
            "modelwire_step_requests",
            "Calls to model services, by method, step and status.",
            ["method", "step", "code"],
            registry=r,
        )
        self._latency = Histogram(
            "modelwire_step_duration_seconds",
            "Latency of a step's call to its model, by step.",
            ["method", "step"],
            buckets=BUCKETS,
            registry=r,
        )
        self._sent = Counter(
            "modelwire_step_sent_bytes", "Bytes sent by a step.", ["method", "step"], registry=r
        )
        self._received = Counter(
            "modelwire_step_received_bytes",
            "Bytes received by a step.",
            ["method", "step"],
            registry=r,
        )
        self._edges = Counter(
            "modelwire_edges",
            "Inputs of steps, forwarded as bytes or transcoded by name.",
            ["method", "step", "mode"],
            registry=r,
        )
        self._replica_calls = Counter(
            "modelwire_replica_requests",
            "Calls to model services, by model, replica and status.",
            ["model", "replica", "code"],
            registry=r,
        )
        self._replica_children: dict[tuple[str, str, str], Counter] = {}
        # label values -> children: `labels()` validates and locks on every lookup
        self._step_children: dict[tuple[str, str, str], tuple[Counter, Histogram, Counter, Counter]]
        self._step_children = {}
        self._edge_children: dict[tuple[str, str, str], Counter] = {}
        self._call_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def observe_step(
        self, method: str, step: str, code: str, seconds: float, sent: int, received: int
    ) -> None:
        key = (method, step, code)
        children = self._step_children.get(key)
        if children is None:
            children = self._step_children[key] = (
                self._calls.labels(method, step, code),
                self._latency.labels(method, step),
                self._sent.labels(method, step),
                self._received.labels(method, step),
            )
        calls, latency, sent_bytes, received_bytes = children
        calls.inc()
        latency.observe(seconds)
        sent_bytes.inc(sent)
        received_bytes.inc(received)

    def count_replica(self, model: str, replica: str, code: str) -> None:
        """One call sent to replica `replica` of `model`, answered with `code`."""
        key = (model, replica, code)
        child = self._replica_children.get(key)
        if child is None:
            child = self._replica_children[key] = self._replica_calls.labels(*key)
        child.inc()

    def replica_calls(self, model: str) -> dict[str, int]:
        """Calls sent to each replica of `model` so far (any status), by replica."""
        out: dict[str, int] = {}
        for m, replica, _, n in self._counts(
            "modelwire_replica_requests_total", "model", "replica", "code"
        ):
            if m == model:
                out[replica] = out.get(replica, 0) + n
        return out

    def count_edges(self, method: str, step: str, forwarded: int, transcoded: int) -> None:
        self.count_call_edges(method, [(step, forwarded, transcoded)])

    def count_call_edges(self, method: str, steps: list[tuple[str, int, int]]) -> None:
        """One call's edges: (step, forwarded, transcoded) per step."""
        for step, forwarded, transcoded in steps:
            for mode, n in (("forwarded", forwarded), ("transcoded", transcoded)):
                if n:
                    self._edge(method, step, mode).inc(n)

    def _edge(self, method: str, step: str, mode: str) -> Counter:
        key = (method, step, mode)
        child = self._edge_children.get(key)
        if child is None:
            child = self._edge_children[key] = self._edges.labels(method, step, mode)
        return child

    def observe_call(self, method: str, code: str, seconds: float, protocol: str = "grpc") -> None:
        """One call of the solution's `method`, ended with `code`, that came by `protocol`."""
        key = (method, code, protocol)
        children = self._call_children.get(key)
        if children is None:
            children = self._call_children[key] = (
                self._solution_calls.labels(method, code, protocol),
                self._solution_latency.labels(method, protocol),
            )
        calls, latency = children
        calls.inc()
        latency.observe(seconds)

    def _counts(self, name: str, *labels: str) -> list[list[Any]]:
        """[*label values, count] of counter `name`, sorted (for reading back, not scraping)."""
        rows = [
            [*(s.labels[k] for k in labels), int(s.value)]
            for metric in self.registry.collect()
            for s in metric.samples
            if s.name == name
        ]
        return sorted(rows)

    def edges(self, method: str, mode: str) -> int:
        """Edges of `method` handled in `mode` so far, summed over its steps."""
        rows = self._counts("modelwire_edges_total", "method", "step", "mode")
        return sum(n for m, _, md, n in rows if m == method and md == mode)

    def snapshot(self) -> dict[str, Any]:
        """The counters as sorted rows: `calls` [method, step, code, n], `bytes` [method,
        step, [sent, received]], `edges` [method, step, mode, n], `solution_calls`
        [method, code, n] (summed over the protocols), `replicas` [model, replica, code, n]."""
        sent = self._counts("modelwire_step_sent_bytes_total", "method", "step")
        received = {
            (m, s): n
            for m, s, n in self._counts("modelwire_step_received_bytes_total", "method", "step")
        }
        return {
            "solution": self.solution,
            "calls": self._counts("modelwire_step_requests_total", "method", "step", "code"),
            "bytes": [[m, s, [n, received.get((m, s), 0)]] for m, s, n in sent],
            "edges": self._counts("modelwire_edges_total", "method", "step", "mode"),
            "solution_calls": _summed(self._counts("modelwire_requests_total", "method", "code")),
            "replicas": self._counts(
                "modelwire_replica_requests_total", "model", "replica", "code"
            ),
        }

    def exposition(self) -> bytes:
        """The broker's metrics as a scrape answers them (Prometheus text 0.0.4)."""
        return exposition(self.registry)


def _summed(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows [*labels, n] with equal labels added up (the label left out differed)."""
    totals: dict[tuple[Any, ...], int] = {}
    for *labels, n in rows:
        totals[tuple(labels)] = totals.get(tuple(labels), 0) + n
    return [[*labels, n] for labels, n in sorted(totals.items())]
