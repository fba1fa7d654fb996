"""Proto3 JSON -> protobuf messages, one converter compiled per message descriptor.

Reads what the canonical proto3 JSON mapping writes, and what people type: proto field
names and lowerCamelCase JSON names; numbers as JSON numbers or strings (64-bit
integers, ``"NaN"``, ``"Infinity"``); enums by value name, by the name without the
enum's prefix (``"CAT"`` for ``KIND_CAT``, any case) or by number; bytes as base64
(standard or URL-safe, padding optional); null for "not set". A `Tensor` also takes
nested JSON arrays (see `modelwire.codegen.json_tensors`).

A converter turns a parsed JSON value into what the message class's constructor takes
(a dict of keywords, lists, nested dicts), so protobuf builds the whole message in C.
The scalar leaves, and the whole-list checks that keep large repeated fields out of
per-element Python work, are in `modelwire.codegen.json_scalars`.

Every error is a `JsonError` naming the field path (``boxes[2].label``) and what was
wrong; an unknown field also gets a did-you-mean and the message's fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from modelwire.codegen.json_scalars import (
    FLOAT_TYPES,
    INT_RANGES,
    SKIP,
    Converter,
    JsonError,
    bool_converter,
    bytes_converter,
    describe,
    did_you_mean,
    enum_converter,
    float_converter,
    int_converter,
    join_path,
    map_key_converter,
    repeated_fast,
    string_converter,
)

__all__ = ["JsonDecoders", "is_tensor"]

FD = FieldDescriptor


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
                        join_path(path, key),
                        f"unknown field {key!r}{where} in {desc.name}"
                        f"{did_you_mean(key, names)} (its fields: {listing})",
                    )
                name, conv = entry
                if name in out:
                    raise JsonError(
                        join_path(path, key), f"field {name!r} is given twice (as {name} and {key})"
                    )
                value = conv(item, join_path(path, name))
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
        if t in FLOAT_TYPES:
            return float_converter(t == FD.TYPE_FLOAT)
        if t in INT_RANGES:
            return int_converter(t)
        if t == FD.TYPE_BOOL:
            return bool_converter
        if t == FD.TYPE_STRING:
            return string_converter
        if t == FD.TYPE_BYTES:
            return bytes_converter
        raise TypeError(f"field {fd.full_name} has a type JSON decoding does not handle: {t}")

    def _repeated(self, fd: FieldDescriptor, element: Converter) -> Converter:
        fast = repeated_fast(fd)

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
        key_conv = map_key_converter(key_fd)

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


def is_tensor(desc: Descriptor) -> bool:
    """Whether `desc` is modelwire's shared `Tensor` message."""
    return desc.name == "Tensor" and {f.name for f in desc.fields} == {"dtype", "shape", "data"}
