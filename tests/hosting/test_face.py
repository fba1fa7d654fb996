"""The face's own routes and rules: health, readiness, metrics, documents, wrong paths and
methods, body limits, and what the observe hook is told."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from modelwire.errors import ConfigError
from modelwire.hosting.http_face import HttpFace
from modelwire.hosting.http_server import HttpServer
from modelwire.runtime.http_handlers import unary_handlers
from modelwire.runtime.service import ModelService
from tests.hosting.client import Client


def test_healthz_is_live_and_readyz_follows_the_callback(http_face):
    state = {"ready": False}
    s = http_face("echo", ready=lambda: state["ready"])
    assert (s.client.get("/healthz").status, s.client.get("/healthz").body) == (200, b"SERVING\n")
    r = s.client.get("/readyz")
    assert (r.status, r.body, r.content_type) == (
        503,
        b"NOT_SERVING\n",
        "text/plain; charset=utf-8",
    )
    state["ready"] = True
    assert (s.client.get("/readyz").status, s.client.get("/readyz").body) == (200, b"SERVING\n")


def test_a_readiness_callback_that_raises_means_not_ready(http_face):
    def broken() -> bool:
        raise RuntimeError("no idea")

    s = http_face("echo", ready=broken)
    assert s.client.get("/readyz").status == 503


def test_head_answers_headers_only(http_face):
    s = http_face("echo")
    r = s.client.request("HEAD", "/healthz")
    assert (r.status, r.body, r.headers["content-length"]) == (200, b"", "8")


def test_metrics_come_from_the_hook_and_calls_are_observed_by_protocol(http_face):
    s = http_face("echo", metrics=lambda: b"modelwire_up 1\n")
    r = s.client.get("/metrics")
    assert (r.status, r.body) == (200, b"modelwire_up 1\n")
    assert r.content_type == "text/plain; version=0.0.4; charset=utf-8"
    s.client.post(f"/{s.name}/Add", {"a": 1, "b": 2})
    s.client.post("/model/methods/add", {"a": "x"})
    s.client.get(f"/{s.name}/Add")  # 405: not a call
    s.client.post("/model/methods/nope", {})  # 404: not a call of any method
    calls = [(m, code, nreq, nresp, proto) for m, code, _, nreq, nresp, proto in s.observed.calls]
    assert calls[0] == ("add", "OK", 16, len(b'{"value":3.0}'), "connect")
    assert calls[1][:2] == ("add", "INVALID_ARGUMENT") and calls[1][4] == "acumos"
    assert len(calls) == 2
    assert all(seconds >= 0 for _, _, seconds, *_ in s.observed.calls)


def test_no_metrics_hook_no_metrics_route(http_face):
    s = http_face("echo")
    r = s.client.get("/metrics")
    assert r.status == 404


def test_openapi_and_docs_are_served_from_the_schema(http_face):
    s = http_face("rich")
    doc = s.client.get("/openapi.json")
    assert doc.content_type == "application/json" and doc.json()["openapi"] == "3.1.0"
    assert f"/{s.name}/Summarize" in doc.json()["paths"]
    page = s.client.get("/docs")
    assert page.content_type == "text/html; charset=utf-8"
    assert b'fetch("openapi.json")' in page.body and b"<script src" not in page.body
    assert b"http://" not in page.body and b"https://" not in page.body  # nothing from elsewhere
    root = s.client.get("/")
    assert (root.status, root.headers["location"]) == (307, "/docs")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/modelwire.models.echo.v1.EchoService/Ad",
            "modelwire.models.echo.v1.EchoService has no method 'Ad'; did you mean 'Add'? "
            "(its methods: EchoRecord, EchoTensor, Add)",
        ),
        (
            "/modelwire.models.echo.v1.EchoServic/Add",
            "no service 'modelwire.models.echo.v1.EchoServic' here; did you mean "
            "'modelwire.models.echo.v1.EchoService'? (this server serves "
            "modelwire.models.echo.v1.EchoService: POST /modelwire.models.echo.v1.EchoService/"
            "<Method>)",
        ),
        (
            "/predict",
            "nothing at '/predict'; this server answers POST "
            "/modelwire.models.echo.v1.EchoService/<Method> (methods: EchoRecord, EchoTensor, "
            "Add), POST /model/methods/<method>, and GET /model/methods /healthz /readyz "
            "/openapi.json /docs",
        ),
    ],
)
def test_a_wrong_path_is_404_listing_what_exists(http_face, path, message):
    s = http_face("echo")
    r = s.client.post(path, {})
    assert (r.status, r.json()) == (404, {"code": "not_found", "message": message})


def test_get_on_a_method_is_405_and_post_on_a_page_too(http_face):
    s = http_face("echo")
    r = s.client.get(f"/{s.name}/Add")
    assert (r.status, r.headers["allow"], r.json()) == (
        405,
        "POST",
        {"code": "unimplemented", "message": f"GET /{s.name}/Add is not served; use POST"},
    )
    r = s.client.post("/healthz", {})
    assert (r.status, r.headers["allow"]) == (405, "GET, HEAD")


def test_a_body_over_the_limit_is_413_whether_announced_or_streamed(http_face):
    s = http_face("echo", max_body_bytes=1000)
    r = s.client.post(f"/{s.name}/EchoTensor", {"x": [0.5] * 1000})
    assert (r.status, r.json()) == (
        413,
        {
            "code": "resource_exhausted",
            "message": "the request body is 5007 bytes, over this server's limit of 1000 bytes",
        },
    )
    # chunked: no Content-Length, the limit is found while reading
    with socket.create_connection(("127.0.0.1", s.server.port)) as sock:
        sock.sendall(
            f"POST /{s.name}/EchoTensor HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(3):
            sock.sendall(b"258\r\n" + b" " * 600 + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        head = sock.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413 ")
    import gzip

    bomb = gzip.compress(b" " * 100_000)
    r = s.client.post(f"/{s.name}/Add", bomb, content_encoding="gzip")
    assert r.status == 413
    assert r.json()["message"] == (
        "the decompressed request body is 1001 bytes, over this server's limit of 1000 bytes"
    )
    assert s.client.post(f"/{s.name}/Add", {"a": 1}).status == 200


def test_handlers_must_cover_the_methods_exactly(loaded_bundle):
    service = ModelService(loaded_bundle("echo"))
    handlers = unary_handlers(service)
    del handlers["Add"]
    with pytest.raises(ValueError) as info:
        HttpFace(service.schema, handlers)
    assert str(info.value) == (
        "handlers must cover the unary rpcs ['Add', 'EchoRecord', 'EchoTensor'] exactly; "
        "got ['EchoRecord', 'EchoTensor']"
    )


def test_a_port_in_use_is_a_config_error(http_face):
    s = http_face("echo")
    with pytest.raises(ConfigError) as info:
        HttpServer(s.face, "127.0.0.1", s.server.port)
    assert str(info.value) == (
        f"http_port={s.server.port}: cannot listen on 127.0.0.1:{s.server.port} "
        "(Address already in use); is another server using it?"
    )


def test_stop_lets_a_call_in_flight_finish(loaded_bundle, tmp_path):
    service = ModelService(loaded_bundle("slow"))
    face = HttpFace(service.schema, unary_handlers(service), threads=2)
    server = HttpServer(face, grace=5)
    client = Client(server.port)
    started = tmp_path / "started"
    replies = []
    t = threading.Thread(
        target=lambda: replies.append(
            client.post(f"/{service.service_name}/Sleep", {"seconds": 0.5, "started": str(started)})
        )
    )
    t.start()
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop(5)
    t.join(10)
    face.close()
    assert replies and replies[0].status == 200
    with pytest.raises(ConnectionError):
        Client(server.port, timeout=2).get("/healthz")
