"""Decoding: protobuf messages -> the Python values a model function takes or returns.

`MessageDecoders` builds, once per message, a decoder that turns a parsed message
(and any Tensors split off its bytes, see `modelwire.codegen.wire`) into the
bound NamedTuple or dataclass, a keyword dict for parameters, or a namedtuple
generated from the schema where no Python class is bound. Missing required
fields and unknown enum values raise `DecodeError`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelwire.codegen.converters import DecodeError, Decoder, Path, join_path
from modelwire.codegen.enum_values import EnumTable
from modelwire.codegen.python_types import Binding
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    ModelSchema,
    OptionalType,
    ScalarType,
    TensorType,
    TypeNode,
)
from modelwire.codegen.wire import WireError, array_from_wire

__all__ = ["MessageDecoders"]


class MessageDecoders:
    """Decoders for the messages of one schema, built once per message.

    Args:
        schema: the model's schema.
        binding: the Python classes behind messages.
        enums: the schema's enum members.
    """

    def __init__(self, schema: ModelSchema, binding: Binding, enums: EnumTable) -> None:
        self.schema = schema
        self.binding = binding
        self.enums = enums
        self._decoders: dict[str, Decoder] = {}
        self._factories: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self._generated: dict[str, type] = {}

    def python_type(self, message: str) -> type:
        """The class values of `message` decode to (bound, or a generated namedtuple)."""
        bound = self.binding.messages.get(message)
        if bound is not None:
            return bound
        existing = self._generated.get(message)
        if existing is not None:
            return existing
        names = [f.name for f in self.schema.message(message).fields]
        # rename=True replaces only names a namedtuple cannot have (keywords, leading _)
        gen: type = collections.namedtuple(message, names, rename=True)  # type: ignore[misc]
        self._generated[message] = gen
        return gen

    def message_decoder(self, name: str) -> Decoder:
        dec = self._decoders.get(name)
        if dec is not None:
            return dec

        def lazy(m: Any, arrays: Mapping[Path, np.ndarray] | None, path: Path) -> Any:
            return real(m, arrays, path)

        self._decoders[name] = lazy  # recursive messages refer to themselves
        real = self._build_message_decoder(name)
        self._decoders[name] = real
        return real

    def _factory(self, name: str) -> Callable[[dict[str, Any]], Any]:
        f = self._factories.get(name)
        if f is None:
            bound = self.binding.messages.get(name)
            if (
                bound is None
                and name.endswith(("Request", "Response"))
                and any(name in (m.request, m.response) for m in self.schema.methods)
                and self._is_param_message(name)
            ):
                f = dict  # parameters / wrapped values: keyword dict
            else:
                cls = bound or self.python_type(name)
                f = _make_factory(cls)
            self._factories[name] = f
        return f

    def _is_param_message(self, name: str) -> bool:
        for m in self.schema.methods:
            if m.request == name and m.params is not None:
                return True
            if m.response == name and m.returns in ("value", "none"):
                return True
        return False

    def _build_message_decoder(self, name: str) -> Decoder:
        msg = self.schema.message(name)
        factory = self._factory(name)
        steps: list[tuple[str, int, Any, str]] = []
        for f in msg.fields:
            t = f.type
            if isinstance(t, OptionalType):
                steps.append((f.name, f.number, self._decoder(t.item, f.name), "optional"))
            elif isinstance(t, TensorType):
                steps.append((f.name, f.number, self._decoder(t, f.name), "tensor"))
            elif isinstance(t, MessageType):
                steps.append((f.name, f.number, self._decoder(t, f.name), "required"))
            else:
                steps.append((f.name, f.number, self._decoder(t, f.name), "plain"))

        def decode(m: Any, arrays: Mapping[Path, np.ndarray] | None, path: Path) -> Any:
            out: dict[str, Any] = {}
            for fname, number, conv, kind in steps:
                if kind == "plain":
                    out[fname] = conv(getattr(m, fname), arrays, (*path, number))
                    continue
                fpath = (*path, number)
                if arrays is not None and fpath in arrays:
                    out[fname] = arrays[fpath]
                elif m.HasField(fname):
                    out[fname] = conv(getattr(m, fname), arrays, fpath)
                elif kind == "optional":
                    out[fname] = None
                else:
                    raise DecodeError(fname, "required field is not set")
            return factory(out)

        return decode

    def _decoder(self, t: TypeNode, where: str) -> Decoder:
        match t:
            case ScalarType(_, None):
                return lambda v, a, p: v
            case ScalarType(_, numpy_name):
                np_type = np.dtype(numpy_name).type

                def to_numpy(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return np_type(v)
                    except OverflowError as exc:
                        raise DecodeError(where, f"{v} is out of range for {numpy_name}") from exc

                return to_numpy
            case EnumType(name):
                members = self.enums.members(name)

                def to_enum(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return members[v]
                    except KeyError:
                        raise DecodeError(
                            where,
                            "enum value is not set"
                            if v == 0
                            else f"{v} is not a value of enum {name}",
                        ) from None

                return to_enum
            case MessageType(name):
                sub = self.message_decoder(name)

                def to_message(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return sub(v, a, p)
                    except DecodeError as exc:
                        raise DecodeError(join_path(where, exc.where), exc.reason) from None

                return to_message
            case TensorType(dtype):

                def to_array(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return array_from_wire(v.dtype, v.shape, v.data, declared=dtype)
                    except WireError as exc:
                        raise DecodeError(where, str(exc)) from None

                return to_array
            case ListType(item):
                if isinstance(item, ScalarType) and item.numpy is None:
                    return lambda v, a, p: list(v)
                if isinstance(item, ListType | MapType):
                    inner = self._decoder(item, where)
                    return lambda v, a, p: [inner(w.values, None, ()) for w in v]
                conv = self._decoder(item, where)
                return lambda v, a, p: [conv(x, None, ()) for x in v]
            case MapType(key, value):
                if key.numpy is not None:  # dict[np.int32, V]: keys decode to np.int32 too
                    kconv = self._decoder(key, f"{where} key")
                    inner = self._decoder(MapType(ScalarType(key.scalar), value), where)
                    return lambda v, a, p: {
                        kconv(k, None, ()): x for k, x in inner(v, None, ()).items()
                    }
                if isinstance(value, ScalarType) and value.numpy is None:
                    return lambda v, a, p: dict(v)
                if isinstance(value, ListType | MapType):
                    vconv = self._decoder(value, where)
                    return lambda v, a, p: {k: vconv(w.values, None, ()) for k, w in v.items()}
                vconv = self._decoder(value, where)
                return lambda v, a, p: {k: vconv(x, None, ()) for k, x in v.items()}
        raise TypeError(f"no decoder for {t!r}")


def _make_factory(cls: type) -> Callable[[dict[str, Any]], Any]:
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        # fields decode in declaration order; positional also suits renamed fields
        return lambda kw: cls(*kw.values())
    return lambda kw: cls(**kw)
