"""The solution is a gRPC service like a model's: its generated proto (one rpc per blueprint
method), health, reflection, per-step metrics, stubs from `modelwire stubs`, and a running
solution is itself a model (`address:`) of another blueprint."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.request

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from modelwire.runtime.client import connect
from tests.broker.helpers import InProcessSolution, RawClient, write_blueprint
from tests.runtime.prometheus import parse

PHOTO = """
name: photo
models:
  faces: {address: "@detector"}
  advisor: {address: "@advisor"}
methods:
  advise:
    steps:
      face_boxes: {call: faces.detect, with: $input, timeout: 2s, retry: 2}
      eye_boxes: {call: faces.detect, with: $input}
      advice: {call: advisor.recommend, with: {faces: face_boxes, eyes: eye_boxes.boxes}}
    output: advice
  rate:
    steps:
      rating: {call: advisor.rate, with: {count: $input.count}}
    output: rating.text
"""
SERVICE = "modelwire.solutions.photo.v1.PhotoService"
# rows with an odd sum become boxes: both rows here, so 2 faces and 2 eyes
IMAGE = np.array([[1, 2, 4], [3, 3, 3]], dtype=np.uint8)


@pytest.fixture
def photo(tmp_path, servers, model_server):
    """The photo solution, its models running in this process."""
    path = write_blueprint(
        tmp_path / "photo.yaml",
        PHOTO,
        detector=model_server("detector").address,
        advisor=model_server("advisor").address,
    )
    return servers(InProcessSolution(path, metrics_port=0))


def test_the_solution_has_one_rpc_per_blueprint_method(photo):
    with grpc.insecure_channel(photo.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        assert sorted(db.get_services()) == [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            "modelwire.runtime.v1.ModelInfoService",
            SERVICE,
        ]
        service = descriptor_pool.DescriptorPool(db).FindServiceByName(SERVICE)
        fdp = descriptor_pb2.FileDescriptorProto()
        service.file.CopyToProto(fdp)
    assert [(m.name, m.input_type.name, m.output_type.name) for m in service.methods] == [
        ("Advise", "AdviseRequest", "AdviseResponse"),
        ("Rate", "RateRequest", "RateResponse"),
    ]
    fields = {
        m.name: [(f.name, f.number, f.type_name.rsplit(".", 1)[-1] or f.type) for f in m.field]
        for m in fdp.message_type
    }
    assert fields["AdviseRequest"] == [("image", 1, "Tensor")]  # detect's request, copied
    assert fields["AdviseResponse"] == [("text", 1, 9), ("count", 2, 3)]  # string, int64
    assert fields["RateRequest"] == [("count", 1, 3)]  # made from `$input.count`
    assert fields["RateResponse"] == [("value", 1, 9)]  # `rating.text`


def test_the_solution_reports_health(photo):
    with grpc.insecure_channel(photo.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        statuses = [
            stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            for name in ("", SERVICE)
        ]
    assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 2


def test_connect_calls_the_solution_like_a_model(photo):
    client = connect(photo.address)
    try:
        assert client.advise(IMAGE) == ("2 faces, 2 eyes", 4)
        assert client.rate(count=3) == "items: 3"
        assert client.manifest["kind"] == "solution"
    finally:
        client.close()


def test_metrics_count_every_step(photo, servers):
    call = servers(RawClient(photo))
    tensor = call.classes.get("Tensor")(dtype=6, shape=[2, 3], data=IMAGE.tobytes())
    request = call.classes.get("AdviseRequest")(image=tensor)
    call("advise", image=tensor, timeout=10)
    with pytest.raises(grpc.RpcError):
        call("advise", timeout=10)  # no image: the detector refuses it
    with urllib.request.urlopen(f"http://127.0.0.1:{photo.metrics_port}/metrics") as r:
        scrape = parse(r.read().decode())
    calls = scrape.series("modelwire_requests_total")
    assert {tuple(sorted(k)): v for k, v in calls.items()} == {
        (("code", "OK"), ("method", "advise"), ("protocol", "grpc")): 1.0,
        (("code", "INVALID_ARGUMENT"), ("method", "advise"), ("protocol", "grpc")): 1.0,
    }
    for step in ("face_boxes", "eye_boxes"):
        assert (
            scrape.value("modelwire_step_requests_total", method="advise", step=step, code="OK")
            == 1
        )
        assert (
            scrape.value("modelwire_step_duration_seconds_count", method="advise", step=step) >= 1
        )
        # $input is forwarded whole: the step sent exactly what the client sent (and b'')
        assert scrape.value("modelwire_step_sent_bytes_total", method="advise", step=step) == len(
            request.SerializeToString()
        )
        assert scrape.value("modelwire_step_received_bytes_total", method="advise", step=step) > 0
    assert (
        scrape.value("modelwire_step_requests_total", method="advise", step="advice", code="OK")
        == 1
    )
    assert (
        scrape.value("modelwire_request_duration_seconds_count", method="advise", protocol="grpc")
        == 2
    )


def test_stubs_of_a_blueprint_call_the_running_solution(photo, cli, tmp_path):
    blueprint = tmp_path / "photo.yaml"  # written by the `photo` fixture
    out = tmp_path / "stubs"
    result = cli("stubs", str(blueprint), "-o", str(out), "--module", "photo")
    assert (result.exit_code, result.stderr) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == [
        "photo_pb2.py",
        "photo_pb2.pyi",
        "photo_pb2_grpc.py",
    ]
    app = textwrap.dedent("""
        import sys
        import grpc
        import photo_pb2, photo_pb2_grpc

        with grpc.insecure_channel(sys.argv[1]) as channel:
            stub = photo_pb2_grpc.PhotoServiceStub(channel)
            image = photo_pb2.Tensor(
                dtype=photo_pb2.DATA_TYPE_UINT8, shape=[2, 3], data=bytes([1, 2, 4, 3, 3, 3])
            )
            reply = stub.Advise(photo_pb2.AdviseRequest(image=image), timeout=30)
            print(reply.text, reply.count)
            print(stub.Rate(photo_pb2.RateRequest(count=7), timeout=30).value)
    """)
    # a separate interpreter: the stubs register their file in the default descriptor pool
    run = subprocess.run(
        [sys.executable, "-c", app, photo.address],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == "2 faces, 2 eyes 4\nitems: 7\n"


TIPS = """
name: tips
models:
  photo: {address: "@photo"}
  advisor: {address: "@advisor"}
methods:
  tip:
    steps:
      advice: {call: photo.advise, with: $input}
      rating: {call: advisor.rate, with: {count: advice.count, label: advice.text}}
    output: rating
"""


def test_a_running_solution_is_a_model_of_another_blueprint(photo, tmp_path, servers, model_server):
    path = write_blueprint(
        tmp_path / "tips.yaml", TIPS, photo=photo.address, advisor=model_server("advisor").address
    )
    tips = servers(InProcessSolution(path))
    assert tips.plan.schema.method("tip").request == "TipRequest"
    client = connect(tips.address)
    try:
        assert client.tip(IMAGE) == ("2 faces, 2 eyes: 4", 4)
    finally:
        client.close()
    # the outer solution called the inner one once, which called its models
    assert photo.metrics.edges("advise", "forwarded") == 4
    # $input whole and 'count' as bytes; 'text' -> the optional 'label' is transcoded, so
    # that an empty text still reads as set
    assert tips.metrics.edges("tip", "forwarded") == 2
    assert tips.metrics.edges("tip", "transcoded") == 1
