"""Batching behind every way in: the HTTP face (Connect and the Acumos contract) shares the
batched method's queue with gRPC callers, and a broker's calls of a batched model batch
like anyone's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from modelwire.bundle import dump, load
from modelwire.bundle.batching import BatchPolicy
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.config import RuntimeConfig
from modelwire.errors import InvalidRequest, NotFound
from modelwire.hosting.http_face import HttpFace
from modelwire.hosting.http_server import HttpServer
from modelwire.hosting.metrics import Metrics
from modelwire.runtime.http_handlers import unary_handlers
from modelwire.runtime.server import start
from modelwire.runtime.service import ModelService
from tests.broker.helpers import InProcessSolution, RawClient, write_blueprint
from tests.hosting.client import Client
from tests.runtime import batched_model
from tests.runtime.batching_calls import HOLD, runs
from tests.runtime.serving import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dump(batched_model.model(), "batched", tmp_path_factory.mktemp("batched") / "b")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as p:
        yield p


@pytest.fixture
def http(bundle: Path) -> Iterator[tuple[ModelService, HttpServer]]:
    service = ModelService(load(bundle), Metrics("batched", "1.0.0"))
    face = HttpFace(service.schema, unary_handlers(service), threads=8)
    server = HttpServer(face, "127.0.0.1", 0, grace=1)
    yield service, server
    server.stop(0)
    face.close()
    service.close()


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    client = Client(port)
    try:
        reply = client.post(path, body)
        return reply.status, reply.json()
    finally:
        client.close()


def test_the_one_call_path_serves_threads_and_coroutines(bundle):
    """`ModelService.call` and `call_async`: what the gRPC handlers and the HTTP face use."""
    service = ModelService(load(bundle))
    double = service.codec.method("double")
    request = double.encode_request((batched_model.Flower(2.0, 0.0, ""),), {})
    assert tuple(double.decode_response(service.call("double", request))) == (4.0, 1)
    reply = asyncio.run(service.call_async("double", request, time.monotonic() + 30))
    assert tuple(double.decode_response(reply)) == (4.0, 1)
    plain = service.codec.method("plain")
    reply = asyncio.run(service.call_async("plain", plain.encode_request((1.0,), {})))
    assert plain.decode_response(reply) == 2.0
    with pytest.raises(NotFound) as info:
        service.call("Double", request)
    assert str(info.value) == (
        "the model has no method 'Double'; it has double, drop_one, add, plain"
    )
    with pytest.raises(InvalidRequest) as bad:
        service.call("double", b"\x0a\xff\xff")
    assert str(bad.value).startswith("double: invalid request: ")
    assert service.batching == {
        "double": BatchPolicy(4),
        "drop_one": BatchPolicy(8),
        "add": BatchPolicy(8),
    }
    service.close()


def test_http_calls_and_direct_calls_share_one_queue(http, pool, tmp_path):
    service, server = http
    log = tmp_path / "runs"
    connect = f"/{service.service_name}/Double"
    first = pool.submit(_post, server.port, connect, {"x": 0, "hold": HOLD, "log": str(log)})
    wait_for(lambda: len(runs(log)) >= 1, 30, "the holding call to start")
    over_connect = pool.submit(_post, server.port, connect, {"x": 1, "log": str(log)})
    over_acumos = pool.submit(
        _post, server.port, "/model/methods/double", {"x": 2, "log": str(log)}
    )
    encode = service.codec.method("double").encode_request
    direct = pool.submit(
        service.call, "double", encode((batched_model.Flower(3.0, 0.0, str(log)),), {})
    )
    wait_for(lambda: service.rpcs[0].batcher.queued == 3, 30, "three calls to queue")
    assert first.result(30) == (200, {"y": 0.0, "batch": "1"})
    assert over_connect.result(30) == (200, {"y": 2.0, "batch": "3"})
    assert over_acumos.result(30) == (200, {"y": 4.0, "batch": "3"})
    decode = service.codec.method("double").decode_response
    assert tuple(decode(direct.result(30))) == (6.0, 3)
    assert runs(log) == [["0"], ["1", "2", "3"]]


def test_an_http_call_whose_deadline_passes_in_the_queue_never_runs(http, pool, tmp_path):
    service, server = http
    log = tmp_path / "runs"
    connect = f"/{service.service_name}/Double"
    first = pool.submit(_post, server.port, connect, {"x": 0, "hold": HOLD, "log": str(log)})
    wait_for(lambda: len(runs(log)) >= 1, 30, "the holding call to start")
    client = Client(server.port)
    t0 = time.monotonic()
    reply = client.post(connect, {"x": 7, "log": str(log)}, connect_timeout_ms="300")
    client.close()
    assert reply.status == 504
    assert reply.json()["code"] == "deadline_exceeded"
    assert time.monotonic() - t0 < HOLD
    first.result(30)
    wait_for(lambda: service.rpcs[0].batcher.queued == 0, 10, "the queue to empty")
    assert runs(log) == [["0"]], "the model never ran for the late call"


BLUEPRINT = """
name: twice
models:
  m: {address: "@model"}
methods:
  twice:
    steps:
      doubled: {call: m.double, with: $input}
    output: doubled
"""


def test_a_brokers_calls_of_a_batched_model_batch(bundle, pool, tmp_path):
    model = start(load(bundle), RuntimeConfig(port=0))
    solution = None
    try:
        blueprint = write_blueprint(tmp_path / "twice.yaml", BLUEPRINT, model=model.address)
        solution = InProcessSolution(blueprint)
        schema = solution.plan.schema
        assert schema.method("twice").request == "TwiceRequest"
        assert [f.name for f in schema.message("TwiceRequest").fields] == ["x", "hold", "log"]
        client = RawClient(solution)
        log = tmp_path / "runs"
        first = pool.submit(client, "twice", x=0.0, hold=HOLD, log=str(log))
        wait_for(lambda: len(runs(log)) >= 1, 30, "the holding call to start")
        rest = [pool.submit(client, "twice", x=x, log=str(log)) for x in (1.0, 2.0, 3.0)]
        assert (first.result(30).y, first.result(30).batch) == (0.0, 1)
        assert [(r.y, r.batch) for r in (f.result(30) for f in rest)] == [
            (2.0, 3),
            (4.0, 3),
            (6.0, 3),
        ]
        assert runs(log) == [["0"], ["1", "2", "3"]]
        client.close()
    finally:
        if solution is not None:
            solution.stop()
        model.stop(0)


def test_the_solutions_contract_is_the_per_request_one(bundle):
    """What the broker reads by reflection: Double(DoubleRequest) -> DoubleResponse."""
    with start(load(bundle), RuntimeConfig(port=0)) as model:
        schema = model.service.schema
        fdp = file_descriptor(schema)
        (service,) = fdp.service
        double = next(m for m in service.method if m.name == "Double")
        assert (double.input_type, double.output_type) == (
            f".{schema.package}.DoubleRequest",
            f".{schema.package}.DoubleResponse",
        )
        assert not double.client_streaming and not double.server_streaming
        classes = message_classes(fdp)
        assert [f.name for f in classes.get("DoubleResponse").DESCRIPTOR.fields] == ["y", "batch"]
