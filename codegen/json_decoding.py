"""Proto3 JSON -> protobuf messages, one converter compiled per message descriptor.

Reads what the canonical proto3 JSON mapping writes, and what people type: proto field
names and lowerCamelCase JSON names; numbers as JSON numbers or strings (64-bit
integers, ``"NaN"``, ``"Infinity"``); enums by value name, by the name without the
enum's prefix (``"CAT"`` for ``KIND_CAT``, any case) or by number; bytes as base64
(standard or URL-safe, padding optional); null for "not set". A `Tensor` also takes
nested JSON arrays (see `modelwire.codegen.json_tensors`).

A converter turns a parsed JSON value into what the message class's constructor takes
(a dict of keywords, lists, nested dicts), so protobuf builds the whole message in C.
Large repeated scalars are checked by type set and range, never element by element in
Python; only a list that fails the check is walked, to name the element at fault.

Every error is a `JsonError` naming the field path (``boxes[2].label``) and what was
wrong; an unknown field also gets a did-you-mean and the message's fields.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from modelwire.codegen.schema import enum_value_prefix
from modelwire.errors import InvalidRequest

__all__ = [
    "SKIP",
    "Converter",
    "JsonDecoders",
    "JsonError",
    "describe",
    "did_you_mean",
    "is_tensor",
]

Converter = Callable[[Any, str], Any]
"""(JSON value, its field path) -> the value a message constructor takes, or SKIP."""

SKIP: Any = object()
"""What a converter returns for null: leave the field unset."""

FD = FieldDescriptor
_INT_RANGES = {
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


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---------------------------------------------------------------- scalars


def _float_converter(single: bool) -> Converter:
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


def _int_converter(kind: int) -> Converter:
    lo, hi = _INT_RANGES[kind]
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


def _bool(v: Any, path: str) -> Any:
    if not isinstance(v, bool):
        raise JsonError(path, f"expected true or false, got {describe(v)}")
    return v


def _string(v: Any, path: str) -> Any:
    if not isinstance(v, str):
        raise JsonError(path, f"expected a string, got {describe(v)}")
    return v


def _bytes(v: Any, path: str) -> Any:
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


def _repeated_fast(fd: FieldDescriptor) -> Callable[[list[Any]], bool] | None:
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
    if t in _INT_RANGES:
        lo, hi = _INT_RANGES[t]

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


# ---------------------------------------------------------------- messages


class JsonDecoders:
    """Converters for the messages of one descriptor pool, compiled on first use.

    Args:
        tensor: builds the converter of a `Tensor` field from its declared dtype (or None)
            and the converter of the object form; see
            `modelwire.codegen.json_tensors.tensor_converter`.
        tensor_dtypes: (message name, field name) -> the numpy dtype the schema declares
            for that Tensor field.
    """

    def __init__(
        self,
        tensor: Callable[[str | None, Converter], Converter],
        tensor_dtypes: Mapping[tuple[str, str], str | None],
    ) -> None:
        self._tensor = tensor
        self._tensor_dtypes = tensor_dtypes
        self._messages: dict[str, Converter] = {}

    def message(self, desc: Descriptor) -> Converter:
        """The converter of JSON objects into keyword dicts of `desc`'s constructor."""
        done = self._messages.get(desc.full_name)
        if done is not None:
            return done
        box: list[Converter] = []

        def forward(v: Any, path: str) -> Any:  # a recursive message meets itself compiling
            return box[0](v, path)

        self._messages[desc.full_name] = forward
        box.append(self._compile(desc))
        self._messages[desc.full_name] = box[0]
        return box[0]

    def _compile(self, desc: Descriptor) -> Converter:
        keys: dict[str, tuple[str, Converter]] = {}
        for fd in desc.fields:
            conv = self.field(fd, (desc.name, fd.name))
            keys[fd.name] = (fd.name, conv)
            keys.setdefault(fd.json_name, (fd.name, conv))
        names = [fd.name for fd in desc.fields]
        listing = ", ".join(names) or "none"

        def convert(v: Any, path: str) -> Any:
            if v is None:
                return SKIP
            if not isinstance(v, dict):
                raise JsonError(path, f"expected an object ({desc.name}), got {describe(v)}")
            out: dict[str, Any] = {}
            for key, item in v.items():
                entry = keys.get(key)
                if entry is None:
                    where = f" at {path}" if path else ""
                    raise JsonError(
                        _join(path, key),
                        f"unknown field {key!r}{where} in {desc.name}"
                        f"{did_you_mean(key, names)} (its fields: {listing})",
                    )
                name, conv = entry
                if name in out:
                    raise JsonError(
                        _join(path, key), f"field {name!r} is given twice (as {name} and {key})"
                    )
                value = conv(item, _join(path, name))
                if value is not SKIP:
                    out[name] = value
            return out

        return convert

    def field(self, fd: FieldDescriptor, where: tuple[str, str]) -> Converter:
        """`where`: (message name, field name), to find a Tensor's declared dtype."""
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            return self._map(fd, where)
        element = self.element(fd, where)
        if not fd.is_repeated:
            if fd.type == FD.TYPE_MESSAGE:
                return element  # null -> SKIP already
            return lambda v, p: SKIP if v is None else element(v, p)
        return self._repeated(fd, element)

    def element(self, fd: FieldDescriptor, where: tuple[str, str]) -> Converter:
        t = fd.type
        if t == FD.TYPE_MESSAGE:
            assert fd.message_type is not None
            inner = self.message(fd.message_type)
            if is_tensor(fd.message_type):
                return self._tensor(self._tensor_dtypes.get(where), inner)
            return inner
        if t == FD.TYPE_ENUM:
            assert fd.enum_type is not None
            return enum_converter(fd.enum_type)
        if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
            return _float_converter(t == FD.TYPE_FLOAT)
        if t in _INT_RANGES:
            return _int_converter(t)
        if t == FD.TYPE_BOOL:
            return _bool
        if t == FD.TYPE_STRING:
            return _string
        if t == FD.TYPE_BYTES:
            return _bytes
        raise TypeError(f"field {fd.full_name} has a type JSON decoding does not handle: {t}")

    def _repeated(self, fd: FieldDescriptor, element: Converter) -> Converter:
        fast = _repeated_fast(fd)

        def convert(v: Any, path: str) -> Any:
            if v is None:
                return SKIP
            if not isinstance(v, list):
                raise JsonError(path, f"expected an array, got {describe(v)}")
            if fast is not None and fast(v):
                return v
            out = []
            for i, item in enumerate(v):
                if item is None:
                    raise JsonError(f"{path}[{i}]", "null is not allowed in a list")
                out.append(element(item, f"{path}[{i}]"))
            return out

        return convert

    def _map(self, fd: FieldDescriptor, where: tuple[str, str]) -> Converter:
        assert fd.message_type is not None
        key_fd = fd.message_type.fields_by_name["key"]
        value_fd = fd.message_type.fields_by_name["value"]
        value_conv = self.element(value_fd, where)
        key_conv = _map_key(key_fd)

        def convert(v: Any, path: str) -> Any:
            if v is None:
                return SKIP
            if not isinstance(v, dict):
                raise JsonError(path, f"expected an object (a map), got {describe(v)}")
            out = {}
            for k, item in v.items():
                where = f"{path}[{describe(k)}]"
                value = value_conv(item, where)
                out[key_conv(k, where)] = {} if value is SKIP else value
            return out

        return convert


def _map_key(fd: FieldDescriptor) -> Converter:
    if fd.type == FD.TYPE_STRING:
        return lambda k, p: k
    if fd.type == FD.TYPE_BOOL:

        def to_bool(k: Any, path: str) -> Any:
            if k not in ("true", "false"):
                raise JsonError(path, f"a map key here is true or false, got {describe(k)}")
            return k == "true"

        return to_bool
    integer = _int_converter(fd.type)

    def to_int(k: Any, path: str) -> Any:
        try:
            return integer(int(k), path)
        except ValueError:
            raise JsonError(path, f"a map key here is an integer, got {describe(k)}") from None

    return to_int


def is_tensor(desc: Descriptor) -> bool:
    """Whether `desc` is modelwire's shared `Tensor` message."""
    return desc.name == "Tensor" and {f.name for f in desc.fields} == {"dtype", "shape", "data"}
