"""Bad requests and failing models get a status, never a crash: INVALID_ARGUMENT for what the
caller got wrong, INTERNAL naming the method for the rest, with the traceback logged once on
the server and never sent to the client."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from google.protobuf import descriptor_pb2

from modelwire.codegen.descriptors import message_classes
from tests.runtime.serving import Served, json_logs, wait_for
from tests.servers import health_status

ECHO = "modelwire.models.echo.v1"


def _classes(served: Served):
    """Message classes of the served model, read through reflection (not from modelwire)."""
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(served.address) as channel:
        fdp = ProtoReflectionDescriptorDatabase(channel).FindFileContainingSymbol(served.service)
    return message_classes(descriptor_pb2.FileDescriptorProto.FromString(fdp.SerializeToString()))


def _status(served: Served, rpc: str, request: bytes) -> tuple[str, str, grpc.RpcError]:
    call = served.rpc(rpc)
    try:
        with pytest.raises(grpc.RpcError) as info:
            call(request)
    finally:
        call.channel.close()
    return info.value.code().name, info.value.details(), info.value


def _tensor_request(classes, dtype: int, shape: list[int], data: bytes) -> bytes:
    tensor = classes.get("Tensor")(dtype=dtype, shape=shape, data=data)
    return classes.get("EchoTensorRequest")(x=tensor).SerializeToString()


def _record_request(classes, **fields) -> bytes:
    return classes.get("EchoRecordRequest")(**fields).SerializeToString()


BAD_REQUESTS = [
    pytest.param(
        "Add",
        lambda c: b"\xff",
        "add: invalid request: the bytes are not a valid AddRequest: Error parsing message "
        f"with type '{ECHO}.AddRequest': Wire format was corrupt",
        id="undecodable-bytes",
    ),
    pytest.param(
        "EchoRecord",
        lambda c: b"\x0a\x02\xff\xfe",
        "echo_record: invalid request: the bytes are not a valid EchoRecordRequest: Error "
        f"parsing message with type '{ECHO}.EchoRecordRequest': String field had bad UTF-8",
        id="bad-utf8-string",
    ),
    pytest.param(
        "EchoTensor",
        lambda c: _tensor_request(c, 5, [2], bytes(16)),
        "echo_tensor: invalid request: x: expected a Tensor of float32, got int64",
        id="tensor-wrong-dtype",
    ),
    pytest.param(
        "EchoTensor",
        lambda c: _tensor_request(c, 11, [2, 3], bytes(16)),
        "echo_tensor: invalid request: x: Tensor of shape [2, 3] and dtype float32 needs 24 "
        "bytes, got 16",
        id="tensor-wrong-shape",
    ),
    pytest.param(
        "EchoTensor",
        lambda c: _tensor_request(c, 11, [-1], bytes(16)),
        "echo_tensor: invalid request: x: negative dimension in Tensor shape [-1]",
        id="tensor-negative-dimension",
    ),
    pytest.param(
        "EchoTensor",
        lambda c: _tensor_request(c, 99, [4], bytes(16)),
        "echo_tensor: invalid request: x: unknown Tensor dtype number 99",
        id="tensor-unknown-dtype",
    ),
    pytest.param(
        "EchoTensor",
        lambda c: b"",
        "echo_tensor: invalid request: x: required field is not set",
        id="tensor-missing",
    ),
    pytest.param(
        "EchoRecord",
        lambda c: _record_request(c, name="a", color=7, where=c.get("Point")(x=1, y=2)),
        "echo_record: invalid request: color: 7 is not a value of enum Color",
        id="enum-unknown-number",
    ),
    pytest.param(
        "EchoRecord",
        lambda c: _record_request(c, name="a", where=c.get("Point")(x=1, y=2)),
        "echo_record: invalid request: color: enum value is not set",
        id="enum-unset",
    ),
    pytest.param(
        "EchoRecord",
        lambda c: _record_request(c, name="a", color=1),
        "echo_record: invalid request: where: required field is not set",
        id="record-missing",
    ),
]


@pytest.mark.parametrize(("rpc", "make", "details"), BAD_REQUESTS)
def test_bad_request_is_invalid_argument(echo_server, rpc, make, details):
    code, got, _ = _status(echo_server, rpc, make(_classes(echo_server)))
    assert (code, got) == ("INVALID_ARGUMENT", details), echo_server.stderr()


def test_model_value_error_is_invalid_argument_with_its_message(echo_server):
    request = _classes(echo_server).get("RejectRequest")(x=-2.5).SerializeToString()
    assert _status(echo_server, "Reject", request)[:2] == (
        "INVALID_ARGUMENT",
        "reject: the model rejected the request: ValueError: x must be positive, got -2.5",
    )


def test_model_type_error_is_invalid_argument_with_its_message(faulty_server):
    request = _classes(faulty_server).get("WrongTypeRequest")(x=1.5).SerializeToString()
    assert _status(faulty_server, "WrongType", request)[:2] == (
        "INVALID_ARGUMENT",
        "wrong_type: the model rejected the request: TypeError: x must be a whole number, got 1.5",
    )


def _assert_nothing_leaks(details: str, error: grpc.RpcError, *secrets: str) -> None:
    for text in [details, *(str(v) for _, v in error.trailing_metadata() or ())]:
        assert "Traceback" not in text
        assert ".py" not in text and "/" not in text, text
        for secret in secrets:
            assert secret not in text


def test_model_exception_is_internal_naming_the_method(faulty_server):
    request = _classes(faulty_server).get("CrashRequest")(x=17.25).SerializeToString()
    code, details, error = _status(faulty_server, "Crash", request)
    assert (code, details) == (
        "INTERNAL",
        "crash: the model raised LookupError; the traceback is in the server's log",
    )
    _assert_nothing_leaks(details, error, "no entry", "17.25")
    assert health_status(faulty_server.address) == "SERVING"


def test_result_that_does_not_fit_the_response_is_internal(faulty_server):
    request = _classes(faulty_server).get("BadResultRequest")(x=1.0).SerializeToString()
    code, details, error = _status(faulty_server, "BadResult", request)
    assert (code, details) == (
        "INTERNAL",
        "bad_result: the model returned a value that does not fit its declared response: "
        "value: expected an integer, got str 'not an int'",
    )
    _assert_nothing_leaks(details, error)


def test_sys_exit_in_a_model_is_internal_and_the_server_lives_on(faulty_server):
    """A model calling sys.exit() once hung the call (sync) or ended the server (aio)."""
    request = _classes(faulty_server).get("ExitsRequest")(x=1.0).SerializeToString()
    assert _status(faulty_server, "Exits", request)[:2] == (
        "INTERNAL",
        "exits: the model raised SystemExit; the traceback is in the server's log",
    )
    assert health_status(faulty_server.address) == "SERVING"
    request = _classes(faulty_server).get("WrongTypeRequest")(x=1.0).SerializeToString()
    assert _status(faulty_server, "WrongType", request)[0] == "INVALID_ARGUMENT"


def test_traceback_is_logged_once_on_the_server(faulty_server, caplog):
    marker = "no entry 4711.5 in the table"
    request = _classes(faulty_server).get("CrashRequest")(x=4711.5).SerializeToString()
    with caplog.at_level(logging.INFO):
        code, details, error = _status(faulty_server, "Crash", request)
    assert code == "INTERNAL"
    _assert_nothing_leaks(details, error, marker)
    if faulty_server.process is None:
        logged = [r for r in caplog.records if r.exc_info and marker in str(r.exc_info[1])]
        assert [(r.name, r.levelname, r.rpc, r.status) for r in logged] == [
            ("modelwire.runtime.service", "ERROR", "Crash", "INTERNAL")
        ]
        assert logged[0].getMessage() == f"crash failed: {details}"
        unrelated = [r for r in caplog.records if r.exc_info and r not in logged]
        assert unrelated == []
        return
    wait_for(lambda: marker in faulty_server.stderr(), 10, "the traceback in the server's log")
    stderr = faulty_server.stderr()
    records = [r for r in json_logs(stderr) if marker in json.dumps(r)]
    assert len(records) == 1, stderr
    (record,) = records
    assert (record["level"], record["logger"], record["rpc"], record["status"]) == (
        "error",
        "modelwire.runtime.service",
        "Crash",
        "INTERNAL",
    )
    assert record["message"] == f"crash failed: {details}"
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert record["traceback"].endswith(f"LookupError: {marker}")
    assert stderr.count(marker) == 1


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param([1] * 65, id="65-dimensions"),
        pytest.param([1 << 40, 1 << 40, 0], id="zero-size-but-huge-dimensions"),
    ],
)
def test_tensor_shape_numpy_cannot_build_is_invalid_argument(echo_server, shape):
    """A shape whose byte count checks out but that numpy refuses to reshape to (more than 64
    dimensions; dimensions whose product overflows although one is 0) is the sender's fault."""
    request = _tensor_request(_classes(echo_server), 11, shape, b"" if 0 in shape else bytes(4))
    code, details, _ = _status(echo_server, "EchoTensor", request)
    assert code == "INVALID_ARGUMENT", (details, echo_server.stderr())
    assert details.startswith("echo_tensor: invalid request: x: ")
