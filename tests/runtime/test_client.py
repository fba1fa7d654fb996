"""`modelwire.connect()`: the model's methods over gRPC, with the model's kinds of values."""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from modelwire import connect
from modelwire.errors import ConfigError, ServiceError
from tests.fixtures.models import echo, rich
from tests.servers import closed_port, silent_listener


def test_methods_are_the_models_python_methods(echo_server):
    with connect(echo_server.address) as client:
        assert list(client.methods) == ["echo_record", "echo_tensor", "add", "fail", "reject"]
        assert {"echo_record", "add"} <= set(dir(client))
        assert repr(client) == (
            f"<RemoteModel echo at {echo_server.address}: "
            "echo_record, echo_tensor, add, fail, reject>"
        )
        assert repr(client.add) == "<remote method echo.add>"
        with pytest.raises(AttributeError) as info:
            client.substract  # noqa: B018
        assert str(info.value) == (
            f"{echo_server.address} has no method 'substract'; "
            "it has echo_record, echo_tensor, add, fail, reject"
        )


def test_records_in_namedtuples_out(echo_server):
    record = echo.Record("a", [1.0, 2.5], echo.Color.GREEN, echo.Point(1, 2), None)
    client = echo_server.client()
    got = client.echo_record(record)
    assert type(got).__name__ == "EchoRecordResponse"
    assert got._fields == ("name", "scores", "color", "where", "note")
    assert (got.name, got.scores, got.note) == ("a", [1.0, 2.5], None)
    assert (got.color.name, got.color.value) == ("GREEN", 2)
    assert got.where == client.python_type("Point")(1.0, 2.0)
    as_dict = {
        "name": "b",
        "scores": [],
        "color": "RED",
        "where": {"x": 0.5, "y": -1},
        "note": "kept",
    }
    got = client.echo_record(as_dict)
    assert (got.name, got.scores, got.color.name, got.note) == ("b", [], "RED", "kept")
    assert (got.where.x, got.where.y) == (0.5, -1.0)
    got = client.echo_record(
        name="c", scores=[3.0], color=echo.Color.RED, where=echo.Point(0, 0), note=None
    )
    assert got.name == "c" and got.note is None


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.arange(6, dtype=np.float32).reshape(2, 3), id="2d"),
        pytest.param(np.float32(2.5).reshape(()), id="0d"),
        pytest.param(np.zeros((0, 4), np.float32), id="empty"),
        pytest.param(np.arange(12, dtype=np.float32).reshape(3, 4).T, id="not-contiguous"),
        pytest.param(np.arange(4, dtype=">f4"), id="big-endian"),
    ],
)
def test_ndarrays_in_ndarrays_out(echo_server, array):
    client = echo_server.client()
    got = client.echo_tensor(array)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float32 and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_rich_values_round_trip(rich_server):
    box = rich.Box(0, 0, 2, 3, rich.Kind.DOG)
    detection = rich.Detection(
        boxes=[box, rich.Box(1, 1, 2, 2, rich.Kind.CAT)],
        scores=np.array([0.5, 0.25], np.float32),
        names={"a": 1, "b": -2},
        grid=[[1.0, 2.0], [], [3.0]],
        best=None,
        note="n",
        kinds=[rich.Kind.CAT, rich.Kind.BIRD],
    )
    client = rich_server.client()
    summary = client.summarize(detection)
    assert type(summary).__name__ == "SummarizeResponse"
    assert summary._replace(first=None) == (2, 7.0, {"DOG": 6.0, "CAT": 1.0}, 0.75, None)
    assert summary.first.name == "CAT"
    got = client.echo(detection)
    assert [(b.x0, b.y0, b.x1, b.y1, b.label.name) for b in got.boxes] == [
        (0.0, 0.0, 2.0, 3.0, "DOG"),
        (1.0, 1.0, 2.0, 2.0, "CAT"),
    ]
    np.testing.assert_array_equal(got.scores, detection.scores)
    assert (got.names, got.grid, got.best, got.note) == (
        {"a": 1, "b": -2},
        [[1.0, 2.0], [], [3.0]],
        None,
        "n",
    )
    assert [k.name for k in got.kinds] == ["CAT", "BIRD"]
    assert client.echo(detection._replace(best=box, note=None)).best.label.name == "DOG"
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    scaled = client.scale(image, 2.0, np.int32(1))
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, image * 2.0 + 1)
    assert client.pick([], None) is None
    assert client.pick([rich.Kind.BIRD], None).name == "BIRD"
    assert client.pick(kinds=[], default="DOG").name == "DOG"


def test_positional_and_keyword_arguments(echo_server):
    client = echo_server.client()
    assert client.add(1.5, 2) == 3.5
    assert client.add(1.5, b=2) == 3.5
    assert client.add(b=1, a=0.25) == 1.25
    assert client.add({"a": 1, "b": 2}) == 3.0
    assert client.add(1) == 1.0  # proto3: an unset double is 0


def test_many_parameters_of_rich_types_by_position_and_keyword(rich_server):
    client = rich_server.client()
    sizes = client.tally(
        {1: ["a", "b"]},
        {"w": rich.Box(0, 0, 1, 1, rich.Kind.CAT)},
        [[1, 2], [3]],
        [True, False, True],
        b"xyz",
        rich.Kind.BIRD,
        limit=7,
    )
    assert sizes == {
        "counts": 2,
        "weights": 1,
        "matrix": 3,
        "flags": 2,
        "payload": 3,
        "kind": 3,
        "limit": 7,
    }
    assert client.tally({}, {}, [], [], b"", "CAT")["limit"] == -1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda c: c.add(1, 2, 3), "add() takes 2 arguments (a, b), 3 given", id="too-many"
        ),
        pytest.param(
            lambda c: c.add(1, c=2),
            "add() got an unexpected argument 'c'; fields are a, b",
            id="unknown-keyword",
        ),
        pytest.param(
            lambda c: c.add(1, a=2), "add() got multiple values for 'a'", id="given-twice"
        ),
        pytest.param(
            lambda c: c.add("one", 2), "a: expected a number, got str 'one'", id="wrong-type"
        ),
        pytest.param(
            lambda c: c.echo_tensor(np.zeros(3, complex)),
            "x: expected an array of float32, got complex128",
            id="wrong-dtype",
        ),
    ],
)
def test_bad_arguments_raise_type_error_before_sending(echo_server, call, message):
    client = echo_server.client()
    with pytest.raises(TypeError) as info:
        call(client)
    assert str(info.value) == message


def test_server_errors_raise_service_error_with_the_status(echo_server):
    address = echo_server.address
    with connect(address) as client:
        with pytest.raises(ServiceError) as info:
            client.reject(-1.0)
        details = "reject: the model rejected the request: ValueError: x must be positive, got -1.0"
        assert (info.value.status, info.value.target, info.value.details) == (
            "INVALID_ARGUMENT",
            address,
            details,
        )
        assert str(info.value) == f"{address} Reject: INVALID_ARGUMENT: {details}"
        with pytest.raises(ServiceError) as info:
            client.fail(1.0)
        assert (info.value.status, info.value.details) == (
            "INTERNAL",
            "fail: the model raised RuntimeError; the traceback is in the server's log",
        )


def test_deadline_is_a_service_error(own_server):
    served = own_server("slow", "in-process", "sync")
    with connect(served.address, timeout=0.2) as client, pytest.raises(ServiceError) as info:
        client.sleep(2.0)
    assert info.value.status == "DEADLINE_EXCEEDED"


def test_connect_to_nothing_is_a_service_error_at_once():
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        connect(f"127.0.0.1:{port}")
    assert str(info.value) == f"nothing is listening on 127.0.0.1:{port}"
    assert (info.value.target, info.value.status) == (f"127.0.0.1:{port}", "UNAVAILABLE")
    assert time.monotonic() - started < 4  # not the 10 s connect wait


def test_connect_to_a_server_that_never_answers_waits_for_the_timeout():
    with silent_listener() as address, pytest.raises(ServiceError) as info:
        connect(address, timeout=0.5)
    assert str(info.value) == f"cannot reach {address}: no connection within 0.5 s"


def test_connect_to_an_unknown_host_is_a_service_error_at_once():
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        connect("no-such-host.invalid:50051")
    assert str(info.value) == (
        "cannot reach no-such-host.invalid:50051: no host 'no-such-host.invalid' is known"
    )
    assert time.monotonic() - started < 8


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("50051", "address='50051': expected HOST:PORT, e.g. localhost:50051"),
        ("http://localhost:50051",
         "address='http://localhost:50051': expected HOST:PORT, e.g. localhost:50051 "
         "(a gRPC address has no http:// scheme)"),
    ],
    ids=["no-host", "scheme"],
)  # fmt: skip
def test_connect_refuses_a_malformed_address_before_dialling(address, message):
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        connect(address)
    assert str(info.value) == message
    assert time.monotonic() - started < 1


# ---------------------------------------------------------------- not a modelwire server

_FDP = descriptor_pb2.FieldDescriptorProto


def _greeter_file() -> descriptor_pb2.FileDescriptorProto:
    """A hand-written proto, as some other team's service would have."""
    f = descriptor_pb2.FileDescriptorProto(name="acme/greeter.proto", package="acme.v1")
    f.syntax = "proto3"
    mood = f.enum_type.add(name="Mood")
    mood.value.add(name="MOOD_UNSPECIFIED", number=0)
    mood.value.add(name="MOOD_HAPPY", number=1)
    request = f.message_type.add(name="HelloRequest")
    request.field.add(name="name", number=1, type=_FDP.TYPE_STRING, label=_FDP.LABEL_OPTIONAL)
    request.field.add(name="times", number=2, type=_FDP.TYPE_INT32, label=_FDP.LABEL_OPTIONAL)
    reply = f.message_type.add(name="HelloReply")
    reply.field.add(name="lines", number=1, type=_FDP.TYPE_STRING, label=_FDP.LABEL_REPEATED)
    reply.field.add(
        name="mood",
        number=2,
        type=_FDP.TYPE_ENUM,
        type_name=".acme.v1.Mood",
        label=_FDP.LABEL_OPTIONAL,
    )
    service = f.service.add(name="Greeter")
    service.method.add(
        name="SayHello", input_type=".acme.v1.HelloRequest", output_type=".acme.v1.HelloReply"
    )
    other = f.service.add(name="Farewell")
    other.method.add(
        name="SayGoodbye", input_type=".acme.v1.HelloRequest", output_type=".acme.v1.HelloReply"
    )
    return f


@pytest.fixture
def greeter():
    """A plain grpcio server (no modelwire) with reflection and health."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_greeter_file())
    request_cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("acme.v1.HelloRequest")
    )
    reply_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.v1.HelloReply"))

    def say_hello(request, context):
        return reply_cls(lines=[f"hello {request.name}"] * request.times, mood=1)

    def say_goodbye(request, context):
        return reply_cls(lines=[f"bye {request.name}"])

    def handlers(fn):
        return grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=request_cls.FromString,
            response_serializer=reply_cls.SerializeToString,
        )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "acme.v1.Greeter", {"SayHello": handlers(say_hello)}
            ),
            grpc.method_handlers_generic_handler(
                "acme.v1.Farewell", {"SayGoodbye": handlers(say_goodbye)}
            ),
        )
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    for file in (health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb))
    reflection.enable_server_reflection(
        ["acme.v1.Greeter", "acme.v1.Farewell", "grpc.health.v1.Health", reflection.SERVICE_NAME],
        server,
        pool=pool,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0).wait()


def test_connect_to_a_plain_grpc_server_reads_its_schema_by_reflection(greeter):
    with pytest.raises(ServiceError) as info:
        connect(greeter)
    assert str(info.value) == (
        "127.0.0.1:" + greeter.rsplit(":", 1)[1] + " serves 2 services "
        "(acme.v1.Farewell, acme.v1.Greeter); choose one with connect(address, service=...)"
    )
    with connect(greeter, service="acme.v1.Greeter") as client:
        assert client.manifest is None
        assert list(client.methods) == ["say_hello"]
        reply = client.say_hello(name="ada", times=2)
        assert type(reply).__name__ == "HelloReply"
        assert reply.lines == ["hello ada", "hello ada"]
        assert reply.mood.name == "HAPPY"
        assert client.say_hello({"name": "bob", "times": 1}).lines == ["hello bob"]
        with pytest.raises(TypeError, match="unexpected argument 'nmae'"):
            client.say_hello(nmae="x")
    with pytest.raises(ServiceError) as info:
        connect(greeter, service="acme.v1.Nope")
    assert str(info.value).endswith(
        "has no service 'acme.v1.Nope'; it has acme.v1.Farewell, acme.v1.Greeter"
    )


def test_plain_server_reply_with_an_enum_at_its_zero_value_decodes(greeter):
    """proto3 sends an enum at 0 (the default) as absent; a plain server does so freely,
    and connect() must still read the reply."""
    with connect(greeter, service="acme.v1.Farewell") as client:
        reply = client.say_goodbye(name="ada")
    assert reply.lines == ["bye ada"]
    assert getattr(reply.mood, "value", reply.mood) in (0, None)
