"""Protobuf messages -> proto3 JSON values, one encoder compiled per message descriptor.

The output is the canonical proto3 JSON mapping, as Connect clients, protobuf's
`json_format` and the Acumos runner read it: lowerCamelCase JSON names, 64-bit integers
as strings, enums by value name (a number the enum does not know stays a number), bytes
as standard base64, ``"NaN"``/``"Infinity"``/``"-Infinity"`` for non-finite floats, map
keys as strings. Fields without presence are always written, so a model's 0 or empty
list is an answer, not an absence (`always_print_fields_with_no_presence`); unset
`optional` and message fields are left out.

The values are plain Python, plus numpy float32 scalars and arrays where a field is a
32-bit float: orjson (OPT_SERIALIZE_NUMPY) writes those with the shortest decimals that
read back to the same float32. Large repeated fields are converted by whole-list calls
(`map`, numpy), not by Python loops, unless a list holds non-finite floats.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["Encoder", "JsonEncoders"]

Encoder = Callable[[Any], Any]
"""A field's value (or a message) as read from protobuf -> its JSON value."""

FD = FieldDescriptor
_SPECIAL = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _special(v: float) -> str:
    return "NaN" if math.isnan(v) else _SPECIAL[v]


def _double(v: float) -> Any:
    return v if math.isfinite(v) else _special(v)


def _float(v: float) -> Any:
    return np.float32(v) if math.isfinite(v) else _special(v)


def _b64(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")


def _doubles(values: Any) -> Any:
    out = list(values)
    return out if all(map(math.isfinite, out)) else [_double(v) for v in out]


def _floats(values: Any) -> Any:
    arr = np.array(values, dtype=np.float32)
    return arr if bool(np.isfinite(arr).all()) else [_float(float(v)) for v in arr]


def _enum_names(enum: EnumDescriptor) -> dict[int, str]:
    return {v.number: v.name for v in enum.values}


class JsonEncoders:
    """Encoders for the messages of one descriptor pool, compiled on first use."""

    def __init__(self) -> None:
        self._messages: dict[str, Encoder] = {}

    def message(self, desc: Descriptor) -> Encoder:
        """The encoder of `desc`'s messages into JSON objects (dicts)."""
        done = self._messages.get(desc.full_name)
        if done is not None:
            return done
        box: list[Encoder] = []

        def forward(m: Message) -> Any:  # a recursive message meets itself compiling
            return box[0](m)

        self._messages[desc.full_name] = forward
        box.append(self._compile(desc))
        self._messages[desc.full_name] = box[0]
        return box[0]

    def _compile(self, desc: Descriptor) -> Encoder:
        fields = [
            (fd.json_name, fd.name, fd.has_presence and not fd.is_repeated, self.field(fd))
            for fd in desc.fields
        ]

        def encode(m: Message) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, name, presence, enc in fields:
                if presence and not m.HasField(name):
                    continue
                out[key] = enc(getattr(m, name))
            return out

        return encode

    def field(self, fd: FieldDescriptor) -> Encoder:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            key_fd = fd.message_type.fields_by_name["key"]
            value = self.scalar(fd.message_type.fields_by_name["value"])
            key: Encoder = str
            if key_fd.type == FD.TYPE_BOOL:
                key = lambda k: "true" if k else "false"  # noqa: E731
            elif key_fd.type == FD.TYPE_STRING:
                key = lambda k: k  # noqa: E731
            return lambda mapping: {key(k): value(v) for k, v in mapping.items()}
        if not fd.is_repeated:
            return self.scalar(fd)
        t = fd.type
        if t == FD.TYPE_DOUBLE:
            return _doubles
        if t == FD.TYPE_FLOAT:
            return _floats
        if t in (FD.TYPE_INT64, FD.TYPE_UINT64):
            return lambda values: list(map(str, values))
        if t == FD.TYPE_BYTES:
            return lambda values: list(map(_b64, values))
        if t in (FD.TYPE_INT32, FD.TYPE_UINT32, FD.TYPE_BOOL, FD.TYPE_STRING):
            return list
        element = self.scalar(fd)
        return lambda values: [element(v) for v in values]

    def scalar(self, fd: FieldDescriptor) -> Encoder:
        """The encoder of one value of `fd` (a single value, a list or map element)."""
        t = fd.type
        if t == FD.TYPE_MESSAGE:
            assert fd.message_type is not None
            return self.message(fd.message_type)
        if t == FD.TYPE_ENUM:
            assert fd.enum_type is not None
            names = _enum_names(fd.enum_type)
            return lambda v: names.get(v, v)
        if t == FD.TYPE_DOUBLE:
            return _double
        if t == FD.TYPE_FLOAT:
            return _float
        if t in (FD.TYPE_INT64, FD.TYPE_UINT64):
            return str
        if t == FD.TYPE_BYTES:
            return _b64
        return lambda v: v
