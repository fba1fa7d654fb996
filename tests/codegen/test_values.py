"""The value codec with Python and numpy values: lenient about numpy inputs, strict about
meaning."""

from __future__ import annotations

import numpy as np
import pytest

from modelwire.codegen.descriptors import (
    file_descriptor,
    message_classes,
    schema_from_descriptor,
)
from modelwire.codegen.values import DecodeError, EncodeError, ValueCodec
from tests.codegen.codec_cases import SCHEMA, Color, Inner, Reading, method, reading, stub_module
from tests.codegen.toolchain import StubCache


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
    with pytest.raises(TypeError) as info:
        method("record").encode_request((reading(count=1.5),), {})
    assert type(info.value) is EncodeError
    assert (info.value.where, info.value.reason) == ("count", "expected an integer, got float 1.5")


def test_unknown_keyword_argument_is_refused():
    with pytest.raises(TypeError) as info:
        method("shift").encode_request((), {"q": 1})
    assert type(info.value) is TypeError  # a programmer's mistake, not a value that does not fit
    assert str(info.value) == "shift() got an unexpected argument 'q'; fields are p, by"
