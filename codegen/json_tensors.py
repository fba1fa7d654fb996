"""Tensors in JSON: the canonical object, and nested arrays for convenience.

The canonical form is what the proto3 JSON mapping writes for the `Tensor` message:

    {"dtype": "DATA_TYPE_FLOAT32", "shape": ["2", "3"], "data": "<base64 of the raw
     little-endian bytes, C order>"}

and it is what a server answers. Where a request expects a Tensor it also takes nested
JSON arrays of numbers (or of true/false), a bare number being a 0-d tensor:

    [[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]]

They become an array with numpy's C conversion of the parsed lists (no per-element
Python loop), checked as a whole (rectangular, numbers only, integral and in range for
an integer dtype, finite after casting to a float dtype) and cast to the dtype the
schema declares; an undeclared dtype is inferred (bool, int64, uint64 or float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelwire.codegen.json_scalars import SKIP, Converter, JsonError, describe
from modelwire.codegen.wire import DTYPE_BY_NUMBER, array_to_wire

__all__ = ["array_from_json", "tensor_converter"]

_INFERRED = {"b": np.dtype(bool), "i": np.dtype(np.int64), "u": np.dtype(np.uint64)}
_ELEMENTS = "a tensor is nested arrays of numbers (or of true/false)"


def array_from_json(value: Any, declared: str | None, path: str) -> np.ndarray:
    """Nested JSON arrays (or one number) as an ndarray of the declared dtype.

    Raises:
        JsonError: ragged arrays, elements that are not numbers, or values the dtype
            cannot hold; naming `path`.
    """
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError):
        raise JsonError(
            path, "nested arrays of different lengths: every row of a tensor has the same length"
        ) from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        what = "strings" if kind == "U" else "null, objects or integers over 64 bits"
        raise JsonError(path, f"{_ELEMENTS}; this one has {what}")
    target = np.dtype(declared) if declared else _INFERRED.get(kind, np.dtype(np.float64))
    if target.kind == "b" and kind != "b":
        raise JsonError(path, "expected a tensor of bool (true/false), got numbers")
    if target.kind in "iu":
        arr = _as_integers(arr, kind, target, path)
    elif target.kind in "fc" and kind == "b":
        raise JsonError(path, f"expected a tensor of {target.name} numbers, got true/false")
    with np.errstate(over="ignore"):  # an overflow to inf is found below, and refused
        cast = arr.astype(target)
    if target.kind == "f" and bool(np.any(np.isinf(cast) & np.isfinite(arr))):
        raise JsonError(path, f"a value is out of range for {target.name}")
    return cast


def _as_integers(arr: np.ndarray, kind: str, target: np.dtype[Any], path: str) -> np.ndarray:
    if kind == "b":
        raise JsonError(path, f"expected a tensor of {target.name} integers, got true/false")
    integral = bool(np.all(np.isfinite(arr)) and np.all(arr == np.trunc(arr)))
    if kind == "f" and arr.size and not integral:
        raise JsonError(path, f"expected a tensor of {target.name} integers, got fractions")
    info = np.iinfo(target)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise JsonError(path, f"a value is out of range for {target.name}")
    return arr


def tensor_converter(declared: str | None, canonical: Converter) -> Converter:
    """The converter of a Tensor field: the canonical object (checked for a consistent
    dtype, shape and data) or nested arrays; `canonical` converts the object form."""

    def convert(v: Any, path: str) -> Any:
        if v is None:
            return SKIP
        if isinstance(v, dict):
            out = canonical(v, path)
            _check(out, declared, path)
            return out
        if isinstance(v, list | int | float):
            number, shape, data = array_to_wire(array_from_json(v, declared, path), None)
            return {"dtype": number, "shape": list(shape), "data": data.tobytes()}
        raise JsonError(path, f"expected a tensor (an object, or nested arrays), got {describe(v)}")

    return convert


def _check(fields: dict[str, Any], declared: str | None, path: str) -> None:
    number = fields.get("dtype", 0)
    data = fields.get("data", b"")
    shape = fields.get("shape", [])
    if not number:
        if data or shape:
            raise JsonError(path, "a tensor with data or a shape needs its dtype")
        return
    dtype = DTYPE_BY_NUMBER[number]
    if declared is not None and dtype.name != declared:
        raise JsonError(path, f"expected a tensor of {declared}, got {dtype.name}")
    count = 1
    for d in shape:
        if d < 0:
            raise JsonError(path, f"negative dimension in the shape {list(shape)}")
        count *= d
    if count * dtype.itemsize != len(data):
        raise JsonError(
            path,
            f"a tensor of shape {list(shape)} and dtype {dtype.name} has "
            f"{count * dtype.itemsize} bytes of data, this one {len(data)}",
        )
