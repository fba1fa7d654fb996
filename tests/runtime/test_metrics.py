"""Prometheus metrics on `--metrics-port`: calls and latency per method and status."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from modelwire.errors import ServiceError
from modelwire.hosting.metrics import BUCKETS
from tests.runtime import prometheus
from tests.runtime.serving import Served, json_logs

METRICS_PATHS = [
    pytest.param(("in-process", "sync"), id="in-process-sync"),
    pytest.param(("subprocess", "sync"), id="subprocess-sync"),
    pytest.param(("subprocess", "aio"), id="subprocess-aio"),
]


def _metrics_port(served: Served) -> int:
    if served.process is None:
        return served.handle.metrics_port
    ports = [r["metrics_port"] for r in json_logs(served.stderr()) if "metrics_port" in r]
    assert len(ports) == 1, served.stderr()
    return int(ports[0])


def _get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], ""


@pytest.mark.parametrize("path", METRICS_PATHS)
def test_calls_and_latency_by_method_and_status(own_server, path):
    served = own_server("echo", *path, metrics_port=0)
    client = served.client()
    for i in range(3):
        assert client.add(i, 1) == i + 1
    for _ in range(2):
        with pytest.raises(ServiceError):
            client.reject(-1.0)
    with pytest.raises(ServiceError):
        client.fail(0.0)
    encode = client.codec.method("add").encode_request
    request_bytes = sum(len(encode((i, 1), {})) for i in range(3))  # a=0 is not sent

    status, content_type, text = _get(_metrics_port(served), "/metrics")
    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    scrape = prometheus.parse(text)
    assert scrape.types == {
        "modelwire_model_info": "gauge",
        "modelwire_requests_total": "counter",
        "modelwire_request_duration_seconds": "histogram",
        "modelwire_request_bytes_total": "counter",
        "modelwire_response_bytes_total": "counter",
    }
    assert scrape.value("modelwire_model_info", model="echo", version="1.0.0") == 1
    grpc = {"protocol": "grpc"}
    assert scrape.series("modelwire_requests_total") == {
        frozenset({("method", "add"), ("code", "OK"), *grpc.items()}): 3,
        frozenset({("method", "reject"), ("code", "INVALID_ARGUMENT"), *grpc.items()}): 2,
        frozenset({("method", "fail"), ("code", "INTERNAL"), *grpc.items()}): 1,
    }
    for method, count in (("add", 3), ("reject", 2), ("fail", 1)):
        name = "modelwire_request_duration_seconds"
        buckets = [
            scrape.value(f"{name}_bucket", method=method, le=str(le), **grpc) for le in BUCKETS
        ]
        assert buckets == sorted(buckets), "buckets are cumulative"
        assert scrape.value(f"{name}_bucket", method=method, le="+Inf", **grpc) == count
        assert scrape.value(f"{name}_count", method=method, **grpc) == count
        assert 0 < scrape.value(f"{name}_sum", method=method, **grpc) < 5
    assert scrape.value("modelwire_request_bytes_total", method="add", **grpc) == request_bytes
    # one double
    assert scrape.value("modelwire_response_bytes_total", method="add", **grpc) == 3 * 9
    assert scrape.value("modelwire_response_bytes_total", method="fail", **grpc) == 0

    assert _get(_metrics_port(served), "/nope")[0] == 404


def test_metrics_port_in_use_is_a_config_error_in_process(own_server):
    from modelwire.errors import ConfigError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError) as info:
            own_server("echo", "in-process", "sync", metrics_port=port)
    assert str(info.value) == (
        f"metrics_port={port}: cannot serve metrics on 127.0.0.1:{port} (Address already in use)"
    )
