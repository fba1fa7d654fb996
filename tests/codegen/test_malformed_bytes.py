"""The value codec with malformed bytes: a DecodeError naming what is wrong, and nothing else."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelwire.codegen.values import DecodeError
from modelwire.codegen.wire import WireError, array_from_wire
from tests.codegen.codec_cases import Image, Reading, Scene, method, reading


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
    with pytest.raises(ValueError) as info:
        method("record").decode_request(b"\x0a")
    assert type(info.value) is DecodeError
    assert (info.value.where, str(info.value)) == (
        "",
        "the bytes are not a valid RecordRequest: Error parsing message with type "
        "'modelwire.models.codec_cases.v1.RecordRequest': Wire format was corrupt",
    )


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


REQUESTS = {"record": Reading, "scene": Scene}


@given(corrupted())
def test_malformed_bytes_raise_decode_error_and_nothing_else(case: tuple[str, bytes]):
    """Bytes that still parse give the declared type; the rest a one-line DecodeError that
    names the request message (unparseable bytes) or a field of it (a bad value)."""
    name, data = case
    cls = REQUESTS[name]
    try:
        args, kwargs = method(name).decode_request(data)
    except DecodeError as exc:
        message = str(exc)
        assert "\n" not in message
        if exc.where:
            assert message == f"{exc.where}: {exc.reason}"
            assert re.split(r"[.\[]", exc.where)[0] in cls._fields, message
        else:
            assert message.startswith(f"the bytes are not a valid {name.title()}Request: ")
        return
    assert kwargs == {}
    assert [type(a) for a in args] == [cls]
