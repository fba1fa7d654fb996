"""Request metrics of a model server, kept by prometheus-client, and their exposition.

`Metrics.observe()` is called once per call; `exposition()` renders a registry in
Prometheus' text format (0.0.4). Series names, labels and HELP texts are the ones
dashboards already use: `modelwire_model_info`, `modelwire_requests_total{method,code}`,
`modelwire_request_duration_seconds{method}`, `modelwire_{request,response}_bytes_total`;
a batched method adds `modelwire_batch_size{method}` (calls per batch, observed once per
batch) and `modelwire_batch_queue_wait_seconds{method}` (per call, from its arrival at
the queue to its batch's start), through `observe_batch()`.
Every request series also has a `protocol` label (`PROTOCOLS`: grpc, or connect and
acumos for the HTTP face), so one scrape counts a method's calls however they came.

With several worker processes (`serve --workers N`) prometheus-client's multiprocess mode
does the merge: the supervisor makes one directory for the run (`WorkerMetrics`), every
worker starts with PROMETHEUS_MULTIPROC_DIR naming it (prometheus-client reads it when it
is first imported, so only a fresh process can be put in that mode), and the supervisor's
scrape reads every worker's files. A worker's own `/metrics` (its HTTP face,
`Metrics.scrape`) reads them all too, so a scrape says the same whichever worker the
kernel hands the connection to.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = [
    "BATCH_SIZE_BUCKETS",
    "BUCKETS",
    "CONTENT_TYPE",
    "ENV_MULTIPROC_DIR",
    "PROTOCOLS",
    "QUEUE_WAIT_BUCKETS",
    "Metrics",
    "WorkerMetrics",
    "exposition",
]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUEUE_WAIT_BUCKETS = (0.0001, 0.00025, *BUCKETS)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
PROTOCOLS = ("grpc", "connect", "acumos")  # the values of the `protocol` label


class _Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class _WithoutCreated:
    """A registry's metrics without the `_created` samples prometheus-client adds to
    counters and histograms: the scrape keeps exactly the series it always had.
    (`disable_created_metrics()` would do it for the whole process, a model's own
    metrics included.)"""

    def __init__(self, registry: _Collector) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            created = metric.name + "_created"
            metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


def exposition(registry: _Collector) -> bytes:
    """`registry`'s metrics in Prometheus' text format 0.0.4 (`CONTENT_TYPE`)."""
    return generate_latest(_WithoutCreated(registry))


class Metrics:
    """Counters and latency histograms of one model server process.

    Each instance has a registry of its own, so several servers in one process (tests,
    embedding) keep apart. In a worker (PROMETHEUS_MULTIPROC_DIR set) the values live in
    the run's directory, where the supervisor reads them.
    """

    def __init__(self, model: str = "", version: str = "") -> None:
        self.model = model
        self.version = version
        self.registry = CollectorRegistry()
        r = self.registry
        if model:
            # livemax: a dead worker's copy is dropped (mark_process_dead), the rest merge
            info = Gauge(
                "modelwire_model_info",
                "The model this process serves.",
                ["model", "version"],
                registry=r,
                multiprocess_mode="livemax",
            )
            info.labels(model, version).set(1)
        self._calls = Counter(
            "modelwire_requests",
            "Calls handled, by method, gRPC status code and protocol.",
            ["method", "code", "protocol"],
            registry=r,
        )
        self._latency = Histogram(
            "modelwire_request_duration_seconds",
            "Time from request received to reply, by method and protocol.",
            ["method", "protocol"],
            buckets=BUCKETS,
            registry=r,
        )
        self._request_bytes = Counter(
            "modelwire_request_bytes",
            "Bytes of request bodies, by method and protocol.",
            ["method", "protocol"],
            registry=r,
        )
        self._response_bytes = Counter(
            "modelwire_response_bytes",
            "Bytes of response bodies, by method and protocol.",
            ["method", "protocol"],
            registry=r,
        )
        # in a worker of `serve --workers N`: every worker's values, merged
        self._merged: CollectorRegistry | None = None
        run_dir = os.environ.get(ENV_MULTIPROC_DIR)
        if run_dir:
            self._merged = CollectorRegistry()
            MultiProcessCollector(self._merged, path=run_dir)  # type: ignore[no-untyped-call]
        # (method, code, protocol) -> its children: `labels()` validates and locks on every
        # lookup
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram, Counter, Counter]] = {}
        # the batch histograms exist once a batched method is declared: a model without
        # one keeps exactly the series it always had
        self._batch_metrics: tuple[Histogram, Histogram] | None = None
        self._batch_children: dict[str, tuple[Histogram, Histogram]] = {}

    def observe(
        self,
        method: str,
        code: str,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
        protocol: str = "grpc",
    ) -> None:
        """Count one call of `method` that ended with status `code` (its gRPC name), that
        came by `protocol` (one of `PROTOCOLS`); the bytes are the request's and reply's
        bodies as they travelled (JSON for a JSON call)."""
        key = (method, code, protocol)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._calls.labels(method, code, protocol),
                self._latency.labels(method, protocol),
                self._request_bytes.labels(method, protocol),
                self._response_bytes.labels(method, protocol),
            )
        calls, latency, sent, received = children
        calls.inc()
        latency.observe(seconds)
        sent.inc(request_bytes)
        received.inc(response_bytes)

    def declare_batched(self, method: str) -> None:
        """Add `method`'s batch size and queue wait histograms (at zero until it runs)."""
        if self._batch_metrics is None:
            self._batch_metrics = (
                Histogram(
                    "modelwire_batch_size",
                    "Calls per batch of a batched method, by method.",
                    ["method"],
                    buckets=BATCH_SIZE_BUCKETS,
                    registry=self.registry,
                ),
                Histogram(
                    "modelwire_batch_queue_wait_seconds",
                    "Time a call of a batched method waited for its batch to start, by method.",
                    ["method"],
                    buckets=QUEUE_WAIT_BUCKETS,
                    registry=self.registry,
                ),
            )
        if method not in self._batch_children:
            sizes, waits = self._batch_metrics
            self._batch_children[method] = (sizes.labels(method), waits.labels(method))

    def observe_batch(self, method: str, size: int, queue_waits: Iterable[float]) -> None:
        """Count one batch of `method` (declared with `declare_batched`): its size, and
        each of its calls' queue wait (s)."""
        sizes, waits = self._batch_children[method]
        sizes.observe(size)
        for wait in queue_waits:
            waits.observe(wait)

    def exposition(self) -> bytes:
        """This process's metrics as a scrape answers them."""
        return exposition(self.registry)

    def scrape(self) -> bytes:
        """What this service's /metrics answers: this process's metrics, or in a worker of
        `serve --workers N` (PROMETHEUS_MULTIPROC_DIR set) every worker's, merged."""
        return exposition(self._merged) if self._merged is not None else self.exposition()


class WorkerMetrics:
    """The metrics directory of one `serve --workers N` run, and its merged scrape.

    Workers get it through `env` (PROMETHEUS_MULTIPROC_DIR); a dead worker is marked
    (`mark_dead`) so its live gauges drop out, while its counts stay in the sums;
    `close()` removes the directory.
    """

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="modelwire-metrics-")
        self._registry = CollectorRegistry()
        MultiProcessCollector(self._registry, path=self.path)  # type: ignore[no-untyped-call]

    @property
    def env(self) -> dict[str, str]:
        return {ENV_MULTIPROC_DIR: self.path}

    def mark_dead(self, pid: int) -> None:
        mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def exposition(self) -> bytes:
        """Every worker's metrics, merged (counters and histograms summed)."""
        return exposition(self._registry)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> WorkerMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
