"""What every served model offers: the listening line, one rpc per method, health,
reflection that a generic client can use, and the model-info service."""

from __future__ import annotations

import json
import re
import socket

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from modelwire.hosting.info import INFO_SERVICE
from modelwire.runtime.server import HTTP_LISTENING, LISTENING
from tests.runtime.serving import SERVER_KINDS, has_ipv6_loopback, json_logs, wait_for
from tests.servers import health_status

ECHO_SERVICE = "modelwire.models.echo.v1.EchoService"
ECHO_RPCS = ["EchoRecord", "EchoTensor", "Add", "Fail", "Reject"]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_serve_port_0_announces_the_bound_address_in_one_stable_line(kind, own_server):
    served = own_server("echo", "subprocess", kind)
    proc = served.process
    assert re.fullmatch(r"127\.0\.0\.1:(\d+)", served.address)
    assert int(served.address.rsplit(":", 1)[1]) > 0
    http = proc.http_address
    assert http is not None and re.fullmatch(r"127\.0\.0\.1:(\d+)", http)
    assert proc.terminate() == 0, proc.stderr
    assert [*proc.stdout_lines, proc.rest_of_stdout] == [
        f"{HTTP_LISTENING} {http}\n",  # before the listening line: a reader waiting for
        f"{LISTENING} {served.address}\n",  # that one has the HTTP port too
        "",
    ]
    served_lines = [r for r in json_logs(proc.stderr) if r["logger"] == "modelwire.runtime.server"]
    assert served_lines[0]["message"] == (
        f"serving echo 1.0.0 (echo_record, echo_tensor, add, fail, reject) "
        f"on {served.address} with the {kind} server"
    )


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_no_http_announces_the_grpc_line_only_and_binds_no_http_port(kind, own_server):
    served = own_server("echo", "subprocess", kind, "--no-http")
    proc = served.process
    assert proc.http_address is None
    assert proc.terminate() == 0, proc.stderr
    assert [*proc.stdout_lines, proc.rest_of_stdout] == [f"{LISTENING} {served.address}\n", ""]
    assert not [r for r in json_logs(proc.stderr) if "http_port" in r]


def test_serve_binds_the_port_it_is_given(own_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = own_server("echo", "subprocess", "sync", "--port", str(port))
    assert served.address == f"127.0.0.1:{port}"
    assert served.process.stdout_lines[-1:] == [f"{LISTENING} 127.0.0.1:{port}\n"]


def test_serve_listens_on_ipv6_loopback(own_server):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    served = own_server("echo", "subprocess", "sync", "--host", "::1")
    assert re.fullmatch(r"\[::1\]:\d+", served.address)
    assert health_status(served.address) == "SERVING"


def test_every_method_is_one_unary_rpc(echo_server):
    with grpc.insecure_channel(echo_server.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        fdp = db.FindFileContainingSymbol(ECHO_SERVICE)
    (service,) = fdp.service
    assert [m.name for m in service.method] == ECHO_RPCS
    assert not any(m.client_streaming or m.server_streaming for m in service.method)
    assert (service.method[0].input_type, service.method[0].output_type) == (
        ".modelwire.models.echo.v1.EchoRecordRequest",
        ".modelwire.models.echo.v1.EchoRecordResponse",
    )


def test_health_reports_serving_for_the_server_and_the_model_service(echo_server):
    assert health_status(echo_server.address) == "SERVING"
    assert health_status(echo_server.address, ECHO_SERVICE) == "SERVING"
    with grpc.insecure_channel(echo_server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_lets_a_generic_client_call_the_model(echo_server):
    """grpcio-reflection's own client: list, fetch the descriptor, build a request, call."""
    with grpc.insecure_channel(echo_server.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        assert sorted(db.get_services()) == [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            ECHO_SERVICE,
            INFO_SERVICE,
        ]
        fdp = db.FindFileContainingSymbol(ECHO_SERVICE)
        assert fdp.name == "modelwire/models/echo/v1/model.proto"
        assert fdp.package == "modelwire.models.echo.v1"
        pool = descriptor_pool.DescriptorPool(db)
        method = pool.FindServiceByName(ECHO_SERVICE).methods_by_name["Add"]
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        add = channel.unary_unary(
            f"/{ECHO_SERVICE}/Add",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        reply = add(request_cls(a=1.5, b=2.25), timeout=10)
        assert reply.value == 3.75
        record = pool.FindMessageTypeByName("modelwire.models.echo.v1.EchoRecordRequest")
        assert [f.name for f in record.fields] == ["name", "scores", "color", "where", "note"]
        assert record.fields_by_name["note"].has_presence


def test_model_info_service_returns_the_manifest(echo_server):
    with grpc.insecure_channel(echo_server.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(db)
        method = pool.FindServiceByName(INFO_SERVICE).methods_by_name["GetModelInfo"]
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        get = channel.unary_unary(
            f"/{INFO_SERVICE}/GetModelInfo",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        reply = get(request_cls(), timeout=10)
    assert (reply.name, reply.version) == ("echo", "1.0.0")
    manifest = json.loads(reply.manifest_json)
    assert manifest["service"] == ECHO_SERVICE
    assert [m["name"] for m in manifest["methods"]] == [
        "echo_record",
        "echo_tensor",
        "add",
        "fail",
        "reject",
    ]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_access_log_has_one_line_per_call(own_server, kind):
    served = own_server("echo", "subprocess", kind, "--access-log")
    client = served.client()
    assert client.add(1, 2) == 3
    with pytest.raises(Exception, match="INVALID_ARGUMENT"):
        client.reject(-1.0)
    wait_for(lambda: served.stderr().count('"modelwire.runtime.access"') == 2, 10, "2 lines")
    access = [r for r in json_logs(served.stderr()) if r["logger"] == "modelwire.runtime.access"]
    assert [(r["level"], r["rpc"], r["status"]) for r in access] == [
        ("info", "Add", "OK"),
        ("info", "Reject", "INVALID_ARGUMENT"),
    ]
    for r in access:
        rpc, status, ms, unit = r["message"].split(" ")
        assert (rpc, status, unit) == (r["rpc"], r["status"], "ms")
        assert abs(float(ms) - r["ms"]) <= 0.01  # the message rounds to 0.01 ms
