"""Descriptors built without protoc equal protoc's, and read back into the same schema."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import (
    file_descriptor,
    message_classes,
    proto_file_name,
    schema_from_descriptor,
)
from modelwire.codegen.proto import render_proto
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)
from tests.codegen.samples import SAMPLES, sample
from tests.codegen.toolchain import protoc_descriptor

FDP = descriptor_pb2.FieldDescriptorProto


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_file_descriptor_equals_what_protoc_makes_of_the_rendered_proto(name: str, tmp_path: Path):
    schema, _ = sample(name)
    file_name = proto_file_name(schema.package)
    ours = file_descriptor(schema)
    theirs = protoc_descriptor(render_proto(schema), file_name, tmp_path)
    # equality of the messages includes every json_name protoc computes
    assert ours == theirs, f"ours:\n{ours}\nprotoc:\n{theirs}"
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )


def test_json_names_and_map_entries_follow_protoc_for_awkward_field_names(tmp_path: Path):
    """protoc camel-cases after every '_' (digits and doubled '_' included)."""
    fields = [
        ("sepal_length_2d", list[float]),
        ("x1_y2", int),
        ("double__under", str),
        ("trailing_", bool),
        ("by_id_map", dict[int, str]),
        ("a_b_c", dict[str, list[int]]),
    ]
    Odd = typing.NamedTuple("Odd", fields)  # type: ignore[misc]

    def f(x, k):  # type: ignore[no-untyped-def]
        return 0

    f.__annotations__ = {"x": Odd, "k": int, "return": int}
    schema, _ = Model(f=f).named("awkward", "1")
    ours = file_descriptor(schema)
    theirs = protoc_descriptor(render_proto(schema), proto_file_name(schema.package), tmp_path)
    assert ours == theirs
    odd = next(m for m in ours.message_type if m.name == "Odd")
    assert [f.json_name for f in odd.field] == [
        "sepalLength2d",
        "x1Y2",
        "doubleUnder",
        "trailing",
        "byIdMap",
        "aBC",
    ]
    assert [n.name for n in odd.nested_type] == ["ByIdMapEntry", "ABCEntry"]


def test_proto_file_name_mirrors_the_package():
    assert proto_file_name("modelwire.models.iris.v1") == "modelwire/models/iris/v1/model.proto"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_descriptor_builds_message_classes(name: str):
    schema, _ = sample(name)
    classes = message_classes(file_descriptor(schema))
    for message in schema.messages:
        assert classes.get(message.name).DESCRIPTOR.full_name == f"{schema.package}.{message.name}"


def test_optional_fields_get_synthetic_oneofs_in_field_order():
    schema, _ = sample("messages")
    drawing = next(m for m in file_descriptor(schema).message_type if m.name == "Drawing")
    optional = [(f.name, f.oneof_index) for f in drawing.field if f.proto3_optional]
    assert optional == [
        ("origin", 0),
        ("width", 1),
        ("scale", 2),
        ("visible", 3),
        ("title", 4),
        ("thumbnail", 5),
    ]
    assert [o.name for o in drawing.oneof_decl] == [
        "_origin",
        "_width",
        "_scale",
        "_visible",
        "_title",
        "_thumbnail",
    ]


# ---------------------------------------------------------------- reverse direction


def wire_level(t: TypeNode) -> TypeNode:
    """What the proto can tell: numpy scalar types and tensor dtypes are Python-only."""
    match t:
        case ScalarType(scalar, _):
            return ScalarType(scalar)
        case TensorType():
            return TensorType(None)
        case ListType(item):
            return ListType(wire_level(item))
        case MapType(key, value):
            return MapType(ScalarType(key.scalar), wire_level(value))
        case OptionalType(item):
            return OptionalType(wire_level(item))
    return t


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_schema_from_descriptor_round_trips_the_proto_structure(name: str):
    schema, _ = sample(name)
    back = schema_from_descriptor(file_descriptor(schema))

    assert (back.package, back.service) == (schema.package, schema.service)
    assert [(m.rpc, m.request, m.response) for m in back.methods] == [
        (m.rpc, m.request, m.response) for m in schema.methods
    ]
    assert [m.name for m in back.messages] == [m.name for m in schema.messages]
    for original in schema.messages:
        read = back.message(original.name)
        assert [(f.name, f.number, f.type) for f in read.fields] == [
            (f.name, f.number, wire_level(f.type)) for f in original.fields
        ]
    assert [(e.name, [(n.upper(), v) for n, v in e.values]) for e in schema.enums] == [
        (e.name, list(e.values)) for e in back.enums
    ]
    # and the proto it describes is the same proto
    assert file_descriptor(back) == file_descriptor(schema)


def test_schema_from_descriptor_recovers_nested_containers_and_tensors():
    schema, _ = sample("containers")
    grid = schema_from_descriptor(file_descriptor(schema)).message("TransposeRequest")
    types = {f.name: f.type for f in grid.fields}
    double, string = ScalarType(Scalar.DOUBLE), ScalarType(Scalar.STRING)
    assert types["rows"] == ListType(ListType(double))
    assert types["cube"] == ListType(ListType(ListType(ScalarType(Scalar.INT32))))
    assert types["tables"] == MapType(string, MapType(string, double))
    assert types["records"] == ListType(MapType(string, ScalarType(Scalar.INT64)))
    assert types["deep"] == MapType(string, ListType(ListType(string)))

    schema, _ = sample("tensors")
    frame = schema_from_descriptor(file_descriptor(schema)).message("SegmentRequest")
    types = {f.name: f.type for f in frame.fields}
    assert types["pixels"] == TensorType(None)
    assert types["layers"] == ListType(TensorType(None))
    assert types["named"] == MapType(string, TensorType(None))
    assert types["mask"] == OptionalType(TensorType(None))

    schema, _ = sample("enums")
    paint = schema_from_descriptor(file_descriptor(schema))
    types = {f.name: f.type for f in paint.message("RepaintRequest").fields}
    assert types["maybe"] == OptionalType(EnumType("Color"))
    assert types["by_name"] == MapType(string, EnumType("TrafficLight"))
    assert paint.enum("TrafficLight").values == (("STOP", 1), ("CAUTION", 2), ("GO", 3))
    assert paint.enum("Priority").values == (("LOW", 10), ("HIGH", 20))

    schema, _ = sample("messages")
    tree = schema_from_descriptor(file_descriptor(schema)).message("Tree")
    assert [f.type for f in tree.fields] == [
        string,
        ListType(MessageType("Tree")),
        MapType(string, MessageType("Tree")),
    ]


def test_schema_from_descriptor_needs_one_service():
    schema, _ = sample("iris")
    fdp = file_descriptor(schema)
    fdp.service.add(name="OtherService")
    with pytest.raises(ValueError) as info:
        schema_from_descriptor(fdp)
    assert str(info.value) == (
        "modelwire/models/sample_iris/v1/model.proto has services "
        "['SampleIrisService', 'OtherService']; choose one"
    )
    assert schema_from_descriptor(fdp, service="OtherService").service == "OtherService"


def test_streaming_rpcs_render_and_build_as_protoc_does(tmp_path: Path):
    """modelwire's own services (the catalog's uploads and downloads) stream."""
    from modelwire.codegen.schema import Field, Message, Method, ModelSchema, Scalar, ScalarType

    data = Field("data", 1, ScalarType(Scalar.BYTES))
    schema = ModelSchema(
        "files",
        "modelwire.files.v1",
        "FilesService",
        tuple(
            Method(
                n,
                n.title().replace("_", ""),
                f"{n.title().replace('_', '')}Request",
                f"{n.title().replace('_', '')}Response",
                None,
                "message",
                None,
                kind,
            )
            for n, kind in (("put", "client"), ("get", "server"), ("sync", "bidi"), ("stat", ""))
        ),
        tuple(
            Message(f"{n}{suffix}", (data,))
            for n in ("Put", "Get", "Sync", "Stat")
            for suffix in ("Request", "Response")
        ),
    )
    text = render_proto(schema)
    assert "rpc Put(stream PutRequest) returns (PutResponse);" in text
    assert "rpc Get(GetRequest) returns (stream GetResponse);" in text
    assert "rpc Sync(stream SyncRequest) returns (stream SyncResponse);" in text
    assert "rpc Stat(StatRequest) returns (StatResponse);" in text
    file_name = proto_file_name(schema.package)
    assert file_descriptor(schema) == protoc_descriptor(text, file_name, tmp_path)
    back = schema_from_descriptor(file_descriptor(schema))
    assert [m.streaming for m in back.methods] == ["client", "server", "bidi", ""]
    assert ModelSchema.from_json(schema.to_json()) == schema
