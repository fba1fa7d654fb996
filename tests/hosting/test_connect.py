"""Connect unary calls over a real uvicorn server: JSON and protobuf bodies, the headers
Connect defines, and its error body and status mapping."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

from tests.fixtures.models import rich
from tests.hosting.conftest import Served

RICH = "modelwire.models.rich.v1.RichService"


def test_json_call_answers_canonical_json(http_face):
    s: Served = http_face("rich")
    r = s.client.post(
        f"/{RICH}/Summarize",
        {"boxes": [{"x0": 0, "y0": 0, "x1": 2, "y1": 3, "label": "KIND_CAT"}], "scores": [0.5]},
    )
    assert (r.status, r.content_type) == (200, "application/json")
    # lowerCamelCase names, int64 as a string, fields without presence always written
    assert r.json() == {"count": "1", "area": 6.0, "byKind": {"CAT": 6.0}, "totalScore": 0.5}


def test_proto_and_camel_case_field_names_are_both_accepted(http_face):
    s = http_face("forest")
    row = {"sepal_length": [5.1], "sepal_width": [3.5], "petal_length": [1.4], "petal_width": [0.2]}
    camel = {"sepalLength": [5.1], "sepalWidth": [3.5], "petalLength": [1.4], "petalWidth": [0.2]}
    assert s.client.post(f"/{s.name}/Classify", row).json() == {"irisType": ["0"]}
    assert s.client.post(f"/{s.name}/Classify", camel).json() == {"irisType": ["0"]}


def test_a_field_given_by_both_names_is_refused(http_face):
    s = http_face("forest")
    r = s.client.post(f"/{s.name}/Classify", {"sepal_length": [1.0], "sepalLength": [2.0]})
    assert (r.status, r.json()) == (
        400,
        {
            "code": "invalid_argument",
            "message": "classify: invalid request: sepalLength: field 'sepal_length' is given "
            "twice (as sepal_length and sepalLength)",
        },
    )


def test_proto_body_in_and_out_is_the_grpc_message(http_face):
    s = http_face("rich")
    codec = s.service.codec.method("scale")
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    body = codec.encode_request((image, 2.0, np.int32(1)), {})
    r = s.client.post(f"/{RICH}/Scale", body, content_type="application/proto")
    assert (r.status, r.content_type) == (200, "application/proto")
    np.testing.assert_array_equal(codec.decode_response(r.body), image * 2.0 + 1)


def test_a_tensor_given_as_nested_arrays_is_cast_to_the_declared_dtype(http_face):
    s = http_face("rich")
    r = s.client.post(f"/{RICH}/Scale", {"image": [[1, 2, 3], [4, 5, 6]], "factor": 0.5})
    assert r.status == 200, r.body
    value = r.json()["value"]
    assert value["dtype"] == "DATA_TYPE_FLOAT32" and value["shape"] == ["2", "3"]
    codec = s.service.codec.method("scale")
    # the same request in the canonical form gives the same bytes back
    canonical = {
        "image": {"dtype": "DATA_TYPE_UINT8", "shape": ["2", "3"], "data": "AQIDBAUG"},
        "factor": 0.5,
    }
    again = s.client.post(f"/{RICH}/Scale", canonical)
    assert again.json() == r.json()
    proto = s.client.post(
        f"/{RICH}/Scale",
        codec.encode_request((np.array([[1, 2, 3], [4, 5, 6]], np.uint8), 0.5, np.int32(0)), {}),
        content_type="application/proto",
    )
    np.testing.assert_array_equal(
        codec.decode_response(proto.body), np.array([[0.5, 1, 1.5], [2, 2.5, 3]], np.float32)
    )


def test_a_million_element_float32_tensor_round_trips_over_json(http_face):
    s = http_face("echo")
    x = np.random.default_rng(0).random((1000, 1000), dtype=np.float32)
    r = s.client.post(f"/{s.name}/EchoTensor", {"x": x.tolist()})
    assert r.status == 200
    import base64

    value = r.json()["value"]
    assert value["shape"] == ["1000", "1000"]
    got = np.frombuffer(base64.b64decode(value["data"]), np.float32).reshape(1000, 1000)
    np.testing.assert_array_equal(got, x)


def test_connect_timeout_ms_is_the_deadline(http_face):
    s = http_face("slow", threads=2)
    t0 = time.monotonic()
    r = s.client.post(f"/{s.name}/Sleep", {"seconds": 5}, connect_timeout_ms="200")
    assert time.monotonic() - t0 < 3
    assert (r.status, r.json()) == (
        504,
        {"code": "deadline_exceeded", "message": "sleep: the deadline passed before the reply"},
    )
    assert (
        s.client.post(f"/{s.name}/Sleep", {"seconds": 0}, connect_timeout_ms="5000").status == 200
    )


@pytest.mark.parametrize("value", ["0", "-1", "abc", "12345678901", "1.5"])
def test_a_malformed_timeout_is_invalid_argument(http_face, value):
    s = http_face("echo")
    r = s.client.post(f"/{s.name}/Add", {"a": 1}, connect_timeout_ms=value)
    assert (r.status, r.json()) == (
        400,
        {
            "code": "invalid_argument",
            "message": "Connect-Timeout-Ms must be a positive integer of at most 10 digits, "
            f"got {value!r}",
        },
    )


def test_protocol_version_1_or_none_is_accepted_and_others_refused(http_face):
    s = http_face("echo")
    assert s.client.post(f"/{s.name}/Add", {"a": 1}, connect_protocol_version="1").status == 200
    r = s.client.post(f"/{s.name}/Add", {"a": 1}, connect_protocol_version="2")
    assert (r.status, r.json()["message"]) == (400, "Connect-Protocol-Version must be 1, got '2'")


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        ("text/plain", "Content-Type 'text/plain' is not served"),
        (
            "application/connect+json",
            "Connect's streaming content types are not served: these methods are unary",
        ),
        ("application/grpc", "this is the HTTP port; gRPC is served on the service's gRPC port"),
        ("application/json; charset=latin-1", None),
    ],
)
def test_an_unsupported_content_type_is_415_with_accept_post(http_face, content_type, reason):
    s = http_face("echo")
    r = s.client.post(f"/{s.name}/Add", b"{}", content_type=content_type)
    assert r.status == 415
    assert r.headers["accept-post"] == "application/json, application/proto"
    assert r.json()["code"] == "unimplemented"
    if reason:
        assert r.json()["message"] == f"{reason}; send application/json or application/proto"
    else:
        assert r.json()["message"] == "JSON requests are UTF-8; this one says charset=latin-1"


def test_json_with_a_utf8_charset_is_accepted(http_face):
    s = http_face("echo")
    r = s.client.post(
        f"/{s.name}/Add", {"a": 1, "b": 1}, content_type="application/json; charset=UTF-8"
    )
    assert r.json() == {"value": 2.0}


def test_a_gzip_body_is_decompressed_and_other_encodings_are_unimplemented(http_face):
    s = http_face("echo")
    body = gzip.compress(b'{"a": 2, "b": 3}')
    assert s.client.post(f"/{s.name}/Add", body, content_encoding="gzip").json() == {"value": 5.0}
    r = s.client.post(f"/{s.name}/Add", b"{}", content_encoding="br")
    assert (r.status, r.json()) == (
        501,
        {
            "code": "unimplemented",
            "message": "Content-Encoding 'br' is not supported; use gzip or identity",
        },
    )
    r = s.client.post(f"/{s.name}/Add", b"not gzip", content_encoding="gzip")
    assert r.status == 400 and r.json()["message"].startswith("the gzip body is corrupt: ")


def test_model_errors_map_through_the_one_status_table(http_face):
    s = http_face("faulty")
    r = s.client.post(f"/{s.name}/WrongType", {"x": 1.5})
    assert (r.status, r.json()) == (
        400,
        {
            "code": "invalid_argument",
            "message": "wrong_type: the model rejected the request: TypeError: x must be a whole "
            "number, got 1.5",
        },
    )
    r = s.client.post(f"/{s.name}/Crash", {"x": 1})
    assert (r.status, r.json()) == (
        500,
        {
            "code": "internal",
            "message": "crash: the model raised LookupError; the traceback is in the server's log",
        },
    )
    r = s.client.post(f"/{s.name}/BadResult", {"x": 1})
    assert r.status == 500 and r.json()["code"] == "internal"
    r = s.client.post(f"/{s.name}/Exits", {"x": 1})
    assert r.status == 500
    assert s.client.get("/healthz").status == 200  # sys.exit() in a model ended nothing


def test_a_reply_over_the_message_limit_is_resource_exhausted(http_face):
    s = http_face("slow", max_message_bytes=1000)
    r = s.client.post(f"/{s.name}/Blob", {"size": 5000})
    assert r.status == 429
    assert r.json()["message"].startswith("blob: the reply is 5")


def test_the_internal_failure_is_logged_once_with_its_traceback(http_face, caplog):
    s = http_face("faulty")
    with caplog.at_level("ERROR", logger="modelwire.hosting.http_calls"):
        s.client.post(f"/{s.name}/Crash", {"x": 7})
    records = [r for r in caplog.records if r.name == "modelwire.hosting.http_calls"]
    assert len(records) == 1
    assert records[0].exc_info is not None and records[0].exc_info[0] is LookupError
    assert "no entry 7" in str(records[0].exc_info[1])


@pytest.mark.parametrize("threads", [None, 3], ids=["inline", "threads"])
def test_both_call_modes_answer_the_same(http_face, threads):
    s = http_face("rich", threads=threads)
    r = s.client.post(f"/{RICH}/Pick", {"kinds": [], "default": "dog"})
    assert r.json() == {"value": "KIND_DOG"}
    r = s.client.post(f"/{RICH}/Pick", {"kinds": [2, "BIRD"]})
    assert r.json() == {"value": "KIND_DOG"}


def test_enum_names_are_accepted_with_or_without_their_prefix(http_face):
    s = http_face("rich")
    for given in ("KIND_BIRD", "BIRD", "bird", 3):
        r = s.client.post(f"/{RICH}/Pick", {"kinds": [given]})
        assert r.json() == {"value": "KIND_BIRD"}, given
    assert rich.Kind.BIRD.value == 3
