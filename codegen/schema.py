"""The schema IR: frozen records describing a model's methods and their types.

The IR keeps the Python meaning of every field (a `list[list[float]]` stays a
list of lists; an `NDArray[np.uint8]` remembers its dtype). `lower()` turns it
into proto-level records (`ProtoFile`), which both the `.proto` renderer and the
descriptor builder consume, so the text and the run-time descriptors cannot drift.

This module is pure: no I/O, no protobuf imports.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
    "ProtoEnum",
    "ProtoField",
    "ProtoFile",
    "ProtoMessage",
    "Scalar",
    "ScalarType",
    "TensorType",
    "TypeNode",
    "lower",
    "package_name",
    "rpc_name",
    "service_name",
    "type_from_json",
    "type_to_json",
    "wrapper_name",
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


# ---------------------------------------------------------------- naming

_WORD = re.compile(r"[A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    # split on non-alphanumerics and camelCase boundaries
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return _WORD.findall(spaced)


def package_name(model_name: str, version: str) -> str:
    """`iris`, `2.1.0` -> `modelwire.models.iris.v2` (the major version picks the package).

    A 0.x version is a pre-release of v1: `modelwire.models.iris.v1alpha` (buf's
    PACKAGE_VERSION_SUFFIX rule has no `v0`).
    """
    words = [w.lower() for w in _words(model_name)]
    if not words or not words[0][0].isalpha():
        raise ValueError(f"model name {model_name!r} must start with a letter")
    major = version.split(".", 1)[0]
    if not major.isdigit():
        raise ValueError(f"version {version!r} must start with a major version number")
    suffix = f"v{int(major)}" if int(major) > 0 else "v1alpha"
    return f"modelwire.models.{'_'.join(words)}.{suffix}"


def service_name(model_name: str) -> str:
    """`face-detector` -> `FaceDetectorService`."""
    return "".join(w[:1].upper() + w[1:] for w in _words(model_name)) + "Service"


def rpc_name(method_name: str) -> str:
    """`predict_proba` -> `PredictProba`."""
    return "".join(w[:1].upper() + w[1:] for w in _words(method_name))


def _scalar_title(s: Scalar) -> str:
    return s.value[:1].upper() + s.value[1:]


def wrapper_name(t: TypeNode) -> str:
    """The message that carries a nested container: `list[float]` -> `ListOfDouble`."""
    match t:
        case ListType(item):
            return "ListOf" + _type_title(item)
        case MapType(key, value):
            return f"MapOf{_scalar_title(key.scalar)}To{_type_title(value)}"
    raise TypeError(f"{t!r} needs no wrapper")


def _type_title(t: TypeNode) -> str:
    match t:
        case ScalarType(scalar, _):
            return _scalar_title(scalar)
        case EnumType(name) | MessageType(name):
            return name
        case TensorType():
            return TENSOR_MESSAGE
        case ListType() | MapType():
            return wrapper_name(t)
    raise TypeError(f"{t!r} cannot be nested in a container")


def needs_wrapper(t: TypeNode) -> bool:
    return isinstance(t, ListType | MapType)


# ---------------------------------------------------------------- lowering


@dataclass(frozen=True, slots=True)
class ProtoField:
    """One field as proto3 sees it.

    `type` is a scalar name (``'double'``) or a message/enum name relative to the
    package; `label` is ``''``, ``'optional'`` or ``'repeated'``; for a map,
    `map_key` is the key's scalar name and `type` the value type.
    """

    name: str
    number: int
    type: str
    label: str = ""
    map_key: str | None = None
    is_message: bool = False
    is_enum: bool = False


@dataclass(frozen=True, slots=True)
class ProtoMessage:
    name: str
    fields: tuple[ProtoField, ...]
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ProtoEnum:
    name: str
    values: tuple[tuple[str, int], ...]
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ProtoRpc:
    name: str
    request: str
    response: str
    comment: str | None = None
    client_streaming: bool = False
    server_streaming: bool = False


@dataclass(frozen=True, slots=True)
class ProtoFile:
    package: str
    service: str
    rpcs: tuple[ProtoRpc, ...]
    messages: tuple[ProtoMessage, ...]
    enums: tuple[ProtoEnum, ...]


def enum_value_prefix(enum_name: str) -> str:
    """`TrafficLight` -> `TRAFFIC_LIGHT_`, `HTTPStatus` -> `HTTP_STATUS_`.

    The upper snake case of buf's ENUM_VALUE_PREFIX rule (its `ToUpperSnakeCase`): a word
    starts at an upper-case letter after a lower-case one, or before one (`ABTest` ->
    `AB_TEST`); digits never start a word (`Rgb2Hex` -> `RGB2_HEX`, `Ab1C` -> `AB1C`).
    """
    name = re.sub(r"[^A-Za-z0-9]+", "_", enum_name).strip("_")
    out = ""
    for i, ch in enumerate(name):
        if (
            i
            and ch.isupper()
            and out[-1] != "_"
            and (name[i - 1].islower() or (i + 1 < len(name) and name[i + 1].islower()))
        ):
            out += "_"
        out += ch
    return out.upper() + "_"


TENSOR_COMMENT = (
    "An n-dimensional array: `data` holds the elements as raw little-endian bytes in\n"
    "C (row-major) order, `shape` the size of each dimension (empty for a scalar)."
)


def _tensor_messages() -> tuple[ProtoMessage, ProtoEnum]:
    tensor = ProtoMessage(
        TENSOR_MESSAGE,
        (
            ProtoField("dtype", 1, DATA_TYPE_ENUM, is_enum=True),
            ProtoField("shape", 2, "int64", label="repeated"),
            ProtoField("data", 3, "bytes"),
        ),
        TENSOR_COMMENT,
    )
    prefix = enum_value_prefix(DATA_TYPE_ENUM)
    dtype = ProtoEnum(
        DATA_TYPE_ENUM,
        ((prefix + "UNSPECIFIED", 0), *((prefix + n, v) for n, v in TENSOR_DTYPES.values())),
        "The element type of a Tensor.",
    )
    return tensor, dtype


@dataclass
class _Lowering:
    schema: ModelSchema
    wrappers: dict[str, ProtoMessage] = field(default_factory=dict)
    uses_tensor: bool = False

    def field(self, f: Field) -> ProtoField:
        t = f.type
        label = ""
        if isinstance(t, OptionalType):
            label, t = "optional", t.item
        elif isinstance(t, ListType):
            label, t = "repeated", t.item
        elif isinstance(t, MapType):
            value = self.element(t.value)
            return ProtoField(
                f.name,
                f.number,
                value.type,
                "repeated",
                t.key.scalar.value,
                is_message=value.is_message,
                is_enum=value.is_enum,
            )
        el = self.element(t)
        return ProtoField(
            f.name, f.number, el.type, label, is_message=el.is_message, is_enum=el.is_enum
        )

    def element(self, t: TypeNode) -> ProtoField:
        """A type that can stand as a singular/repeated/map value (wrapping containers)."""
        match t:
            case ScalarType(scalar, _):
                return ProtoField("", 0, scalar.value)
            case EnumType(name):
                return ProtoField("", 0, name, is_enum=True)
            case MessageType(name):
                return ProtoField("", 0, name, is_message=True)
            case TensorType():
                self.uses_tensor = True
                return ProtoField("", 0, TENSOR_MESSAGE, is_message=True)
            case ListType() | MapType():
                name = wrapper_name(t)
                if name not in self.wrappers:
                    self.wrappers[name] = ProtoMessage(name, (self.field(Field("values", 1, t)),))
                return ProtoField("", 0, name, is_message=True)
        raise TypeError(f"{t!r} cannot be lowered")

    def run(self) -> ProtoFile:
        s = self.schema
        messages = [
            ProtoMessage(m.name, tuple(self.field(f) for f in m.fields), m.doc) for m in s.messages
        ]
        enums = [
            ProtoEnum(
                e.name,
                (
                    (enum_value_prefix(e.name) + "UNSPECIFIED", 0),
                    *((enum_value_prefix(e.name) + n.upper(), v) for n, v in e.values),
                ),
            )
            for e in s.enums
        ]
        messages.extend(self.wrappers[k] for k in sorted(self.wrappers))
        if self.uses_tensor:
            tensor, dtype = _tensor_messages()
            messages.append(tensor)
            enums.append(dtype)
        rpcs = tuple(
            ProtoRpc(
                m.rpc,
                m.request,
                m.response,
                m.doc,
                client_streaming=m.streaming in ("client", "bidi"),
                server_streaming=m.streaming in ("server", "bidi"),
            )
            for m in s.methods
        )
        return ProtoFile(s.package, s.service, rpcs, tuple(messages), tuple(enums))


def lower(schema: ModelSchema) -> ProtoFile:
    """Lower the IR to proto3 records: wrappers for nested containers, the Tensor message."""
    return _Lowering(schema).run()


def walk_types(t: TypeNode) -> Iterator[TypeNode]:
    """Every node of a type tree, root first."""
    yield t
    match t:
        case ListType(item) | OptionalType(item):
            yield from walk_types(item)
        case MapType(key, value):
            yield key
            yield from walk_types(value)
