"""The value codec: lenient about numpy inputs, strict about meaning, zero-copy for Tensors."""

from __future__ import annotations

import contextlib
import enum
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from modelwire.codegen.descriptors import (
    file_descriptor,
    message_classes,
    schema_from_descriptor,
)
from modelwire.codegen.proto import render_proto
from modelwire.codegen.values import DecodeError, EncodeError, MethodCodec, ValueCodec
from modelwire.codegen.wire import WireError, append_tensor_data, array_from_wire, array_to_wire
from modelwire.modeling import Model
from tests.codegen.toolchain import StubCache


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Inner(NamedTuple):
    n: int
    ratio: float


class Reading(NamedTuple):
    count: int
    level: float
    flag: bool
    ids: list[int]
    weights: list[float]
    grid: list[list[float]]
    inner: Inner
    by_name: dict[str, int]
    small: np.int8
    half: np.float32
    maybe: int | None
    color: Color


class Image(NamedTuple):
    pixels: NDArray[np.uint8]
    label: str


class Scene(NamedTuple):
    image: Image
    depth: NDArray[np.float32]
    extra: list[NDArray[np.uint8]]
    anything: np.ndarray
    mask: NDArray[np.bool_] | None


def record(r: Reading) -> Reading:
    return r


def scene(s: Scene) -> Scene:
    return s


def pixels(x: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return x


def floats(x: NDArray[np.float32]) -> np.ndarray:
    return x


def anything(x: np.ndarray) -> np.ndarray:
    return x


def counts(d: dict[str, int]) -> dict[np.int32, np.float32]:
    return {}


def shift(p: Inner, by: int) -> Inner:
    return p


MODEL = Model(
    record=record,
    scene=scene,
    pixels=pixels,
    floats=floats,
    anything=anything,
    counts=counts,
    shift=shift,
)
SCHEMA, BINDING = MODEL.named("codec-cases", "1.0.0")
CODEC = ValueCodec(SCHEMA, message_classes(file_descriptor(SCHEMA)), BINDING)


def method(name: str) -> MethodCodec:
    return CODEC.method(name)


def reading(**changes: object) -> Reading:
    base = Reading(
        count=3,
        level=0.5,
        flag=True,
        ids=[1, 2],
        weights=[0.25],
        grid=[[1.0, 2.0], []],
        inner=Inner(1, 2.0),
        by_name={"a": 1},
        small=np.int8(-3),
        half=np.float32(1.5),
        maybe=None,
        color=Color.GREEN,
    )
    return base._replace(**changes)


def round_trip(value: Reading) -> Reading:
    args, kwargs = method("record").decode_request(method("record").encode_request((value,), {}))
    assert kwargs == {}
    return args[0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- lenient about numpy


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"ids": np.array([0, 1, 2])}, {"ids": [0, 1, 2]}, id="int64 array as list[int]"
        ),
        pytest.param(
            {"ids": np.array([7], dtype=np.uint8)}, {"ids": [7]}, id="uint8 array as list[int]"
        ),
        pytest.param(
            {"ids": [np.int32(4), np.int64(5)]}, {"ids": [4, 5]}, id="numpy ints in a list"
        ),
        pytest.param(
            {"weights": np.array([0.5, 1.5], dtype=np.float32)},
            {"weights": [0.5, 1.5]},
            id="float32 array as list[float]",
        ),
        pytest.param(
            {"weights": np.array([1, 2])}, {"weights": [1.0, 2.0]}, id="int array as list[float]"
        ),
        pytest.param(
            {"grid": np.array([[1.0, 2.0], [3.0, 4.0]])},
            {"grid": [[1.0, 2.0], [3.0, 4.0]]},
            id="2-d array as list[list[float]]",
        ),
        pytest.param({"level": np.float32(1.5)}, {"level": 1.5}, id="np.float32 as float"),
        pytest.param({"level": 2}, {"level": 2.0}, id="int as float"),
        pytest.param({"count": np.int64(3)}, {"count": 3}, id="np.int64 as int"),
        pytest.param({"count": np.array(9)}, {"count": 9}, id="0-d array as int"),
        pytest.param({"flag": np.bool_(False)}, {"flag": False}, id="np.bool_ as bool"),
        pytest.param({"maybe": np.int16(0)}, {"maybe": 0}, id="np.int16 as Optional[int]"),
        pytest.param({"small": 5}, {"small": np.int8(5)}, id="int as np.int8"),
        pytest.param({"half": 0.25}, {"half": np.float32(0.25)}, id="float as np.float32"),
        pytest.param({"color": "RED"}, {"color": Color.RED}, id="member name as enum"),
        pytest.param({"color": 1}, {"color": Color.RED}, id="number as enum"),
    ],
)
def test_numpy_and_python_values_are_accepted_where_they_fit(changes, expected):
    got = round_trip(reading(**changes))
    for name, value in expected.items():
        assert getattr(got, name) == value
        assert type(getattr(got, name)) is type(value)


def test_decoded_values_take_the_declared_python_types():
    got = round_trip(reading())
    assert got == reading()._replace(small=got.small, half=got.half)
    assert type(got) is Reading and type(got.inner) is Inner
    assert type(got.small) is np.int8 and type(got.half) is np.float32
    assert got.color is Color.GREEN


def test_optional_keeps_presence_of_zero_values():
    assert round_trip(reading(maybe=0)).maybe == 0
    assert round_trip(reading(maybe=None)).maybe is None


def test_map_with_numpy_keys_decodes_to_numpy_keys():
    codec = method("counts")
    got = codec.decode_response(codec.encode_response({np.int32(3): 0.5, 7: np.float32(2)}))
    assert got == {3: 0.5, 7: 2.0}
    assert {type(k) for k in got} == {np.int32}
    assert {type(v) for v in got.values()} == {np.float32}


def test_single_dict_argument_is_the_parameter_not_the_request():
    codec = method("counts")
    assert codec.decode_request(codec.encode_request(({"a": 1},), {})) == ((), {"d": {"a": 1}})


def test_single_namedtuple_argument_fills_the_first_parameter():
    codec = method("shift")
    raw = codec.encode_request((Inner(2, 0.5),), {})
    assert codec.decode_request(raw) == ((), {"p": Inner(2, 0.5), "by": 0})


def test_request_is_built_from_positional_and_keyword_arguments():
    codec = method("shift")
    raw = codec.encode_request((Inner(2, 0.5),), {"by": 3})
    assert codec.decode_request(raw) == ((), {"p": Inner(2, 0.5), "by": 3})
    assert codec.decode_request(codec.encode_request((), {"p": Inner(1, 1.0), "by": 4})) == (
        (),
        {"p": Inner(1, 1.0), "by": 4},
    )


# ---------------------------------------------------------------- strict about meaning


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"count": 1.5}, "count: expected an integer, got float 1.5", id="float"),
        pytest.param(
            {"count": np.float64(2.0)},
            "count: expected an integer, got float 2.0",
            id="integral np.float64",
        ),
        pytest.param({"count": True}, "count: expected an integer, got bool True", id="bool"),
        pytest.param({"count": "3"}, "count: expected an integer, got str '3'", id="str"),
        pytest.param(
            {"count": 2**63}, "count: 9223372036854775808 is out of range for int64", id="range"
        ),
        pytest.param(
            {"inner": Inner(1.5, 0.0)}, "inner.n: expected an integer, got float 1.5", id="nested"
        ),
        pytest.param({"ids": [1, 2.5]}, "ids[1]: expected an integer, got float 2.5", id="item"),
        pytest.param(
            {"ids": np.array([1.5])},
            "ids: expected a 1-d array of int64, got 1-d float64",
            id="float array",
        ),
        pytest.param(
            {"grid": [[1.0], [2.0, "x"]]},
            "grid[1][1]: expected a number, got str 'x'",
            id="nested list item",
        ),
        pytest.param(
            {"by_name": {"a": 0.5}},
            "by_name['a']: expected an integer, got float 0.5",
            id="map value",
        ),
        pytest.param({"by_name": {1: 1}}, "by_name key: expected a str, got int 1", id="map key"),
        pytest.param({"maybe": 0.5}, "maybe: expected an integer, got float 0.5", id="optional"),
        pytest.param({"level": "high"}, "level: expected a number, got str 'high'", id="str"),
        pytest.param(
            {"inner": None}, "inner: is None but the field is not Optional", id="missing message"
        ),
        pytest.param({"color": "BLUE"}, "color: 'BLUE' is not a member of Color", id="enum name"),
        pytest.param(
            {"color": 0.5}, "color: expected a member of Color, got float 0.5", id="enum type"
        ),
    ],
)
def test_value_that_does_not_fit_raises_encode_error_naming_the_field(changes, message):
    with pytest.raises(EncodeError) as info:
        method("record").encode_request((reading(**changes),), {})
    assert str(info.value) == message


def test_unset_enum_is_refused_by_a_model_that_declares_the_enum(stub_cache: StubCache):
    stubs = stub_module(stub_cache)
    msg = stubs.RecordRequest(inner=stubs.Inner(n=1))  # color left at 0
    with pytest.raises(DecodeError) as info:
        method("record").decode_request(msg.SerializeToString())
    assert str(info.value) == "color: enum value is not set"


def test_client_without_model_classes_decodes_an_unset_enum(stub_cache: StubCache):
    """A schema read back from descriptors (reflection) has no Python enum to refuse 0."""
    schema = schema_from_descriptor(file_descriptor(SCHEMA))
    codec = ValueCodec(schema, message_classes(file_descriptor(schema))).method("record")
    stubs = stub_module(stub_cache)
    unset = codec.decode_request(stubs.RecordRequest(inner=stubs.Inner()).SerializeToString())
    green_msg = stubs.RecordRequest(inner=stubs.Inner(), color=2)
    green = codec.decode_request(green_msg.SerializeToString())
    assert (unset[0][0].color.name, unset[0][0].color.value) == ("UNSPECIFIED", 0)
    assert (green[0][0].color.name, green[0][0].color.value) == ("GREEN", 2)
    assert type(unset[0][0].color) is type(green[0][0].color)


def test_encode_error_is_a_type_error():
    with pytest.raises(TypeError):
        method("record").encode_request((reading(count=1.5),), {})


def test_unknown_keyword_argument_is_refused():
    with pytest.raises(TypeError) as info:
        method("shift").encode_request((), {"q": 1})
    assert str(info.value) == "shift() got an unexpected argument 'q'; fields are p, by"


# ---------------------------------------------------------------- Tensors


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


def stub_module(stub_cache: StubCache):  # type: ignore[no-untyped-def]
    return stub_cache.module(render_proto(SCHEMA))


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


# ---------------------------------------------------------------- malformed bytes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"\xff", "the bytes are not a valid FloatsRequest: truncated varint", id="varint"
        ),
        pytest.param(
            b"\x0a\x05abc",
            "the bytes are not a valid FloatsRequest: field runs past the end of the message",
            id="length past end",
        ),
        pytest.param(
            b"\x0a\x02\x08\x63",
            "x: unknown Tensor dtype number 99",
            id="unknown dtype",
        ),
        pytest.param(b"\x0a\x00", "x: Tensor dtype is not set", id="dtype unset"),
        pytest.param(
            b"\x0a\x06\x08\x0b\x10\x02\x1a\x00",
            "x: Tensor of shape [2] and dtype float32 needs 8 bytes, got 0",
            id="data too short",
        ),
        pytest.param(
            b"\x0a\x0f\x08\x0b\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x1a\x00",
            "x: negative dimension in Tensor shape [-1]",
            id="negative dimension",
        ),
        pytest.param(b"", "x: required field is not set", id="missing tensor"),
        pytest.param(
            b"\x0f",
            "the bytes are not a valid FloatsRequest: unsupported wire type 7",
            id="wire type 7",
        ),
        pytest.param(
            b"\x07", "the bytes are not a valid FloatsRequest: field number 0 is invalid", id="0"
        ),
    ],
)
def test_malformed_tensor_request_raises_decode_error(data: bytes, message: str):
    with pytest.raises(DecodeError) as info:
        method("floats").decode_request(data)
    assert str(info.value) == message


def test_decode_error_is_a_value_error():
    with pytest.raises(ValueError):
        method("record").decode_request(b"\x0a")


def test_wire_error_is_raised_for_inconsistent_tensor_parts():
    with pytest.raises(WireError) as info:
        array_from_wire(11, [3], b"\x00" * 8)
    assert str(info.value) == "Tensor of shape [3] and dtype float32 needs 12 bytes, got 8"


VALID = [
    method("record").encode_request((reading(maybe=4),), {}),
    method("scene").encode_request(
        (
            Scene(
                Image(np.arange(4, dtype=np.uint8), "a"),
                np.zeros((2, 2), np.float32),
                [np.zeros(1, np.uint8)],
                np.arange(3),
                np.array([True]),
            ),
        ),
        {},
    ),
]


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid request with bytes flipped, cut off or inserted, or plain random bytes."""
    which = draw(st.sampled_from([0, 1]))
    name = ["record", "scene"][which]
    if draw(st.booleans()):
        return name, draw(st.binary(max_size=64))
    data = bytearray(VALID[which])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:]
        else:
            data.insert(at, draw(st.integers(0, 255)))
    return name, bytes(data)


@given(corrupted())
def test_malformed_bytes_raise_decode_error_and_nothing_else(case: tuple[str, bytes]):
    name, data = case
    with contextlib.suppress(DecodeError):
        method(name).decode_request(data)
