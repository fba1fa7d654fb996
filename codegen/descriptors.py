"""Schema IR <-> protobuf descriptors, without protoc.

`file_descriptor()` builds the same `FileDescriptorProto` that protoc makes from
the rendered `.proto` (a test holds the two equal), so a runtime needs neither
grpcio-tools nor generated code. `message_classes()` turns it into message
classes in a private descriptor pool. `schema_from_descriptor()` goes the other
way for services known only through reflection: wrappers become nested lists and
maps again and the `Tensor` message becomes an ndarray type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import Message as PbMessage

from modelwire.codegen.lowering import ProtoField, ProtoFile, enum_value_prefix, lower
from modelwire.codegen.schema import (
    DATA_TYPE_ENUM,
    TENSOR_MESSAGE,
    EnumSchema,
    EnumType,
    Field,
    ListType,
    MapType,
    Message,
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)

__all__ = [
    "MessageClasses",
    "file_descriptor",
    "message_classes",
    "proto_file_name",
    "schema_from_descriptor",
]

FDP = descriptor_pb2.FieldDescriptorProto

_SCALAR_TYPES: Mapping[str, int] = {
    "double": FDP.TYPE_DOUBLE,
    "float": FDP.TYPE_FLOAT,
    "int64": FDP.TYPE_INT64,
    "uint64": FDP.TYPE_UINT64,
    "int32": FDP.TYPE_INT32,
    "uint32": FDP.TYPE_UINT32,
    "bool": FDP.TYPE_BOOL,
    "string": FDP.TYPE_STRING,
    "bytes": FDP.TYPE_BYTES,
}
_SCALAR_BY_TYPE = {v: Scalar(k) for k, v in _SCALAR_TYPES.items()}


def proto_file_name(package: str) -> str:
    """The file name a model's proto is registered under: unique per package."""
    return package.replace(".", "/") + "/model.proto"


def _json_name(name: str) -> str:
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def _map_entry_name(name: str) -> str:
    out, cap = [], True
    for ch in name:
        if ch == "_":
            cap = True
        elif cap:
            out.append(ch.upper())
            cap = False
        else:
            out.append(ch)
    return "".join(out) + "Entry"


def _set_type(fd: descriptor_pb2.FieldDescriptorProto, f: ProtoField, package: str) -> None:
    if f.is_message:
        fd.type = FDP.TYPE_MESSAGE
        fd.type_name = f".{package}.{f.type}"
    elif f.is_enum:
        fd.type = FDP.TYPE_ENUM
        fd.type_name = f".{package}.{f.type}"
    else:
        fd.type = _SCALAR_TYPES[f.type]  # type: ignore[assignment]


def build_file(pf: ProtoFile, name: str) -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=name, package=pf.package, syntax="proto3")
    pkg = pf.package
    for msg in pf.messages:
        dp = fdp.message_type.add(name=msg.name)
        optional = []
        for f in msg.fields:
            fd = dp.field.add(name=f.name, number=f.number, json_name=_json_name(f.name))
            if f.map_key is not None:
                entry = dp.nested_type.add(name=_map_entry_name(f.name))
                entry.options.map_entry = True
                key = entry.field.add(name="key", number=1, json_name="key")
                key.label = FDP.LABEL_OPTIONAL
                key.type = _SCALAR_TYPES[f.map_key]  # type: ignore[assignment]
                value = entry.field.add(name="value", number=2, json_name="value")
                value.label = FDP.LABEL_OPTIONAL
                _set_type(value, f, pkg)
                fd.label = FDP.LABEL_REPEATED
                fd.type = FDP.TYPE_MESSAGE
                fd.type_name = f".{pkg}.{msg.name}.{entry.name}"
                continue
            fd.label = FDP.LABEL_REPEATED if f.label == "repeated" else FDP.LABEL_OPTIONAL
            _set_type(fd, f, pkg)
            if f.label == "optional":
                fd.proto3_optional = True
                optional.append(fd)
        for fd in optional:
            fd.oneof_index = len(dp.oneof_decl)
            dp.oneof_decl.add(name="_" + fd.name)
    for enum in pf.enums:
        ed = fdp.enum_type.add(name=enum.name)
        for vname, number in enum.values:
            ed.value.add(name=vname, number=number)
    svc = fdp.service.add(name=pf.service)
    for rpc in pf.rpcs:
        md = svc.method.add(
            name=rpc.name, input_type=f".{pkg}.{rpc.request}", output_type=f".{pkg}.{rpc.response}"
        )
        if rpc.client_streaming:
            md.client_streaming = True
        if rpc.server_streaming:
            md.server_streaming = True
    return fdp


def file_descriptor(schema: ModelSchema) -> descriptor_pb2.FileDescriptorProto:
    """The `FileDescriptorProto` of a model's proto, equal to what protoc would produce."""
    return build_file(lower(schema), proto_file_name(schema.package))


class MessageClass(Protocol):
    """A message class made at run time, built from field keywords.

    The stubs of types-protobuf 7.35.1.20261122 and later declare no
    `Message.__init__(**fields)`, so `type[Message]` no longer takes keywords.
    """

    DESCRIPTOR: Descriptor

    def __call__(self, **fields: Any) -> PbMessage: ...

    def FromString(self, serialized: bytes, /) -> PbMessage: ...  # protobuf's name


@dataclass(frozen=True)
class MessageClasses:
    """Message classes of one proto file, living in their own descriptor pool."""

    pool: descriptor_pool.DescriptorPool
    file: FileDescriptor
    package: str

    def get(self, name: str) -> MessageClass:
        desc = self.pool.FindMessageTypeByName(f"{self.package}.{name}")
        return cast(MessageClass, message_factory.GetMessageClass(desc))

    def descriptor(self, name: str) -> Descriptor:
        return self.pool.FindMessageTypeByName(f"{self.package}.{name}")


def message_classes(
    fdp: descriptor_pb2.FileDescriptorProto,
    dependencies: Iterable[descriptor_pb2.FileDescriptorProto] = (),
) -> MessageClasses:
    """Register `fdp` in a fresh pool and return access to its message classes."""
    pool = descriptor_pool.DescriptorPool()
    for dep in dependencies:
        pool.Add(dep)
    pool.Add(fdp)
    return MessageClasses(pool, pool.FindFileByName(fdp.name), fdp.package)


# ---------------------------------------------------------------- reverse direction


def _is_tensor(dp: descriptor_pb2.DescriptorProto) -> bool:
    names = {(f.name, f.number, f.type) for f in dp.field}
    return dp.name == TENSOR_MESSAGE and names == {
        ("dtype", 1, FDP.TYPE_ENUM),
        ("shape", 2, FDP.TYPE_INT64),
        ("data", 3, FDP.TYPE_BYTES),
    }


def _is_wrapper(dp: descriptor_pb2.DescriptorProto) -> bool:
    return (
        dp.name.startswith(("ListOf", "MapOf"))
        and len(dp.field) == 1
        and dp.field[0].name == "values"
        and dp.field[0].number == 1
        and dp.field[0].label == FDP.LABEL_REPEATED
    )


def schema_from_descriptor(
    fdp: descriptor_pb2.FileDescriptorProto, *, service: str | None = None, name: str = ""
) -> ModelSchema:
    """Rebuild a schema from a proto file (e.g. one read through server reflection).

    Python-only facts the proto does not carry are lost: method and parameter
    names follow the rpc and field names, and Tensor dtypes are undeclared.

    Raises:
        ValueError: the file has no service, or more than one and none was chosen.
    """
    pkg = fdp.package
    prefix = f".{pkg}." if pkg else "."
    by_name = {dp.name: dp for dp in fdp.message_type}
    wrappers = {n for n, dp in by_name.items() if _is_wrapper(dp)}
    tensors = {n for n, dp in by_name.items() if _is_tensor(dp)}

    def local(type_name: str) -> str:
        if not type_name.startswith(prefix):
            raise ValueError(f"type {type_name} is not defined in {fdp.name}")
        return type_name[len(prefix) :]

    def element(fd: descriptor_pb2.FieldDescriptorProto) -> TypeNode:
        if fd.type == FDP.TYPE_MESSAGE:
            n = local(fd.type_name)
            if n in tensors:
                return TensorType(None)
            if n in wrappers:
                inner = by_name[n].field[0]
                return field_type(inner, by_name[n])
            return MessageType(n)
        if fd.type == FDP.TYPE_ENUM:
            return EnumType(local(fd.type_name))
        if fd.type not in _SCALAR_BY_TYPE:
            raise ValueError(f"field {fd.name!r} has a type modelwire does not map ({fd.type})")
        return ScalarType(_SCALAR_BY_TYPE[fd.type])

    def field_type(
        fd: descriptor_pb2.FieldDescriptorProto, owner: descriptor_pb2.DescriptorProto
    ) -> TypeNode:
        if fd.label == FDP.LABEL_REPEATED:
            if fd.type == FDP.TYPE_MESSAGE:
                entry_name = fd.type_name.rsplit(".", 1)[-1]
                for nested in owner.nested_type:
                    if nested.name == entry_name and nested.options.map_entry:
                        key, value = nested.field[0], nested.field[1]
                        key_t = element(key)
                        assert isinstance(key_t, ScalarType)
                        return MapType(key_t, element(value))
            return ListType(element(fd))
        el = element(fd)
        if fd.proto3_optional:
            return OptionalType(el)
        return el

    messages = []
    for dp in fdp.message_type:
        if dp.name in wrappers or dp.name in tensors:
            continue
        fields = tuple(Field(fd.name, fd.number, field_type(fd, dp)) for fd in dp.field)
        messages.append(Message(dp.name, fields))
    enums = []
    for ed in fdp.enum_type:
        if ed.name == DATA_TYPE_ENUM and tensors:
            continue
        pre = enum_value_prefix(ed.name)
        values = tuple(
            (v.name[len(pre) :] if v.name.startswith(pre) else v.name, v.number)
            for v in ed.value
            if v.number != 0
        )
        enums.append(EnumSchema(ed.name, values))
    services = [s for s in fdp.service if service is None or s.name == service]
    if len(services) != 1:
        raise ValueError(f"{fdp.name} has services {[s.name for s in fdp.service]}; choose one")
    svc = services[0]
    methods = tuple(
        Method(
            name=_snake(m.name),
            rpc=m.name,
            request=local(m.input_type),
            response=local(m.output_type),
            params=None,
            returns="message",
            streaming={
                (False, False): "",
                (True, False): "client",
                (False, True): "server",
                (True, True): "bidi",
            }[(m.client_streaming, m.server_streaming)],
        )
        for m in svc.method
    )
    return ModelSchema(name or svc.name, pkg, svc.name, methods, tuple(messages), tuple(enums))


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
