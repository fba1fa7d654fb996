"""The solution answers HTTP like a model: Connect and the Acumos contract run the same
router as its gRPC rpcs, a failed step is the same status in Connect's form, the caller's
Connect-Timeout-Ms bounds every step, calls are counted by protocol; and `modelwire run`
announces the solution's HTTP port while its models serve gRPC only."""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.request

import grpc
import pytest

from modelwire.hosting.remote import fetch_info
from tests.broker.helpers import (
    BrokerProcess,
    HandlerServer,
    InProcessSolution,
    RawClient,
    children_of,
    write_blueprint,
)
from tests.broker.test_service import IMAGE, SERVICE, photo
from tests.fixtures.models import sleeper
from tests.hosting.client import Client
from tests.runtime.prometheus import parse

__all__ = ["photo"]  # the fixture, shared with test_service.py

ADVISE = f"/{SERVICE}/Advise"
NAPS = """
name: naps
models:
  napper: {address: "@napper"}
methods:
  slow:
    steps:
      n: {call: napper.nap, with: $input}
    output: n
"""


@pytest.fixture
def http(photo):
    client = Client(photo.running.http_port)
    yield client
    client.close()


def test_connect_and_acumos_give_the_grpc_answer(photo, http, servers):
    call = servers(RawClient(photo))
    tensor = call.classes.get("Tensor")(dtype=6, shape=[2, 3], data=IMAGE.tobytes())
    over_grpc = call("advise", image=tensor, timeout=10)
    assert (over_grpc.text, over_grpc.count) == ("2 faces, 2 eyes", 4)
    image = {"image": IMAGE.tolist()}  # a tensor as nested arrays
    connect = http.post(ADVISE, image)
    assert (connect.status, connect.json()) == (200, {"text": "2 faces, 2 eyes", "count": "4"})
    acumos = http.post("/model/methods/advise", image)
    assert (acumos.status, acumos.json()) == (200, connect.json())
    proto = http.post(
        ADVISE,
        call.classes.get("AdviseRequest")(image=tensor).SerializeToString(),
        content_type="application/proto",
    )
    assert (proto.status, proto.body) == (200, over_grpc.SerializeToString())
    rate = http.post(f"/{SERVICE}/Rate", {"count": 3})
    assert (rate.status, rate.json()) == (200, {"value": "items: 3"})


def test_a_failed_step_is_the_grpc_status_in_connects_form(photo, http, servers):
    call = servers(RawClient(photo))
    with pytest.raises(grpc.RpcError) as info:
        call("advise", timeout=10)  # no image: the detector refuses it
    reply = http.post(ADVISE, {})
    assert (reply.status, reply.json()["code"]) == (400, "invalid_argument")
    # either detector step may fail first: they run at once
    unify = re.compile(r"step '(face|eye)_boxes'")
    assert unify.sub("step", reply.json()["message"]) == unify.sub("step", info.value.details())
    assert re.fullmatch(
        r"advise: step '(face|eye)_boxes' \(faces\.detect at 127\.0\.0\.1:\d+\) failed: "
        r"INVALID_ARGUMENT: detect: invalid request: image: required field is not set",
        reply.json()["message"],
    )


def test_solution_calls_are_counted_by_protocol(photo, http):
    assert http.post(ADVISE, {"image": IMAGE.tolist()}).status == 200
    assert http.post("/model/methods/advise", {}).status == 400
    scrape = parse(http.get("/metrics").body.decode())
    with urllib.request.urlopen(f"http://127.0.0.1:{photo.metrics_port}/metrics") as r:
        assert parse(r.read().decode()).samples == scrape.samples
    calls = scrape.series("modelwire_requests_total")
    assert {tuple(sorted(k)): v for k, v in calls.items()} == {
        (("code", "OK"), ("method", "advise"), ("protocol", "connect")): 1.0,
        (("code", "INVALID_ARGUMENT"), ("method", "advise"), ("protocol", "acumos")): 1.0,
    }
    assert (
        scrape.value("modelwire_step_requests_total", method="advise", step="advice", code="OK")
        == 1
    )


def test_info_health_and_docs_are_the_solutions(photo, http):
    with grpc.insecure_channel(photo.address) as channel:
        manifest = fetch_info(channel)
    assert manifest is not None and manifest["kind"] == "solution"
    assert http.get("/model/info").json() == manifest
    assert (http.get("/readyz").status, http.get("/healthz").status) == (200, 200)
    paths = http.get("/openapi.json").json()["paths"]
    assert sorted(p for p in paths if "post" in paths[p]) == sorted(
        [
            ADVISE,
            f"/{SERVICE}/Rate",
            "/model/methods/advise",
            "/model/methods/rate",
        ]
    )


def test_connect_timeout_bounds_the_steps(tmp_path, servers):
    """The model's call is cancelled when the HTTP caller's deadline passes."""
    cancelled = threading.Event()

    def nap(request, context):
        context.add_callback(lambda: None if context.is_active() else cancelled.set())
        t0 = time.monotonic()
        while context.is_active() and time.monotonic() - t0 < 60:
            time.sleep(0.005)
        return {"seconds": request.seconds, "started": t0, "ended": time.monotonic()}

    model = servers(HandlerServer(sleeper.model(), "napper", {"nap": nap}))
    path = write_blueprint(tmp_path / "naps.yaml", NAPS, napper=model.address)
    solution = servers(InProcessSolution(path))
    client = Client(solution.running.http_port)
    try:
        t0 = time.monotonic()
        reply = client.post(
            "/modelwire.solutions.naps.v1.NapsService/Slow",
            {"seconds": 60},
            connect_timeout_ms="300",
        )
        took = time.monotonic() - t0
    finally:
        client.close()
    assert (reply.status, reply.json()["code"]) == (504, "deadline_exceeded"), reply.body
    assert took < 10
    assert cancelled.wait(30), "the model's call was not cancelled"


@pytest.mark.timeout(120)
def test_run_announces_the_solutions_http_port_and_its_models_serve_grpc_only(
    tmp_path, bundles_root
):
    path = bundles_root / f"counter-{os.getpid()}.yaml"
    path.write_text(
        "name: counter\nmodels:\n  w: {bundle: _bundles/widths}\n"
        "methods:\n  count:\n    steps:\n      s: {call: w.count, with: $input}\n"
        "    output: s\n"
    )
    broker = BrokerProcess(path)
    try:
        http = broker.http_address
        assert http is not None and http.startswith("127.0.0.1:"), broker.stdout_lines
        assert broker.stdout_lines[0] == f"modelwire broker http on {http}\n"
        client = Client(int(http.rsplit(":", 1)[1]))
        try:
            assert client.get("/readyz").status == 200
            listing = client.get("/model/methods").json()
            assert [m["name"] for m in listing["methods"]] == ["count"]
            reply = client.post("/model/methods/count", {"n": 7})
            assert reply.json() == {"n": "7", "scale": 0.0, "label": "count"}
        finally:
            client.close()
        models = children_of(broker.proc.pid)
        assert models, "the broker started no model"
        for pid in models:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            assert b"serve" in argv and b"--no-http" in argv, argv
        assert broker.terminate() == 0, broker.stderr
    finally:
        broker.kill()
        path.unlink()
