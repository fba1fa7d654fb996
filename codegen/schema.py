"""The schema IR: frozen records describing a model's methods and their types.

The IR keeps the Python meaning of every field (a `list[list[float]]` stays a
list of lists; an `NDArray[np.uint8]` remembers its dtype). `lower()` turns it
into proto-level records (`ProtoFile`), which both the `.proto` renderer and the
descriptor builder consume, so the text and the run-time descriptors cannot drift.

This module is pure: no I/O, no protobuf imports.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "TENSOR_DTYPES",
    "EnumSchema",
    "EnumType",
    "Field",
    "ListType",
    "MapType",
    "Message",
    "MessageType",
    "Method",
    "ModelSchema",
    "OptionalType",
    "Scalar",
    "ScalarType",
    "TensorType",
    "TypeNode",
    "type_from_json",
    "type_to_json",
]


class Scalar(enum.Enum):
    """A proto3 scalar type; the value is its name in `.proto` text."""

    DOUBLE = "double"
    FLOAT = "float"
    INT64 = "int64"
    UINT64 = "uint64"
    INT32 = "int32"
    UINT32 = "uint32"
    BOOL = "bool"
    STRING = "string"
    BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class ScalarType:
    """A scalar; `numpy` names the numpy scalar type the model declared, if any."""

    scalar: Scalar
    numpy: str | None = None


@dataclass(frozen=True, slots=True)
class EnumType:
    name: str


@dataclass(frozen=True, slots=True)
class MessageType:
    name: str


@dataclass(frozen=True, slots=True)
class TensorType:
    """An ndarray carried in the shared `Tensor` message; `dtype` is None when undeclared."""

    dtype: str | None = None


@dataclass(frozen=True, slots=True)
class ListType:
    item: TypeNode


@dataclass(frozen=True, slots=True)
class MapType:
    key: ScalarType
    value: TypeNode


@dataclass(frozen=True, slots=True)
class OptionalType:
    item: TypeNode


TypeNode: TypeAlias = (
    ScalarType | EnumType | MessageType | TensorType | ListType | MapType | OptionalType
)

# numpy dtype name -> (DataType enum value name, number). Numbers are a wire contract.
TENSOR_DTYPES: Mapping[str, tuple[str, int]] = {
    "bool": ("BOOL", 1),
    "int8": ("INT8", 2),
    "int16": ("INT16", 3),
    "int32": ("INT32", 4),
    "int64": ("INT64", 5),
    "uint8": ("UINT8", 6),
    "uint16": ("UINT16", 7),
    "uint32": ("UINT32", 8),
    "uint64": ("UINT64", 9),
    "float16": ("FLOAT16", 10),
    "float32": ("FLOAT32", 11),
    "float64": ("FLOAT64", 12),
    "complex64": ("COMPLEX64", 13),
    "complex128": ("COMPLEX128", 14),
}

TENSOR_MESSAGE = "Tensor"
DATA_TYPE_ENUM = "DataType"
RESERVED_NAMES = frozenset({TENSOR_MESSAGE, DATA_TYPE_ENUM})


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    number: int
    type: TypeNode


@dataclass(frozen=True, slots=True)
class Message:
    """A message. `source` names the Python class it mirrors (``module.Qualname``), if any."""

    name: str
    fields: tuple[Field, ...]
    source: str | None = None
    doc: str | None = None


@dataclass(frozen=True, slots=True)
class EnumSchema:
    """An enum; `values` pairs each Python member name with its proto number (>= 1)."""

    name: str
    values: tuple[tuple[str, int], ...]
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Method:
    """One rpc.

    `params` lists the Python parameter names when the request message holds the
    parameters as fields (the function is called with keywords); it is None when
    the function takes one message-typed parameter. `returns` is ``'message'``
    (fields of the response are the returned object's), ``'value'`` (the return
    value is the response's single field ``value``) or ``'none'``. `streaming` is
    ``''`` (unary: every model method), ``'client'``, ``'server'`` or ``'bidi'``
    (modelwire's own services, such as the catalog's uploads and downloads).
    """

    name: str
    rpc: str
    request: str
    response: str
    params: tuple[str, ...] | None
    returns: str
    doc: str | None = None
    streaming: str = ""


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """Everything codegen needs to know about one model's service."""

    name: str
    package: str
    service: str
    methods: tuple[Method, ...]
    messages: tuple[Message, ...]
    enums: tuple[EnumSchema, ...] = ()

    def message(self, name: str) -> Message:
        for m in self.messages:
            if m.name == name:
                return m
        raise KeyError(name)

    def enum(self, name: str) -> EnumSchema:
        for e in self.enums:
            if e.name == name:
                return e
        raise KeyError(name)

    def method(self, name: str) -> Method:
        for m in self.methods:
            if name in (m.name, m.rpc):
                return m
        raise KeyError(name)

    def full_name(self, name: str) -> str:
        return f"{self.package}.{name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "package": self.package,
            "service": self.service,
            "methods": [
                {
                    "name": m.name,
                    "rpc": m.rpc,
                    "request": m.request,
                    "response": m.response,
                    "params": list(m.params) if m.params is not None else None,
                    "returns": m.returns,
                    "doc": m.doc,
                    **({"streaming": m.streaming} if m.streaming else {}),
                }
                for m in self.methods
            ],
            "messages": [
                {
                    "name": msg.name,
                    "source": msg.source,
                    "doc": msg.doc,
                    "fields": [
                        {"name": f.name, "number": f.number, "type": type_to_json(f.type)}
                        for f in msg.fields
                    ],
                }
                for msg in self.messages
            ],
            "enums": [
                {"name": e.name, "source": e.source, "values": [list(v) for v in e.values]}
                for e in self.enums
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSchema:
        return cls(
            name=data["name"],
            package=data["package"],
            service=data["service"],
            methods=tuple(
                Method(
                    name=m["name"],
                    rpc=m["rpc"],
                    request=m["request"],
                    response=m["response"],
                    params=tuple(m["params"]) if m["params"] is not None else None,
                    returns=m["returns"],
                    doc=m.get("doc"),
                    streaming=m.get("streaming", ""),
                )
                for m in data["methods"]
            ),
            messages=tuple(
                Message(
                    name=msg["name"],
                    fields=tuple(
                        Field(f["name"], f["number"], type_from_json(f["type"]))
                        for f in msg["fields"]
                    ),
                    source=msg.get("source"),
                    doc=msg.get("doc"),
                )
                for msg in data["messages"]
            ),
            enums=tuple(
                EnumSchema(e["name"], tuple((v[0], v[1]) for v in e["values"]), e.get("source"))
                for e in data.get("enums", ())
            ),
        )


def type_to_json(t: TypeNode) -> Any:
    match t:
        case ScalarType(scalar, numpy):
            return {"scalar": scalar.value, "numpy": numpy} if numpy else {"scalar": scalar.value}
        case EnumType(name):
            return {"enum": name}
        case MessageType(name):
            return {"message": name}
        case TensorType(dtype):
            return {"tensor": dtype}
        case ListType(item):
            return {"list": type_to_json(item)}
        case MapType(key, value):
            return {"map": [type_to_json(key), type_to_json(value)]}
        case OptionalType(item):
            return {"optional": type_to_json(item)}
    raise TypeError(f"not a type node: {t!r}")


def type_from_json(data: Any) -> TypeNode:
    if "scalar" in data:
        return ScalarType(Scalar(data["scalar"]), data.get("numpy"))
    if "enum" in data:
        return EnumType(data["enum"])
    if "message" in data:
        return MessageType(data["message"])
    if "tensor" in data:
        return TensorType(data["tensor"])
    if "list" in data:
        return ListType(type_from_json(data["list"]))
    if "map" in data:
        key = type_from_json(data["map"][0])
        if not isinstance(key, ScalarType):
            raise ValueError(f"map key must be a scalar: {data!r}")
        return MapType(key, type_from_json(data["map"][1]))
    if "optional" in data:
        return OptionalType(type_from_json(data["optional"]))
    raise ValueError(f"not a type node: {data!r}")


def walk_types(t: TypeNode) -> Iterator[TypeNode]:
    """Every node of a type tree, root first."""
    yield t
    match t:
        case ListType(item) | OptionalType(item):
            yield from walk_types(item)
        case MapType(key, value):
            yield key
            yield from walk_types(value)
