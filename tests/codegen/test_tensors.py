"""The value codec with Tensors: any array round-trips, declared dtypes are enforced, decoding
is zero-copy, and the data appended after a message parses with protoc-generated stubs."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.codegen.values import DecodeError, EncodeError, ValueCodec
from modelwire.codegen.wire import append_tensor_data, array_to_wire
from tests.codegen.codec_cases import Image, Scene, method, stub_module
from tests.codegen.toolchain import StubCache

ARRAYS = [
    pytest.param(np.arange(12, dtype=np.float32).reshape(3, 4), id="float32 2-d"),
    pytest.param(np.arange(6, dtype=">f4").reshape(2, 3), id="big-endian float32"),
    pytest.param(np.arange(6, dtype=">i8"), id="big-endian int64"),
    pytest.param(np.arange(24, dtype=np.int16).reshape(2, 3, 4)[:, ::2, 1:], id="sliced"),
    pytest.param(np.arange(12, dtype=np.float64).reshape(3, 4).T, id="transposed"),
    pytest.param(np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3)), id="fortran"),
    pytest.param(np.array(3.5, dtype=np.float32), id="0-d"),
    pytest.param(np.zeros(0, dtype=np.float32), id="empty"),
    pytest.param(np.zeros((2, 0, 3), dtype=np.int32), id="empty 3-d"),
    pytest.param(np.array([True, False]), id="bool"),
    pytest.param(np.array([1 + 2j], dtype=np.complex64), id="complex64"),
    pytest.param(np.array([0.5, -1], dtype=np.float16), id="float16"),
]


@pytest.mark.parametrize("arr", ARRAYS)
def test_any_array_round_trips_through_an_undeclared_tensor(arr: np.ndarray):
    codec = method("anything")
    _, kwargs = codec.decode_request(codec.encode_request((arr,), {}))
    got = kwargs["x"]
    assert got.dtype == arr.dtype.newbyteorder("=")
    assert got.dtype.isnative
    assert got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    back = codec.decode_response(codec.encode_response(arr))
    assert (back.dtype, back.shape) == (got.dtype, arr.shape)
    np.testing.assert_array_equal(back, arr)


def test_tensor_is_sent_as_little_endian_c_order_bytes():
    number, shape, data = array_to_wire(np.arange(6, dtype=">i4").reshape(2, 3).T, None)
    assert (number, shape) == (4, (3, 2))
    assert bytes(data) == np.array([[0, 3], [1, 4], [2, 5]], dtype="<i4").tobytes()


def test_declared_dtype_is_enforced_when_decoding():
    """A float32 Tensor sent to an NDArray[np.uint8] parameter is the sender's fault."""
    raw = method("floats").encode_request((np.zeros(3, np.float32),), {})
    with pytest.raises(DecodeError) as info:
        method("pixels").decode_request(raw)
    assert str(info.value) == "x: expected a Tensor of uint8, got float32"


def test_declared_dtype_is_enforced_in_nested_and_repeated_tensors():
    wrong = Scene(
        image=Image(np.zeros(2, np.uint8), "a"),
        depth=np.zeros(1, np.float32),
        extra=[],
        anything=np.zeros(1),
        mask=None,
    )
    schema, binding = Model(scene=scene_undeclared).named("codec-cases", "1.0.0")
    loose = ValueCodec(schema, message_classes(file_descriptor(schema)), binding).method("scene")

    raw = loose.encode_request((wrong._replace(image=Image(np.zeros(2, np.int8), "a")),), {})
    with pytest.raises(DecodeError) as info:
        method("scene").decode_request(raw)
    assert str(info.value) == "image.pixels: expected a Tensor of uint8, got int8"

    raw = loose.encode_request((wrong._replace(extra=[np.zeros(1, np.float64)]),), {})
    with pytest.raises(DecodeError) as info:
        method("scene").decode_request(raw)
    assert str(info.value) == "extra: expected a Tensor of uint8, got float64"


class LooseImage(NamedTuple):
    pixels: np.ndarray
    label: str


class LooseScene(NamedTuple):
    image: LooseImage
    depth: np.ndarray
    extra: list[np.ndarray]
    anything: np.ndarray
    mask: np.ndarray | None


def scene_undeclared(s: LooseScene) -> LooseScene:
    """The same wire format as `scene`, with no dtypes declared."""
    return s


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        pytest.param(
            np.zeros(2, np.float32), "x: expected an array of uint8, got float32", id="float32"
        ),
        pytest.param(np.array([-1, 300]), "x: expected an array of uint8, got int64", id="int64"),
        pytest.param(np.array(["a"]), "x: expected an array of uint8, got str32", id="strings"),
    ],
)
def test_declared_dtype_is_enforced_when_encoding(arr: np.ndarray, message: str):
    with pytest.raises(EncodeError) as info:
        method("pixels").encode_request((arr,), {})
    assert str(info.value) == message


def test_safe_casts_to_the_declared_dtype_are_made():
    codec = method("floats")
    _, kwargs = codec.decode_request(codec.encode_request((np.array([0.5, 2.0]),), {}))
    assert kwargs["x"].dtype == np.float32
    np.testing.assert_array_equal(kwargs["x"], [0.5, 2.0])


def test_undeclared_tensor_refuses_unsupported_dtypes():
    with pytest.raises(EncodeError) as info:
        method("anything").encode_request((np.array(["a", "b"]),), {})
    assert str(info.value) == "x: arrays of dtype <U1 cannot travel in a Tensor"


def test_tensor_decode_is_zero_copy():
    arr = np.arange(1000, dtype=np.float32).reshape(10, 100)
    codec = method("floats")
    raw = codec.encode_request((arr,), {})
    got = codec.decode_request(raw)[1]["x"]
    np.testing.assert_array_equal(got, arr)
    assert np.shares_memory(got, np.frombuffer(raw, np.uint8))
    base = got
    while isinstance(base, np.ndarray):
        base = base.base
    assert base is raw
    assert not got.flags.writeable


def test_nested_tensor_decode_is_zero_copy():
    value = Scene(
        image=Image(np.arange(64, dtype=np.uint8), "cat"),
        depth=np.ones((4, 4), np.float32),
        extra=[np.arange(3, dtype=np.uint8)],
        anything=np.zeros((2, 2), np.complex128),
        mask=np.array([True]),
    )
    codec = method("scene")
    raw = codec.encode_request((value,), {})
    got = codec.decode_request(raw)[0][0]
    view = np.frombuffer(raw, np.uint8)
    for arr in (got.image.pixels, got.depth, got.anything, got.mask):
        assert np.shares_memory(arr, view)
    np.testing.assert_array_equal(got.image.pixels, value.image.pixels)
    np.testing.assert_array_equal(got.extra[0], value.extra[0])
    assert got.image.label == "cat"


# ---------------------------------------------------------------- the wire-append trick


def assert_tensor(msg, arr: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """A stub's Tensor message holds `arr`: its DataType, shape and little-endian bytes."""
    dtype_enum = msg.DESCRIPTOR.fields_by_name["dtype"].enum_type
    assert dtype_enum.values_by_number[msg.dtype].name == "DATA_TYPE_" + arr.dtype.name.upper()
    assert list(msg.shape) == list(arr.shape)
    assert msg.data == np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("arr", ARRAYS)
def test_appended_tensor_bytes_parse_with_generated_stubs(arr: np.ndarray, stub_cache: StubCache):
    stubs = stub_module(stub_cache)
    raw = method("anything").encode_request((arr,), {})
    assert_tensor(stubs.AnythingRequest.FromString(raw).x, arr)
    raw = method("anything").encode_response(arr)
    assert_tensor(stubs.AnythingResponse.FromString(raw).value, arr)


def test_appended_nested_tensors_parse_with_generated_stubs(stub_cache: StubCache):
    stubs = stub_module(stub_cache)
    value = Scene(
        image=Image(np.arange(5, dtype=np.uint8), "dog"),
        depth=np.full((2, 3), 0.5, np.float32),
        extra=[np.arange(2, dtype=np.uint8), np.zeros(0, np.uint8)],
        anything=np.arange(4, dtype=">u2"),
        mask=np.array([[True, False]]),
    )
    raw = method("scene").encode_request((value,), {})
    msg = stubs.SceneRequest.FromString(raw)
    # the data travelled after the message, not where protobuf would have put it
    assert msg.SerializeToString() != raw
    assert msg.image.label == "dog"
    assert_tensor(msg.image.pixels, value.image.pixels)
    assert_tensor(msg.depth, value.depth)
    assert_tensor(msg.anything, value.anything)
    assert_tensor(msg.mask, value.mask)
    for got, arr in zip(msg.extra, value.extra, strict=True):
        assert_tensor(got, arr)


def test_append_tensor_data_sets_the_data_of_a_nested_tensor(stub_cache: StubCache):
    stubs = stub_module(stub_cache)
    msg = stubs.SceneRequest()
    msg.image.label = "x"
    msg.image.pixels.dtype = 6  # DATA_TYPE_UINT8
    msg.image.pixels.shape.append(3)
    data = memoryview(b"\x01\x02\x03")
    raw = b"".join([msg.SerializeToString(), *append_tensor_data((1, 1), data)])
    parsed = stubs.SceneRequest.FromString(raw)
    assert parsed.image.pixels.data == b"\x01\x02\x03"
    assert parsed.image.label == "x"
    assert list(parsed.image.pixels.shape) == [3]


def test_stub_encoded_tensors_decode_with_our_codec(stub_cache: StubCache):
    """Protobuf's canonical encoding (data inline) takes the same zero-copy path."""
    stubs = stub_module(stub_cache)
    msg = stubs.FloatsRequest()
    msg.x.dtype = 11  # DATA_TYPE_FLOAT32
    msg.x.shape.extend([2, 2])
    msg.x.data = np.arange(4, dtype="<f4").tobytes()
    raw = msg.SerializeToString()
    got = method("floats").decode_request(raw)[1]["x"]
    np.testing.assert_array_equal(got, [[0, 1], [2, 3]])
    assert np.shares_memory(got, np.frombuffer(raw, np.uint8))
