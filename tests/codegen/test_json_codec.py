"""The JSON transcoder against protobuf's own json_format: what one writes the other
reads back to the same message, and every refusal names the field path."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from google.protobuf import json_format
from numpy.typing import NDArray

from modelwire.codegen.json_codec import JsonCodec, JsonError
from tests.fixtures.models import rich

SCHEMA = rich.model().schema
CODEC = JsonCodec(SCHEMA)

DETECTION = {
    "boxes": [
        {"x0": 0, "y0": 0.5, "x1": "2", "y1": 3e10, "label": "KIND_CAT"},
        {"x0": "NaN", "y0": "Infinity", "x1": "-Infinity", "y1": -0.0, "label": 2},
    ],
    "scores": {"dtype": "DATA_TYPE_FLOAT32", "shape": ["3"], "data": "AAAAPwAAgD4AAIA/"},
    "names": {"a": "1", "bb": -300, "big": "9223372036854775807"},
    "grid": [{"values": [1.0, 2.0]}, {}, {"values": [3.5]}],
    "best": {"x0": 1, "label": "KIND_BIRD"},
    "note": "naïve ✓",
    "kinds": ["KIND_CAT", "KIND_DOG"],
}
TALLY = {
    "counts": {"1": {"values": ["a", "b"]}, "-5": {}},
    "weights": {"w": {"x0": 1.5}},
    "matrix": [{"values": ["1", 2, "-9007199254740993"]}],
    "flags": [True, False],
    "payload": "eHl6",
    "kind": "KIND_BIRD",
    "limit": "4",
}
CASES = [("EchoRequest", DETECTION), ("TallyRequest", TALLY), ("PickRequest", {"kinds": []})]


@pytest.mark.parametrize(("message", "value"), CASES, ids=[c[0] for c in CASES])
def test_it_reads_json_as_json_format_does(message, value):
    cls = CODEC.classes.get(message)
    ours = cls.FromString(CODEC.to_proto(message, json.dumps(value).encode()))
    theirs = json_format.ParseDict(value, cls())
    assert ours == theirs or (  # NaN != NaN: compare the serialized bytes instead
        ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    )


@pytest.mark.parametrize(("message", "value"), CASES, ids=[c[0] for c in CASES])
def test_what_it_writes_json_format_reads_back_and_it_prints_every_field(message, value):
    cls = CODEC.classes.get(message)
    original = json_format.ParseDict(value, cls())
    written = CODEC.to_json(message, original.SerializeToString())
    again = json_format.Parse(written, cls())
    assert again.SerializeToString(deterministic=True) == original.SerializeToString(
        deterministic=True
    )
    expected = json_format.MessageToDict(original, always_print_fields_with_no_presence=True)
    assert set(json.loads(written)) == set(expected)


def test_it_writes_the_canonical_forms():
    cls = CODEC.classes.get("EchoRequest")
    msg = json_format.ParseDict(DETECTION, cls())
    out = json.loads(CODEC.to_json("EchoRequest", msg.SerializeToString()))
    assert out["names"] == {"a": "1", "bb": "-300", "big": "9223372036854775807"}
    assert out["boxes"][1] == {
        "x0": "NaN",
        "y0": "Infinity",
        "x1": "-Infinity",
        "y1": -0.0,
        "label": "KIND_DOG",
    }
    assert out["scores"] == DETECTION["scores"]
    assert out["kinds"] == ["KIND_CAT", "KIND_DOG"]
    tally = CODEC.classes.get("TallyRequest")
    t = json.loads(
        CODEC.to_json("TallyRequest", json_format.ParseDict(TALLY, tally()).SerializeToString())
    )
    assert t["payload"] == "eHl6" and t["counts"]["-5"] == {"values": []}


def _floats(x: np.float32, xs: list[np.float32]) -> np.float32:
    return x


def test_float32_values_are_written_with_their_shortest_decimals():
    from modelwire import Model

    codec = JsonCodec(Model(f=_floats).schema)
    data = codec.to_proto("FRequest", b'{"x": 0.1, "xs": [0.1, 0.2, "NaN"]}')
    assert codec.to_json("FRequest", data) == b'{"x":0.1,"xs":[0.1,0.2,"NaN"]}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"boxes": [{"x0": "a"}]}', 'boxes[0].x0: expected a number, got "a"'),
        (
            b'{"boxs": []}',
            "boxs: unknown field 'boxs' in EchoRequest; did you mean 'boxes'? "
            "(its fields: boxes, scores, names, grid, best, note, kinds)",
        ),
        (
            b'{"best": {"lable": 1}}',
            "best.lable: unknown field 'lable' at best in Box; did you mean 'label'? "
            "(its fields: x0, y0, x1, y1, label)",
        ),
        (b'{"names": {"a": 1.5}}', 'names["a"]: expected an integer, got 1.5'),
        (
            b'{"names": {"a": "9223372036854775808"}}',
            'names["a"]: 9223372036854775808 is out of range for int64',
        ),
        (
            b'{"kinds": ["DOGG"]}',
            "kinds[0]: \"DOGG\" is not a value of Kind; did you mean 'DOG'? "
            "(its values: KIND_UNSPECIFIED, KIND_CAT, KIND_DOG, KIND_BIRD)",
        ),
        (
            b'{"kinds": [7]}',
            "kinds[0]: 7 is not a value of Kind (its values: KIND_UNSPECIFIED, "
            "KIND_CAT, KIND_DOG, KIND_BIRD)",
        ),
        (b'{"kinds": "KIND_CAT"}', 'kinds: expected an array, got "KIND_CAT"'),
        (b'{"kinds": [null]}', "kinds[0]: null is not allowed in a list"),
        (b'{"note": 3}', "note: expected a string, got 3"),
        (b'{"grid": [[1, 2]]}', "grid[0]: expected an object (ListOfDouble), got an array"),
        (b'{"best": true}', "best: expected an object (Box), got true"),
        (b"[1]", "the request is a JSON object (EchoRequest), not an array"),
        (b"", "the body is empty; a JSON request is an object, at least {}"),
        (
            b'{"boxes": [1, 2,]}',
            "malformed JSON at line 1, column 16 (position 15): trailing comma is not allowed",
        ),
        (
            b'{\n  "note": "x"\n  "kinds": []}',
            "malformed JSON at line 3, column 3 (position 18): "
            "unexpected character, expected ',' or '}'",
        ),
    ],
)
def test_refusals_name_the_field_path(body, message):
    with pytest.raises(JsonError) as info:
        CODEC.to_proto("EchoRequest", body)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"limit": 1.5}', "limit: expected an integer, got 1.5"),
        (b'{"limit": true}', "limit: expected an integer, got true"),
        (b'{"payload": "@@"}', 'payload: not valid base64: "@@"'),
        (b'{"flags": [1]}', "flags[0]: expected true or false, got 1"),
        (
            b'{"matrix": [{"values": [1, 2.5]}]}',
            "matrix[0].values[1]: expected an integer, got 2.5",
        ),
        (b'{"counts": {"x": {}}}', 'counts["x"]: a map key here is an integer, got "x"'),
    ],
)
def test_refusals_of_scalars_lists_and_map_keys(body, message):
    with pytest.raises(JsonError) as info:
        CODEC.to_proto("TallyRequest", body)
    assert str(info.value) == message


def test_payload_accepts_url_safe_and_unpadded_base64():
    for text in ("+/8=", "-_8", "-_8="):
        data = CODEC.to_proto("TallyRequest", json.dumps({"payload": text}).encode())
        assert CODEC.classes.get("TallyRequest").FromString(data).payload == b"\xfb\xff"


# ---------------------------------------------------------------- tensors


def _scale_image(body: dict) -> np.ndarray:
    msg = CODEC.classes.get("ScaleRequest").FromString(
        CODEC.to_proto("ScaleRequest", json.dumps(body).encode())
    )
    from modelwire.codegen.wire import array_from_wire

    return array_from_wire(msg.image.dtype, list(msg.image.shape), msg.image.data)


def test_nested_arrays_become_the_declared_dtype():
    arr = _scale_image({"image": [[1, 2, 3], [4, 5, 255]]})
    assert arr.dtype == np.uint8 and arr.tolist() == [[1, 2, 3], [4, 5, 255]]
    assert _scale_image({"image": [[1.0, 2.0]]}).dtype == np.uint8  # integral floats are fine
    assert _scale_image({"image": 7}).shape == ()
    assert _scale_image({"image": []}).shape == (0,)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            [[1, 2], [3]],
            "image: nested arrays of different lengths: every row of a tensor has the same length",
        ),
        (
            [[1, "2"]],
            "image: a tensor is nested arrays of numbers (or of true/false); this one has strings",
        ),
        (
            [1, None],
            "image: a tensor is nested arrays of numbers (or of true/false); this one "
            "has null, objects or integers over 64 bits",
        ),
        ([1.5], "image: expected a tensor of uint8 integers, got fractions"),
        ([256], "image: a value is out of range for uint8"),
        ([-1], "image: a value is out of range for uint8"),
        ([True], "image: expected a tensor of uint8 integers, got true/false"),
        ("abc", 'image: expected a tensor (an object, or nested arrays), got "abc"'),
        (
            {"dtype": "DATA_TYPE_FLOAT32", "shape": ["1"], "data": "AAAAAA=="},
            "image: expected a tensor of uint8, got float32",
        ),
        (
            {"dtype": "UINT8", "shape": ["2", "2"], "data": "AAAA"},
            "image: a tensor of shape [2, 2] and dtype uint8 has 4 bytes of data, this one 3",
        ),
        ({"shape": ["2"]}, "image: a tensor with data or a shape needs its dtype"),
        ({"dtype": "UINT8", "shape": ["-1"]}, "image: negative dimension in the shape [-1]"),
    ],
)
def test_tensor_refusals(image, message):
    with pytest.raises(JsonError) as info:
        CODEC.to_proto("ScaleRequest", json.dumps({"image": image}).encode())
    assert str(info.value) == message


def _tensors(x: NDArray[np.float32], y: np.ndarray) -> float:
    return 0.0


def test_a_float32_tensor_refuses_values_it_cannot_hold():
    from modelwire import Model

    codec = JsonCodec(Model(f=_tensors).schema)
    with pytest.raises(JsonError) as info:
        codec.to_proto("FRequest", b'{"x": [1e39]}')
    assert str(info.value) == "x: a value is out of range for float32"
    # an undeclared dtype is inferred from the values
    msg = codec.classes.get("FRequest").FromString(
        codec.to_proto("FRequest", b'{"y": [[true, false]]}')
    )
    assert msg.y.dtype == 1 and list(msg.y.shape) == [1, 2]  # DATA_TYPE_BOOL
    msg = codec.classes.get("FRequest").FromString(codec.to_proto("FRequest", b'{"y": [1, 2]}'))
    assert msg.y.dtype == 5 and base64.b64encode(msg.y.data)  # DATA_TYPE_INT64
