"""Protobuf wire format for Tensors: ndarray bytes in and out without copies.

Going through the protobuf API, a 4 MB Tensor costs several copies each way
(reference/grpc-limits.md §3). This module does what protobuf cannot:

* `append_tensor_data()` writes a tensor's raw bytes *after* an already
  serialized message, as a second occurrence of the same singular message
  field. Protobuf parsers merge repeated occurrences of a singular message
  field, so the result decodes to exactly the message with `data` set; the
  array's buffer is copied once, by the final `bytes.join`.
* `split_tensors()` finds Tensor fields at given field paths in a received
  message, decodes them to ndarrays that view the received buffer
  (`np.frombuffer`, no copy), and returns the rest of the message with those
  fields removed, for protobuf to parse.

Only Tensors reached through singular message fields qualify (a path of field
numbers); Tensors inside repeated or map fields take the ordinary path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from modelwire.codegen.schema import TENSOR_DTYPES

__all__ = [
    "DTYPE_BY_NUMBER",
    "NUMBER_BY_DTYPE",
    "TensorPlan",
    "WireError",
    "append_tensor_data",
    "array_from_wire",
    "array_to_wire",
    "encode_varint",
    "read_varint",
    "split_tensors",
]

NUMBER_BY_DTYPE: Mapping[str, int] = {name: num for name, (_, num) in TENSOR_DTYPES.items()}
DTYPE_BY_NUMBER: Mapping[int, np.dtype[np.generic]] = {
    num: np.dtype(name).newbyteorder("<") for name, num in NUMBER_BY_DTYPE.items()
}

_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5
# Tensor's field numbers (schema.py: dtype = 1, shape = 2, data = 3)
_T_DTYPE, _T_SHAPE, _T_DATA = 1, 2, 3
_DATA_TAG = bytes([(_T_DATA << 3) | _WT_LEN])
_MAX_DIMS = 64  # numpy's limit (NPY_MAXDIMS)


class WireError(ValueError):
    """Bytes that are not a valid encoding of the expected message.

    Attributes:
        path: field numbers from the top-level message down to the Tensor at fault, when
            the bytes are well-formed but that Tensor is inconsistent; else empty.
    """

    def __init__(self, message: str, path: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


def encode_varint(n: int) -> bytes:
    """A non-negative int as a protobuf varint."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(
    buf: bytes | memoryview, pos: int, end: int, error: type[ValueError] = WireError
) -> tuple[int, int]:
    """The varint at `pos` (before `end`) and the position after it; `error` if malformed."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise error("truncated varint")
        c = buf[pos]
        pos += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise error("varint longer than 10 bytes")


def _skip(buf: bytes, wt: int, pos: int, end: int) -> int:
    if wt == _WT_VARINT:
        _, pos = read_varint(buf, pos, end)
        return pos
    if wt == _WT_I64:
        pos += 8
    elif wt == _WT_I32:
        pos += 4
    elif wt == _WT_LEN:
        ln, pos = read_varint(buf, pos, end)
        pos += ln
    else:
        raise WireError(f"unsupported wire type {wt}")
    if pos > end:
        raise WireError("field runs past the end of the message")
    return pos


# ---------------------------------------------------------------- arrays


def array_to_wire(value: object, declared: str | None) -> tuple[int, tuple[int, ...], memoryview]:
    """An ndarray (or array-like) as (DataType number, shape, little-endian C-order bytes).

    A declared dtype is enforced: arrays that cast to it safely ('same_kind', e.g.
    float64 -> float32) are cast; others raise TypeError.
    """
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if declared is not None and arr.dtype.name != declared:
        target = np.dtype(declared)
        if not np.can_cast(arr.dtype, target, "same_kind"):
            raise TypeError(f"expected an array of {declared}, got {arr.dtype.name}")
        arr = arr.astype(target)
    number = NUMBER_BY_DTYPE.get(arr.dtype.name)
    if number is None:
        raise TypeError(f"arrays of dtype {arr.dtype} cannot travel in a Tensor")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    # a flat byte view: memoryview cannot cast 0-d arrays, nor ones with a zero in the shape
    return number, arr.shape, arr.reshape(-1).view(np.uint8).data


def array_from_wire(
    dtype_number: int,
    shape: list[int] | tuple[int, ...],
    buf: bytes | memoryview,
    offset: int = 0,
    length: int | None = None,
    *,
    declared: str | None = None,
) -> np.ndarray:
    """Decode a Tensor's parts into an ndarray viewing `buf` (read-only, no copy)."""
    dtype = DTYPE_BY_NUMBER.get(dtype_number)
    if dtype is None:
        raise WireError(
            "Tensor dtype is not set"
            if dtype_number == 0
            else f"unknown Tensor dtype number {dtype_number}"
        )
    if declared is not None and dtype.name != declared:
        raise WireError(f"expected a Tensor of {declared}, got {dtype.name}")
    if length is None:
        length = len(buf) - offset
    if len(shape) > _MAX_DIMS:
        raise WireError(f"Tensor has {len(shape)} dimensions; at most {_MAX_DIMS} are supported")
    count = 1
    for d in shape:
        if d < 0:
            raise WireError(f"negative dimension in Tensor shape {list(shape)}")
        count *= d
    if count * dtype.itemsize != length:
        raise WireError(
            f"Tensor of shape {list(shape)} and dtype {dtype.name} needs "
            f"{count * dtype.itemsize} bytes, got {length}"
        )
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    try:
        return arr.reshape(tuple(shape))
    except ValueError as exc:  # e.g. a size-0 shape whose other dimensions overflow
        raise WireError(f"Tensor shape {list(shape)} cannot be built: {exc}") from None


# ---------------------------------------------------------------- encode side


def append_tensor_data(path: tuple[int, ...], data: memoryview) -> list[bytes | memoryview]:
    """Parts that, appended to a serialized message, set the Tensor at `path`'s `data`.

    `path` lists field numbers from the top-level message down to the Tensor field.
    """
    n = len(data)
    headers: list[bytes] = [_DATA_TAG + encode_varint(n)]
    inner = len(headers[0]) + n
    for number in reversed(path):
        h = encode_varint((number << 3) | _WT_LEN) + encode_varint(inner)
        headers.append(h)
        inner += len(h)
    return [*reversed(headers), data]


# ---------------------------------------------------------------- decode side


@dataclass(frozen=True, slots=True)
class TensorPlan:
    """Where Tensors sit: field number -> a nested plan, or None for the Tensor itself.

    `declared` maps each tensor path to its declared dtype (or None).
    """

    children: Mapping[int, TensorPlan | None]
    declared: Mapping[tuple[int, ...], str | None]


def _parse_tensor(buf: bytes, pos: int, end: int, state: list[object]) -> None:
    """Parse one occurrence of a Tensor message into state [dtype, shape list, data range]."""
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        field, wt = key >> 3, key & 7
        if field == _T_DTYPE and wt == _WT_VARINT:
            state[0], pos = read_varint(buf, pos, end)
        elif field == _T_SHAPE and wt == _WT_LEN:
            ln, pos = read_varint(buf, pos, end)
            stop = pos + ln
            if stop > end:
                raise WireError("Tensor shape runs past the end of the message")
            shape = state[1]
            assert isinstance(shape, list)
            while pos < stop:
                d, pos = read_varint(buf, pos, stop)
                shape.append(d if d < 1 << 63 else d - (1 << 64))
        elif field == _T_SHAPE and wt == _WT_VARINT:
            d, pos = read_varint(buf, pos, end)
            shape = state[1]
            assert isinstance(shape, list)
            shape.append(d if d < 1 << 63 else d - (1 << 64))
        elif field == _T_DATA and wt == _WT_LEN:
            ln, pos = read_varint(buf, pos, end)
            if pos + ln > end:
                raise WireError("Tensor data runs past the end of the message")
            state[2] = (pos, ln)
            pos += ln
        else:
            if field == 0:
                raise WireError("field number 0 is invalid")
            pos = _skip(buf, wt, pos, end)


def _split(
    buf: bytes,
    pos: int,
    end: int,
    plan: TensorPlan,
    path: tuple[int, ...],
    states: dict[tuple[int, ...], list[object]],
) -> list[bytes | memoryview]:
    mv = memoryview(buf)
    parts: list[bytes | memoryview] = []
    keep_from = pos
    while pos < end:
        start = pos
        key, pos = read_varint(buf, pos, end)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise WireError("field number 0 is invalid")
        if field in plan.children and wt == _WT_LEN:
            ln, body = read_varint(buf, pos, end)
            stop = body + ln
            if stop > end:
                raise WireError("field runs past the end of the message")
            if keep_from < start:
                parts.append(mv[keep_from:start])
            sub = plan.children[field]
            fpath = (*path, field)
            if sub is None:
                state = states.setdefault(fpath, [0, [], None])
                _parse_tensor(buf, body, stop, state)
            else:
                inner = _split(buf, body, stop, sub, fpath, states)
                size = sum(len(p) for p in inner)
                parts.append(encode_varint(key) + encode_varint(size))
                parts.extend(inner)
            pos = keep_from = stop
        else:
            pos = _skip(buf, wt, pos, end)
    if keep_from < end:
        parts.append(mv[keep_from:end])
    return parts


def split_tensors(buf: bytes, plan: TensorPlan) -> tuple[bytes, dict[tuple[int, ...], np.ndarray]]:
    """Take the Tensors named by `plan` out of a serialized message.

    Returns:
        The message without those Tensor fields (for protobuf to parse), and the
        arrays by field path; the arrays view `buf` without copying.

    Raises:
        WireError: the bytes are malformed, or a Tensor is inconsistent.
    """
    states: dict[tuple[int, ...], list[object]] = {}
    parts = _split(buf, 0, len(buf), plan, (), states)
    if not states:
        return buf, {}
    rest = parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
    arrays: dict[tuple[int, ...], np.ndarray] = {}
    for p, (dtype_number, shape, data) in ((p, tuple(s)) for p, s in states.items()):
        assert isinstance(dtype_number, int) and isinstance(shape, list)
        offset, length = data if isinstance(data, tuple) else (0, 0)
        try:
            arrays[p] = array_from_wire(
                dtype_number, shape, buf, offset, length, declared=plan.declared.get(p)
            )
        except WireError as exc:
            raise WireError(str(exc), p) from None
    return bytes(rest), arrays
