"""The Acumos model runner's REST contract (reference/acumos-measured.md §3), on the iris
forest the Acumos measurements used: what worked there works unchanged here, and where
the runner refused what HTTP allows, this face is tolerant."""

from __future__ import annotations

import pytest

from tests.hosting.conftest import Served

PB = "application/vnd.google.protobuf"
ROWS = {
    "sepal_length": [5.1, 6.2],
    "sepal_width": [3.5, 2.9],
    "petal_length": [1.4, 4.3],
    "petal_width": [0.2, 1.3],
}


def _pb_request(s: Served) -> bytes:
    codec = s.service.codec.method("classify")
    from tests.fixtures.models.forest import Flowers

    return codec.encode_request((Flowers(*ROWS.values()),), {})


def test_json_in_json_out_as_the_runner_answers(http_face):
    s = http_face("forest")
    r = s.client.post("/model/methods/classify", ROWS, accept="application/json")
    assert (r.status, r.content_type, r.json()) == (
        200,
        "application/json",
        {"irisType": ["0", "1"]},
    )


def test_protobuf_in_protobuf_out_and_mixed(http_face):
    s = http_face("forest")
    body = _pb_request(s)
    codec = s.service.codec.method("classify")
    r = s.client.post("/model/methods/classify", body, content_type=PB, accept=PB)
    assert (r.status, r.content_type) == (200, PB)
    assert list(codec.decode_response(r.body).iris_type) == [0, 1]
    r = s.client.post("/model/methods/classify", body, content_type=PB, accept="application/json")
    assert r.json() == {"irisType": ["0", "1"]}
    r = s.client.post("/model/methods/classify", ROWS, accept=PB)
    assert r.content_type == PB and list(codec.decode_response(r.body).iris_type) == [0, 1]


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        ("*/*", "application/json"),  # the runner answered 415
        ("application/*", "application/json"),
        (f"application/json;q=0.5, {PB}", PB),
        (f"{PB};q=0.2, application/json;q=0.9", "application/json"),
        (f"text/html, {PB};q=0.1", PB),
    ],
)
def test_accept_wildcards_and_q_values_are_honoured(http_face, accept, answered):
    s = http_face("forest")
    r = s.client.post("/model/methods/classify", ROWS, accept=accept)
    assert (r.status, r.content_type) == (200, answered)


def test_a_charset_and_a_missing_accept_are_tolerated(http_face):
    s = http_face("forest")
    r = s.client.post(
        "/model/methods/classify", ROWS, content_type="application/json; charset=utf-8"
    )
    assert (r.status, r.json()) == (200, {"irisType": ["0", "1"]})


def test_a_missing_content_type_is_400_and_an_unsupported_one_415(http_face):
    s = http_face("forest")
    r = s.client.request("POST", "/model/methods/classify", b"{}", {})
    assert (r.status, r.json()) == (
        400,
        {
            "code": "invalid_argument",
            "message": "the Content-Type header is required: application/json or "
            "application/vnd.google.protobuf",
        },
    )
    r = s.client.post("/model/methods/classify", b"a,b", content_type="text/csv")
    assert (r.status, r.json()["message"]) == (
        415,
        "Content-Type 'text/csv' is not served; send application/json or "
        "application/vnd.google.protobuf",
    )
    r = s.client.post("/model/methods/classify", ROWS, accept="text/html")
    assert (r.status, r.json()["message"]) == (
        415,
        "Accept 'text/html' names no type served; use application/json or "
        "application/vnd.google.protobuf",
    )


def test_undecodable_bodies_are_400(http_face):
    s = http_face("forest")
    r = s.client.post("/model/methods/classify", b"\xff\xff\xff\x07", content_type=PB)
    assert r.status == 400 and r.json()["message"].startswith("classify: invalid request: ")
    r = s.client.post("/model/methods/classify", {"sepal_len": [1.0]})
    assert (r.status, r.json()["message"]) == (
        400,
        "classify: invalid request: sepal_len: unknown field 'sepal_len' in ClassifyRequest; "
        "did you mean 'sepal_length'? (its fields: sepal_length, sepal_width, petal_length, "
        "petal_width)",
    )
    r = s.client.post("/model/methods/classify", {"sepal_length": 5.1})
    assert (r.status, r.json()["message"]) == (
        400,
        "classify: invalid request: sepal_length: expected an array, got 5.1",
    )


def test_a_model_failure_is_400_for_bad_input_and_500_for_a_crash(http_face):
    s = http_face("forest")
    r = s.client.post("/model/methods/classify", {"sepal_length": [1.0]})  # ragged columns
    assert r.status == 400 and r.json()["code"] == "invalid_argument"
    assert r.json()["message"].startswith("classify: the model rejected the request: ValueError")
    f = http_face("faulty")
    assert f.client.post("/model/methods/crash", {"x": 1}).status == 500  # Acumos: 400


def test_unknown_method_is_404_naming_the_methods_and_get_is_405(http_face):
    s = http_face("rich")
    r = s.client.post("/model/methods/scal", {})
    assert (r.status, r.json()) == (
        404,
        {
            "code": "not_found",
            "message": "no method 'scal'; did you mean 'scale'? (the methods: summarize, echo, "
            "scale, tally, pick; POST /model/methods/<method>)",
        },
    )
    r = s.client.get("/model/methods/scale")
    assert (r.status, r.headers["allow"]) == (405, "POST")


def test_get_model_methods_lists_them(http_face):
    s = http_face("forest")
    r = s.client.get("/model/methods")
    assert r.json() == {
        "service": s.name,
        "methods": [
            {
                "name": "classify",
                "rpc": "Classify",
                "connect": f"/{s.name}/Classify",
                "acumos": "/model/methods/classify",
                "request": "ClassifyRequest",
                "response": "ClassifyResponse",
                "description": s.service.schema.methods[0].doc or "",
            }
        ],
    }
