"""Requests generated from a schema: values that are valid by type, for a model that ships
no examples.

`synthetic_request(schema, method)` gives one request per method as a dict of its fields
(what `MethodCodec.encode_request` takes as keywords, or as its one argument for a method
taking a message): every field set, lists and maps of one element, tensors of shape (1,).
It knows only the types, not what the model expects of the values; validation says which
kind of request it sent. The values are fixed, so a schema always gives the same bytes.
This module is pure: no I/O, no protobuf imports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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

__all__ = ["synthetic_request"]

# how deep a message may contain itself (through lists, maps or optionals) before the
# generator stops there: an empty list or map, a None
_MAX_DEPTH = 3

_SCALARS: dict[Scalar, Any] = {
    Scalar.DOUBLE: 0.5,
    Scalar.FLOAT: 0.5,
    Scalar.INT64: 1,
    Scalar.UINT64: 1,
    Scalar.INT32: 1,
    Scalar.UINT32: 1,
    Scalar.BOOL: True,
    Scalar.STRING: "example",
    Scalar.BYTES: b"example",
}
_MAP_KEYS: dict[Scalar, Any] = {Scalar.STRING: "key", Scalar.BOOL: True}


def synthetic_request(schema: ModelSchema, method: str) -> dict[str, Any]:
    """A request for `method` as a dict of its fields, every one set.

    Raises:
        KeyError: the schema has no such method.
    """
    m = schema.method(method)
    return _Generator(schema).message(m.request, ())


class _Generator:
    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema

    def message(self, name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if seen.count(name) > _MAX_DEPTH:  # only a required field of its own type gets here
            raise ValueError(f"message {name} contains itself in a required field")
        inner = (*seen, name)
        return {f.name: self.value(f.type, inner) for f in self.schema.message(name).fields}

    def _too_deep(self, t: TypeNode, seen: tuple[str, ...]) -> bool:
        return isinstance(t, MessageType) and seen.count(t.name) >= _MAX_DEPTH

    def value(self, t: TypeNode, seen: tuple[str, ...]) -> Any:
        match t:
            case ScalarType(scalar, numpy):
                v = _SCALARS[scalar]
                return np.dtype(numpy).type(v) if numpy else v
            case EnumType(name):
                return self.schema.enum(name).values[0][0]
            case MessageType(name):
                return self.message(name, seen)
            case TensorType(dtype):
                return np.ones((1,), dtype=dtype or "float64")
            case ListType(item):
                return [] if self._too_deep(item, seen) else [self.value(item, seen)]
            case MapType(key, value):
                if self._too_deep(value, seen):
                    return {}
                k = _MAP_KEYS.get(key.scalar, 1)
                return {np.dtype(key.numpy).type(k) if key.numpy else k: self.value(value, seen)}
            case OptionalType(item):
                return None if self._too_deep(item, seen) else self.value(item, seen)
        raise TypeError(f"not a type node: {t!r}")
