"""Encoding: Python values -> protobuf messages, and why a value does not fit.

`MessageEncoders` builds, once per message, an encoder that turns what a model
function returns (or a client passes) into a message. Encoding is lenient about
how data scientists write values: numpy arrays and numpy scalars are accepted
wherever the annotation says int, float, bool or a list of them. It stays strict
about meaning: a float is never truncated into an int field. Large Tensors are
deferred, to be appended after the message bytes (see `modelwire.codegen.wire`).

When protobuf rejects a value, `diagnoser()` walks it strictly and raises
`EncodeError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelwire.codegen.converters import Deferred, EncodeError, Encoder, Path, describe, join_path
from modelwire.codegen.descriptors import MessageClasses
from modelwire.codegen.enum_values import EnumTable
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    ModelSchema,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)
from modelwire.codegen.wire import array_to_wire

__all__ = ["MessageEncoders"]

_INT_RANGES = {
    Scalar.INT64: (-(1 << 63), (1 << 63) - 1),
    Scalar.UINT64: (0, (1 << 64) - 1),
    Scalar.INT32: (-(1 << 31), (1 << 31) - 1),
    Scalar.UINT32: (0, (1 << 32) - 1),
}
_INT_SCALARS = set(_INT_RANGES)
_FLOAT_SCALARS = {Scalar.DOUBLE, Scalar.FLOAT}

# ---------------------------------------------------------------- scalar checks


def _scalar_checker(s: Scalar) -> Callable[[Any, str], Any]:
    """Strict conversion of one scalar to what protobuf accepts; raises EncodeError."""
    if s in _INT_SCALARS:
        low, high = _INT_RANGES[s]

        def to_int(v: Any, where: str) -> Any:
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
                raise EncodeError(where, f"expected an integer, got {describe(v)}")
            n = int(v)
            if not low <= n <= high:
                raise EncodeError(where, f"{n} is out of range for {s.value}")
            return n

        return to_int
    if s in _FLOAT_SCALARS:

        def to_float(v: Any, where: str) -> Any:
            if isinstance(v, bool | np.bool_) or not isinstance(
                v, int | float | np.integer | np.floating
            ):
                raise EncodeError(where, f"expected a number, got {describe(v)}")
            return float(v)

        return to_float
    if s is Scalar.BOOL:

        def to_bool(v: Any, where: str) -> Any:
            if not isinstance(v, bool | np.bool_):
                raise EncodeError(where, f"expected a bool, got {describe(v)}")
            return bool(v)

        return to_bool
    if s is Scalar.STRING:

        def to_str(v: Any, where: str) -> Any:
            if not isinstance(v, str):
                raise EncodeError(where, f"expected a str, got {describe(v)}")
            return str(v)

        return to_str

    def to_bytes(v: Any, where: str) -> Any:
        if not isinstance(v, bytes | bytearray | memoryview):
            raise EncodeError(where, f"expected bytes, got {describe(v)}")
        return bytes(v)

    return to_bytes


_ARRAY_KINDS = {
    **dict.fromkeys(_INT_SCALARS, "iu"),
    **dict.fromkeys(_FLOAT_SCALARS, "iuf"),
    Scalar.BOOL: "b",
    Scalar.STRING: "U",
    Scalar.BYTES: "S",
}


class MessageEncoders:
    """Encoders for the messages of one schema, built once per message.

    Args:
        schema: the model's schema.
        classes: message classes built from the same schema.
        enums: the schema's enum members.
    """

    def __init__(self, schema: ModelSchema, classes: MessageClasses, enums: EnumTable) -> None:
        self.schema = schema
        self.classes = classes
        self.enums = enums
        self._encoders: dict[str, Encoder] = {}

    def message_encoder(self, name: str) -> Encoder:
        enc = self._encoders.get(name)
        if enc is not None:
            return enc

        def lazy(v: Any, d: Deferred | None, p: Path) -> Any:
            return real(v, d, p)

        self._encoders[name] = lazy
        real = self._build_message_encoder(name)
        self._encoders[name] = real
        return real

    def _build_message_encoder(self, name: str) -> Encoder:
        msg = self.schema.message(name)
        cls = self.classes.get(name)
        steps: list[tuple[str, int, Encoder, bool]] = []
        for f in msg.fields:
            t = f.type
            nullable = isinstance(t, OptionalType)
            if isinstance(t, OptionalType):
                t = t.item
            steps.append((f.name, f.number, self._encoder(t, f.name), nullable))
        names = {f.name for f in msg.fields}

        def encode(v: Any, deferred: Deferred | None, path: Path) -> Any:
            if isinstance(v, Mapping):
                extra = set(v) - names
                if extra:
                    raise EncodeError("", f"{name} has no field {sorted(extra)[0]!r}")
                get: Callable[[str], Any] = v.get
            else:
                get = _attr_getter(v, name)
            kw = {}
            for fname, number, conv, nullable in steps:
                x = get(fname)
                if x is None:
                    if nullable or isinstance(v, Mapping):
                        continue
                    raise EncodeError(fname, "is None but the field is not Optional")
                kw[fname] = conv(x, deferred, (*path, number))
            return cls(**kw)

        return encode

    def _encoder(self, t: TypeNode, where: str) -> Encoder:
        """A lenient encoder: numpy becomes Python; protobuf validates the rest."""
        match t:
            case ScalarType(scalar, _):
                check = _scalar_checker(scalar)

                def scalar_value(v: Any, d: Any, p: Path) -> Any:
                    if isinstance(v, np.generic | np.ndarray):
                        return check(v.item() if v.ndim == 0 else v, where)
                    return v

                return scalar_value
            case EnumType(name):
                number = self.enums.number(name)
                return lambda v, d, p: number(v, where)
            case MessageType(name):
                sub = self.message_encoder(name)

                def message_value(v: Any, d: Any, p: Path) -> Any:
                    try:
                        return sub(v, d, p)
                    except EncodeError as exc:
                        raise EncodeError(join_path(where, exc.where), exc.reason) from None

                return message_value
            case TensorType(dtype):
                tensor_cls = self.classes.get("Tensor")

                def tensor_value(v: Any, deferred: Deferred | None, p: Path) -> Any:
                    try:
                        number, shape, data = array_to_wire(v, dtype)
                    except (TypeError, ValueError) as exc:
                        raise EncodeError(where, str(exc)) from None
                    if deferred is not None and p:
                        if len(data):
                            deferred.append((p, data))
                        return tensor_cls(dtype=number, shape=shape)
                    return tensor_cls(dtype=number, shape=shape, data=data.tobytes())

                return tensor_value
            case ListType(item):
                if isinstance(item, ScalarType):
                    kinds = _ARRAY_KINDS[item.scalar]
                    check = _scalar_checker(item.scalar)

                    def scalar_list(v: Any, d: Any, p: Path) -> Any:
                        if isinstance(v, np.ndarray):
                            if v.dtype.kind not in kinds or v.ndim != 1:
                                raise EncodeError(
                                    where,
                                    f"expected a 1-d array of {item.scalar.value}, "
                                    f"got {v.ndim}-d {v.dtype}",
                                )
                            return v.tolist()
                        if isinstance(v, str | bytes | Mapping):
                            raise EncodeError(where, f"expected a list, got {describe(v)}")
                        if not isinstance(v, list | tuple):
                            v = list(v)
                        if v and isinstance(v[0], np.generic):
                            return [
                                check(x.item(), where) if isinstance(x, np.generic) else x
                                for x in v
                            ]
                        return v

                    return scalar_list
                conv = self._element_encoder(item, where)

                def list_value(v: Any, d: Any, p: Path) -> Any:
                    if isinstance(v, np.ndarray) and not isinstance(item, TensorType):
                        v = v.tolist()
                    if isinstance(v, str | bytes | Mapping):
                        raise EncodeError(where, f"expected a list, got {describe(v)}")
                    return [conv(x, None, ()) for x in v]

                return list_value
            case MapType(key, value):
                kconv = self._encoder(key, where)
                vconv = self._element_encoder(value, where)

                def map_value(v: Any, d: Any, p: Path) -> Any:
                    if not isinstance(v, Mapping):
                        raise EncodeError(where, f"expected a dict, got {describe(v)}")
                    return {kconv(k, None, ()): vconv(x, None, ()) for k, x in v.items()}

                return map_value
        raise TypeError(f"no encoder for {t!r}")

    def _element_encoder(self, t: TypeNode, where: str) -> Encoder:
        """Encoder for a list item or map value: nested containers go in wrappers."""
        if isinstance(t, ListType | MapType):
            from modelwire.codegen.naming import wrapper_name

            wcls = self.classes.get(wrapper_name(t))
            inner = self._encoder(t, where)
            return lambda v, d, p: wcls(values=inner(v, None, ()))
        return self._encoder(t, where)

    # ------------------------------------------------------------ diagnosis

    def diagnoser(self, name: str) -> Callable[[Any], None]:
        """A strict walk that raises EncodeError at the first value that does not fit."""

        def check(t: TypeNode, v: Any, where: str) -> None:
            if isinstance(t, OptionalType):
                if v is not None:
                    check(t.item, v, where)
                return
            match t:
                case ScalarType(scalar, _):
                    if isinstance(v, np.ndarray) and v.ndim == 0:
                        v = v.item()
                    _scalar_checker(scalar)(v, where)
                case ListType(item):
                    if isinstance(v, np.ndarray) and not isinstance(item, TensorType):
                        v = v.tolist()
                    if isinstance(v, str | bytes | Mapping) or not hasattr(v, "__iter__"):
                        raise EncodeError(where, f"expected a list, got {describe(v)}")
                    for i, x in enumerate(v):
                        check(item, x, f"{where}[{i}]")
                case MapType(key, value):
                    if not isinstance(v, Mapping):
                        raise EncodeError(where, f"expected a dict, got {describe(v)}")
                    for k, x in v.items():
                        check(key, k, f"{where} key")
                        check(value, x, f"{where}[{k!r}]")
                case MessageType(mname):
                    walk(mname, v, where)
                case EnumType(ename):
                    self.enums.number(ename)(v, where)
                case TensorType(dtype):
                    try:
                        array_to_wire(v, dtype)
                    except (TypeError, ValueError) as exc:
                        raise EncodeError(where, str(exc)) from None

        def walk(mname: str, v: Any, where: str) -> None:
            for f in self.schema.message(mname).fields:
                x = v.get(f.name) if isinstance(v, Mapping) else _attr_getter(v, mname)(f.name)
                if x is None:
                    continue
                check(f.type, x, join_path(where, f.name))

        return lambda v: walk(name, v, "")


def _attr_getter(v: Any, message: str) -> Callable[[str], Any]:
    def get(field: str) -> Any:
        try:
            return getattr(v, field)
        except AttributeError:
            raise EncodeError(
                field, f"{describe(v)} has no attribute {field!r} (expected a {message})"
            ) from None

    return get
