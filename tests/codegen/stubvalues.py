"""Python values <-> messages of protoc-generated stubs, written from the annotation alone.

This is the reference side of the round-trip properties: it uses only the stubs grpcio-tools
compiles and the Python annotation, never modelwire's codec or schema IR. Values are read into
a plain form that both sides can be compared in:

* scalars as Python scalars (numpy scalars via `.item()`),
* enum members as their upper-case member name,
* arrays as ('tensor', dtype name, shape, little-endian C-order bytes),
* messages as {field: plain value}, lists as lists, dicts as dicts, absent optionals as None.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from tests.strategies import kind_of

__all__ = ["plain", "read_fields", "write_fields"]

_DTYPE_PREFIX = "DATA_TYPE_"


def _enum_prefix(descriptor: EnumDescriptor) -> str:
    zero = descriptor.values_by_number[0].name
    assert zero.endswith("_UNSPECIFIED"), zero
    return zero.removesuffix("UNSPECIFIED")


def _little_endian_bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def plain(annotation: Any, value: Any) -> Any:
    """A Python value in the plain form."""
    kind, arg = kind_of(annotation)
    if kind == "optional":
        return None if value is None else plain(arg, value)
    if kind == "list":
        return [plain(arg, x) for x in value]
    if kind == "dict":
        return {plain(arg[0], k): plain(arg[1], x) for k, x in value.items()}
    if kind == "enum":
        return value.name.upper()
    if kind == "tensor":
        arr = np.asarray(value)
        return ("tensor", arr.dtype.name, arr.shape, _little_endian_bytes(arr))
    if kind == "message":
        return {name: plain(t, getattr(value, name)) for name, t in arg}
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------- reading stub messages


def read_fields(fields: tuple[tuple[str, Any], ...], msg: Message) -> dict[str, Any]:
    """The plain form of `msg`'s fields, read as the annotations say."""
    return {name: _read_field(t, msg, name) for name, t in fields}


def _read_field(annotation: Any, msg: Message, name: str) -> Any:
    fd = msg.DESCRIPTOR.fields_by_name[name]
    kind, arg = kind_of(annotation)
    if kind == "optional":
        return _read(arg, getattr(msg, name), fd) if msg.HasField(name) else None
    if kind in ("message", "tensor"):
        assert msg.HasField(name), f"message field {name!r} is not set"
    return _read(annotation, getattr(msg, name), fd)


def _read(annotation: Any, raw: Any, fd: FieldDescriptor) -> Any:
    kind, arg = kind_of(annotation)
    if kind == "list":
        return [_read_item(arg, x, fd) for x in raw]
    if kind == "dict":
        value_fd = fd.message_type.fields_by_name["value"]
        return {k: _read_item(arg[1], x, value_fd) for k, x in raw.items()}
    if kind == "enum":
        prefix = _enum_prefix(fd.enum_type)
        return fd.enum_type.values_by_number[raw].name.removeprefix(prefix)
    if kind == "tensor":
        dtype_enum = raw.DESCRIPTOR.fields_by_name["dtype"].enum_type
        dtype = dtype_enum.values_by_number[raw.dtype].name.removeprefix(_DTYPE_PREFIX).lower()
        shape = tuple(raw.shape)
        # the bytes must hold exactly the elements the shape promises
        np.frombuffer(raw.data, np.dtype(dtype).newbyteorder("<")).reshape(shape)
        return ("tensor", dtype, shape, bytes(raw.data))
    if kind == "message":
        return read_fields(arg, raw)
    return raw


def _read_item(annotation: Any, raw: Any, fd: FieldDescriptor) -> Any:
    """A list element or map value: nested containers sit in a wrapper's `values`."""
    if kind_of(annotation)[0] in ("list", "dict"):
        return _read(annotation, raw.values, raw.DESCRIPTOR.fields_by_name["values"])
    return _read(annotation, raw, fd)


# ---------------------------------------------------------------- writing stub messages


def write_fields(fields: tuple[tuple[str, Any], ...], msg: Message, value: Any) -> None:
    """Set `msg`'s fields from a NamedTuple, dataclass or dict `value`."""
    for name, t in fields:
        x = value[name] if isinstance(value, dict) else getattr(value, name)
        _write_field(t, msg, name, x)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _enum_number(descriptor: EnumDescriptor, member: Any) -> int:
    return descriptor.values_by_name[_enum_prefix(descriptor) + member.name.upper()].number  # type: ignore[no-any-return]


def _fill_tensor(msg: Message, arr: np.ndarray) -> None:
    dtype_enum = msg.DESCRIPTOR.fields_by_name["dtype"].enum_type
    msg.dtype = dtype_enum.values_by_name[_DTYPE_PREFIX + arr.dtype.name.upper()].number  # type: ignore[attr-defined]
    msg.shape.extend(arr.shape)  # type: ignore[attr-defined]
    msg.data = _little_endian_bytes(arr)  # type: ignore[attr-defined]


def _fill(annotation: Any, msg: Message, value: Any) -> None:
    """Fill a message-typed slot (message, Tensor or wrapper) from `value`."""
    kind, arg = kind_of(annotation)
    msg.SetInParent()
    if kind == "tensor":
        _fill_tensor(msg, value)
    elif kind == "message":
        write_fields(arg, msg, value)
    else:  # a nested container: its wrapper
        _write_field(annotation, msg, "values", value)


def _write_field(annotation: Any, msg: Message, name: str, value: Any) -> None:
    fd = msg.DESCRIPTOR.fields_by_name[name]
    kind, arg = kind_of(annotation)
    if kind == "optional":
        if value is not None:
            _write_field(arg, msg, name, value)
        return
    if kind in ("message", "tensor"):
        _fill(annotation, getattr(msg, name), value)
    elif kind == "list":
        repeated = getattr(msg, name)
        item_kind = kind_of(arg)[0]
        for x in value:
            if item_kind in ("message", "tensor", "list", "dict"):
                _fill(arg, repeated.add(), x)
            elif item_kind == "enum":
                repeated.append(_enum_number(fd.enum_type, x))
            else:
                repeated.append(_python(x))
    elif kind == "dict":
        mapping = getattr(msg, name)
        value_fd = fd.message_type.fields_by_name["value"]
        value_kind = kind_of(arg[1])[0]
        for k, x in value.items():
            key = _python(k)
            if value_kind in ("message", "tensor", "list", "dict"):
                _fill(arg[1], mapping[key], x)
            elif value_kind == "enum":
                mapping[key] = _enum_number(value_fd.enum_type, x)
            else:
                mapping[key] = _python(x)
    elif kind == "enum":
        setattr(msg, name, _enum_number(fd.enum_type, value))
    else:
        setattr(msg, name, _python(value))
