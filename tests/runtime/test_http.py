"""Every served model answers HTTP beside gRPC, in the same process and from the same model:
Connect and the Acumos contract give gRPC's answers and errors, /metrics counts every
protocol in the same series, /model/info is the gRPC manifest, a call in flight finishes
on SIGTERM; run through every path (in process and as `modelwire serve`, sync and aio)."""

from __future__ import annotations

import base64
import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from modelwire.errors import ServiceError
from modelwire.hosting.remote import fetch_info
from tests.runtime import prometheus
from tests.runtime.serving import PATHS, SERVER_KINDS, Served, json_logs, wait_for

ECHO = "/modelwire.models.echo.v1.EchoService"
SLOW = "/modelwire.models.slow.v1.SlowService"


@pytest.fixture(params=PATHS)
def echo(request, shared_server) -> Served:
    return shared_server("echo", *request.param)


def test_connect_and_acumos_answer_what_grpc_answers(echo):
    http = echo.http()
    client = echo.client()
    assert client.add(1.5, 2.0) == 3.5
    connect = http.post(f"{ECHO}/Add", {"a": 1.5, "b": 2})
    assert (connect.status, connect.json()) == (200, {"value": 3.5})
    acumos = http.post("/model/methods/add", {"a": 1.5, "b": 2})
    assert (acumos.status, acumos.json()) == (200, {"value": 3.5})
    record = {"name": "a", "scores": [1.0, 2.5], "color": "COLOR_GREEN", "where": {"x": 1.0}}
    reply = http.post(f"{ECHO}/EchoRecord", record).json()
    assert reply == {**record, "where": {"x": 1.0, "y": 0.0}}
    assert client.echo_record(**{**record, "color": 2, "where": {"x": 1.0, "y": 0.0}}).name == "a"


def test_a_tensor_as_nested_arrays_comes_back_as_the_tensor_json_form(echo):
    reply = echo.http().post(f"{ECHO}/EchoTensor", {"x": [[1.0, 2.0], [3.0, 4.0]]})
    assert reply.status == 200, reply.body
    x = reply.json()["value"]
    assert (x["dtype"], x["shape"]) == ("DATA_TYPE_FLOAT32", ["2", "2"])
    data = np.frombuffer(base64.b64decode(x["data"]), np.float32)
    assert data.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_protobuf_body_is_the_grpc_request_and_reply(echo):
    request = echo.client().codec.method("add").encode_request((1.0, 2.0), {})
    grpc_reply = echo.rpc("Add")(request)
    protobuf = "application/vnd.google.protobuf"
    for path, kind in ((f"{ECHO}/Add", "application/proto"), ("/model/methods/add", protobuf)):
        reply = echo.http().post(path, request, content_type=kind, accept=kind)
        assert (reply.status, reply.content_type, reply.body) == (200, kind, grpc_reply)


def test_errors_are_grpcs_statuses_in_connects_form(echo):
    http = echo.http()
    reject = http.post(f"{ECHO}/Reject", {"x": 0})
    assert (reject.status, reject.json()) == (
        400,
        {
            "code": "invalid_argument",
            "message": "reject: the model rejected the request: ValueError: x must be "
            "positive, got 0.0",
        },
    )
    fail = http.post("/model/methods/fail", {"x": 0})
    assert (fail.status, fail.json()["code"]) == (500, "internal")
    assert fail.json()["message"] == (
        "fail: the model raised RuntimeError; the traceback is in the server's log"
    )
    with pytest.raises(ServiceError) as info:
        echo.client().reject(0.0)
    assert (info.value.status, info.value.details) == ("INVALID_ARGUMENT", reject.json()["message"])


def test_model_info_is_the_manifest_grpc_gives(echo):
    with grpc.insecure_channel(echo.address) as channel:
        manifest = fetch_info(channel)
    reply = echo.http().get("/model/info")
    assert (reply.status, reply.json()) == (200, manifest)


def test_health_readiness_and_the_docs_are_served(echo):
    http = echo.http()
    assert (http.get("/healthz").status, http.get("/readyz").body) == (200, b"SERVING\n")
    assert http.get("/openapi.json").json()["info"]["title"]
    assert http.get("/docs").status == 200


@pytest.mark.parametrize("path", [PATHS[0], PATHS[3]])  # in-process sync, subprocess aio
def test_metrics_count_every_protocol_in_the_same_series(own_server, path):
    served = own_server("echo", *path, metrics_port=0)
    client, http = served.client(), served.http()
    for _ in range(2):
        client.add(1.0, 2.0)
    assert http.post(f"{ECHO}/Add", {"a": 1}).status == 200
    assert http.post("/model/methods/reject", {"x": 0}).status == 400
    body = http.get("/metrics")
    assert body.content_type == "text/plain; version=0.0.4; charset=utf-8"
    scrape = prometheus.parse(body.body.decode())
    assert scrape.series("modelwire_requests_total") == {
        frozenset({("method", "add"), ("code", "OK"), ("protocol", "grpc")}): 2,
        frozenset({("method", "add"), ("code", "OK"), ("protocol", "connect")}): 1,
        frozenset({("method", "reject"), ("code", "INVALID_ARGUMENT"), ("protocol", "acumos")}): 1,
    }
    count = "modelwire_request_duration_seconds_count"
    assert scrape.value(count, method="add", protocol="connect") == 1
    # the JSON bodies as they travelled
    assert scrape.value("modelwire_request_bytes_total", method="add", protocol="connect") == len(
        b'{"a": 1}'
    )
    if served.process is None:  # the metrics port answers the same scrape
        port = served.handle.metrics_port
        with urllib_open(f"http://127.0.0.1:{port}/metrics") as r:
            assert prometheus.parse(r.read().decode()).samples == scrape.samples


def urllib_open(url: str) -> Any:
    import urllib.request

    return urllib.request.urlopen(url, timeout=10)


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_sigterm_lets_an_http_call_in_flight_finish(own_server, kind, tmp_path: Path):
    served = own_server("slow", "subprocess", kind, grace=10)
    started = tmp_path / "started"
    result: dict[str, object] = {}

    def call() -> None:
        body = {"seconds": 1.0, "started": str(started)}
        reply = served.http().post(f"{SLOW}/Sleep", body)
        result["reply"] = (reply.status, reply.json())

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    wait_for(started.exists, 10, "the model to start the call")
    t0 = time.monotonic()
    served.process.proc.send_signal(signal.SIGTERM)
    thread.join(15)
    assert result["reply"] == (200, {"value": str(served.process.proc.pid)}), served.stderr()
    assert served.process.proc.wait(15) == 0, served.stderr()
    assert time.monotonic() - t0 < 8
    messages = [r["message"] for r in json_logs(served.stderr())]
    assert messages[-2:] == ["SIGTERM received: draining in-flight calls (up to 10 s)", "stopped"]


def test_the_http_face_is_off_without_an_http_port(own_server):
    served = own_server("echo", "in-process", "sync", http_port=None)
    assert served.http_address is None
    assert served.handle.http_port is None
    assert served.client().add(1.0, 1.0) == 2.0
