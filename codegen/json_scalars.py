"""Proto3 JSON scalars: the converters of single values, whole lists, and map keys.

The leaves of `modelwire.codegen.json_decoding`: numbers (JSON numbers or strings,
``"NaN"``/``"Infinity"``, integral floats for integers, ranges checked), bools,
strings, base64 bytes (standard or URL-safe, padding optional), enums (the value name,
the name without the enum's prefix in any case, or the number). `repeated_fast` checks
a whole list by its set of element types and its min/max, so a large repeated field
goes to protobuf without per-element Python work; only a list that fails the check is
walked, to name the element at fault. Every refusal is a `JsonError` with the path.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from modelwire.codegen.lowering import enum_value_prefix
from modelwire.errors import InvalidRequest

__all__ = [
    "FLOAT_TYPES",
    "INT_RANGES",
    "SKIP",
    "Converter",
    "JsonError",
    "bool_converter",
    "bytes_converter",
    "describe",
    "did_you_mean",
    "enum_converter",
    "float_converter",
    "int_converter",
    "join_path",
    "map_key_converter",
    "repeated_fast",
    "string_converter",
]

Converter = Callable[[Any, str], Any]
"""(JSON value, its field path) -> the value a message constructor takes, or SKIP."""

SKIP: Any = object()
"""What a converter returns for null: leave the field unset."""

FD = FieldDescriptor
FLOAT_TYPES = (FD.TYPE_DOUBLE, FD.TYPE_FLOAT)
INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JsonError(InvalidRequest):
    """A JSON request that does not fit its message.

    Attributes:
        path: the field path at fault (``boxes[2].label``; '' for the whole request).
        reason: what is wrong there.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason, subject=path)


def describe(value: Any) -> str:
    """A JSON value as an error message shows it: `"abc"`, `true`, `an object`."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return '"' + text.replace('"', '\\"') + '"'
    return repr(value)


def did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def join_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---------------------------------------------------------------- scalars


def float_converter(single: bool) -> Converter:
    def convert(v: Any, path: str) -> Any:
        if isinstance(v, str):
            if v in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[v]
            try:
                v = float(v)
            except ValueError:
                raise JsonError(path, f"expected a number, got {describe(v)}") from None
        elif not isinstance(v, int | float) or isinstance(v, bool):
            raise JsonError(path, f"expected a number, got {describe(v)}")
        if single and math.isfinite(v) and abs(v) > _FLOAT32_MAX:
            raise JsonError(path, f"{v!r} is out of range for a 32-bit float")
        return v

    return convert


def int_converter(kind: int) -> Converter:
    lo, hi = INT_RANGES[kind]
    name = {FD.TYPE_INT32: "int32", FD.TYPE_INT64: "int64"}.get(kind) or (
        "uint32" if kind == FD.TYPE_UINT32 else "uint64"
    )

    def convert(v: Any, path: str) -> Any:
        given = v
        if isinstance(v, str):
            try:
                v = int(v)
            except ValueError:
                try:
                    v = float(v)
                except ValueError:
                    raise JsonError(path, f"expected an integer, got {describe(given)}") from None
        if isinstance(v, float):
            if not v.is_integer():
                raise JsonError(path, f"expected an integer, got {describe(given)}")
            v = int(v)
        elif not isinstance(v, int) or isinstance(v, bool):
            raise JsonError(path, f"expected an integer, got {describe(given)}")
        if not lo <= v <= hi:
            raise JsonError(path, f"{v} is out of range for {name}")
        return v

    return convert


def bool_converter(v: Any, path: str) -> Any:
    if not isinstance(v, bool):
        raise JsonError(path, f"expected true or false, got {describe(v)}")
    return v


def string_converter(v: Any, path: str) -> Any:
    if not isinstance(v, str):
        raise JsonError(path, f"expected a string, got {describe(v)}")
    return v


def bytes_converter(v: Any, path: str) -> Any:
    if not isinstance(v, str):
        raise JsonError(path, f"expected base64 text, got {describe(v)}")
    text = v.replace("-", "+").replace("_", "/")  # URL-safe alphabet too
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise JsonError(path, f"not valid base64: {describe(v)}") from None


def enum_converter(enum: EnumDescriptor) -> Converter:
    prefix = enum_value_prefix(enum.name)
    by_name: dict[str, int] = {}
    for value in enum.values:
        by_name[value.name] = value.number
        if value.name.startswith(prefix):
            by_name.setdefault(value.name[len(prefix) :], value.number)
    numbers = {v.number for v in enum.values}
    names = [v.name for v in enum.values]
    listing = ", ".join(names)

    def convert(v: Any, path: str) -> Any:
        if isinstance(v, str):
            number = by_name.get(v, by_name.get(v.upper()))
            if number is None:
                raise JsonError(
                    path,
                    f"{describe(v)} is not a value of {enum.name}"
                    f"{did_you_mean(v.upper(), list(by_name))} (its values: {listing})",
                )
            return number
        if isinstance(v, int) and not isinstance(v, bool):
            if v not in numbers:
                raise JsonError(path, f"{v} is not a value of {enum.name} (its values: {listing})")
            return v
        raise JsonError(path, f"expected a name of {enum.name}, got {describe(v)}")

    return convert


# ---------------------------------------------------------------- repeated scalars


def repeated_fast(fd: FieldDescriptor) -> Callable[[list[Any]], bool] | None:
    """A whole-list check for repeated scalars: True when the list can go to protobuf as
    it is (no per-element Python work); None for types that always take the slow path."""
    t = fd.type
    if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        single = t == FD.TYPE_FLOAT

        def numbers(values: list[Any]) -> bool:
            if not set(map(type, values)) <= {float, int}:
                return False
            return not single or not values or max(map(abs, values)) <= _FLOAT32_MAX

        return numbers
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]

        def ints(values: list[Any]) -> bool:
            if set(map(type, values)) != {int}:
                return not values
            return bool(lo <= min(values) and max(values) <= hi)

        return ints
    if t == FD.TYPE_BOOL:
        return lambda values: set(map(type, values)) <= {bool}
    if t == FD.TYPE_STRING:
        return lambda values: set(map(type, values)) <= {str}
    return None


def map_key_converter(fd: FieldDescriptor) -> Converter:
    if fd.type == FD.TYPE_STRING:
        return lambda k, p: k
    if fd.type == FD.TYPE_BOOL:

        def to_bool(k: Any, path: str) -> Any:
            if k not in ("true", "false"):
                raise JsonError(path, f"a map key here is true or false, got {describe(k)}")
            return k == "true"

        return to_bool
    integer = int_converter(fd.type)

    def to_int(k: Any, path: str) -> Any:
        try:
            return integer(int(k), path)
        except ValueError:
            raise JsonError(path, f"a map key here is an integer, got {describe(k)}") from None

    return to_int
