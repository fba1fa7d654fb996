"""Lowering the schema IR to proto3 records (`ProtoFile`): wrapper messages for nested
containers, the shared `Tensor` message, enums with their `_UNSPECIFIED` zero.

`lower()` feeds both the `.proto` text (`modelwire.codegen.proto`) and the run-time
descriptors (`modelwire.codegen.descriptors`), so the two cannot drift. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from modelwire.codegen.naming import wrapper_name
from modelwire.codegen.schema import (
    DATA_TYPE_ENUM,
    TENSOR_DTYPES,
    TENSOR_MESSAGE,
    EnumType,
    Field,
    ListType,
    MapType,
    MessageType,
    ModelSchema,
    OptionalType,
    ScalarType,
    TensorType,
    TypeNode,
)

__all__ = [
    "TENSOR_COMMENT",
    "ProtoEnum",
    "ProtoField",
    "ProtoFile",
    "ProtoMessage",
    "ProtoRpc",
    "enum_value_prefix",
    "lower",
]


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
