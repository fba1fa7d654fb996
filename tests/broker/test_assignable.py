"""The assignability rule (`modelwire.codegen.compat.assignable`), pinned by a table with
ids: every way a producer's type may or may not fit a consumer's, with each mismatch it
reports; and how types render in those reports."""

from __future__ import annotations

import pytest

from modelwire.codegen.compat import assignable, render_type
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    OptionalType,
    TensorType,
)
from tests.broker.schemas import (
    BOOL,
    BOX_DOUBLE,
    BOX_INT,
    BOXES,
    BYTES,
    COLOR,
    COLOR_MORE,
    COLOR_RENUMBERED,
    F32,
    F64,
    FOREST,
    I32,
    I64,
    NODE_I32,
    NODE_I64,
    NODE_STR,
    SCENE,
    STR,
    TREE,
    TREE_BYTES,
    U32,
    U64,
    numbered,
    root,
)

# (producer, consumer, every mismatch as (code, path, producer type, consumer type, detail))
ASSIGNABLE = [
    # ---- scalars: exact, or a lossless widening
    pytest.param(root(("n", I64)), root(("n", I64)), [], id="same-scalar"),
    pytest.param(root(("n", I32)), root(("n", I64)), [], id="widen-int32-int64"),
    pytest.param(root(("n", U32)), root(("n", U64)), [], id="widen-uint32-uint64"),
    pytest.param(root(("n", U32)), root(("n", I64)), [], id="widen-uint32-int64"),
    pytest.param(root(("f", F32)), root(("f", F64)), [], id="widen-float-double"),
    pytest.param(
        root(("n", I64)),
        root(("n", I32)),
        [("MW201", "n", "int64", "int32", "")],
        id="narrow-int64-int32",
    ),
    pytest.param(
        root(("f", F64)),
        root(("f", F32)),
        [("MW201", "f", "double", "float", "")],
        id="narrow-double-float",
    ),
    pytest.param(
        root(("n", I32)),
        root(("n", U32)),
        [("MW201", "n", "int32", "uint32", "")],
        id="sign-int32-uint32",
    ),
    pytest.param(
        root(("n", I64)),
        root(("n", F64)),
        [("MW201", "n", "int64", "double", "")],
        id="int64-to-double-refused",
    ),
    pytest.param(
        root(("s", STR)),
        root(("s", BYTES)),
        [("MW201", "s", "string", "bytes", "")],
        id="string-to-bytes-refused",
    ),
    pytest.param(
        root(("b", BOOL)),
        root(("b", I64)),
        [("MW201", "b", "bool", "int64", "")],
        id="bool-to-int64-refused",
    ),
    # ---- fields: extra ones dropped, missing ones only if optional
    pytest.param(
        root(("a", I64), ("b", STR), ("c", BYTES)), root(("b", STR)), [], id="extra-fields-dropped"
    ),
    pytest.param(
        root(("a", I64)),
        root(("a", I64), ("b", STR)),
        [("MW202", "b", "", "string", "R has no field 'b'")],
        id="missing-required-field",
    ),
    pytest.param(
        root(("a", I64)),
        root(("a", I64), ("b", OptionalType(STR))),
        [],
        id="missing-optional-field",
    ),
    pytest.param(
        root(("a", I64)),
        root(("a", I64), ("box", MessageType("Box")), extra=(BOX_INT,)),
        [("MW202", "box", "", "message Box", "R has no field 'box'")],
        id="missing-message-field-is-required",
    ),
    pytest.param(root(("a", OptionalType(I64))), root(("a", I64)), [], id="optional-to-required"),
    pytest.param(root(("a", I32)), root(("a", OptionalType(I64))), [], id="required-to-optional"),
    # ---- cardinality: singular, repeated, map
    pytest.param(
        root(("xs", I64)),
        root(("xs", ListType(I64))),
        [("MW203", "xs", "int64", "repeated int64", "singular vs repeated")],
        id="singular-to-repeated",
    ),
    pytest.param(
        root(("xs", ListType(I64))),
        root(("xs", I64)),
        [("MW203", "xs", "repeated int64", "int64", "repeated vs singular")],
        id="repeated-to-singular",
    ),
    pytest.param(
        root(("m", MapType(STR, I64))),
        root(("m", ListType(I64))),
        [("MW203", "m", "map<string, int64>", "repeated int64", "map vs repeated")],
        id="map-to-repeated",
    ),
    pytest.param(
        root(("m", ListType(I64))),
        root(("m", MapType(STR, I64))),
        [("MW203", "m", "repeated int64", "map<string, int64>", "repeated vs map")],
        id="repeated-to-map",
    ),
    pytest.param(
        root(("xs", ListType(I32))), root(("xs", ListType(I64))), [], id="repeated-widening"
    ),
    pytest.param(
        root(("xs", ListType(STR))),
        root(("xs", ListType(I64))),
        [("MW201", "xs[]", "string", "int64", "")],
        id="repeated-item-mismatch",
    ),
    # ---- maps
    pytest.param(
        root(("m", MapType(STR, I32))), root(("m", MapType(STR, I64))), [], id="map-widening"
    ),
    pytest.param(
        root(("m", MapType(I64, STR))),
        root(("m", MapType(STR, STR))),
        [("MW201", "m{key}", "int64", "string", "")],
        id="map-key-mismatch",
    ),
    pytest.param(
        root(("m", MapType(STR, F64))),
        root(("m", MapType(STR, F32))),
        [("MW201", "m{}", "double", "float", "")],
        id="map-value-mismatch",
    ),
    pytest.param(
        root(("m", MapType(STR, MessageType("Box"))), extra=(BOX_INT,)),
        root(("m", MapType(STR, MessageType("Box"))), extra=(BOX_DOUBLE,)),
        [
            ("MW201", "m{}.x", "int64", "double", ""),
            ("MW201", "m{}.y", "int64", "double", ""),
        ],
        id="map-of-messages-mismatch",
    ),
    # ---- nested lists (wrapper messages on the wire)
    pytest.param(
        root(("g", ListType(ListType(I32)))),
        root(("g", ListType(ListType(I64)))),
        [],
        id="nested-lists-widening",
    ),
    pytest.param(
        root(("g", ListType(ListType(F64)))),
        root(("g", ListType(ListType(STR)))),
        [("MW201", "g[][]", "double", "string", "")],
        id="nested-lists-item-mismatch",
    ),
    pytest.param(
        root(("g", ListType(ListType(I64)))),
        root(("g", ListType(I64))),
        [("MW203", "g[]", "repeated int64", "int64", "repeated vs singular")],
        id="nested-list-to-flat-list",
    ),
    # ---- messages, by name and by structure, at depth
    pytest.param(
        root(("scene", MessageType("Scene")), extra=(SCENE, BOXES, BOX_INT)),
        root(("scene", MessageType("Scene")), extra=(SCENE, BOXES, BOX_INT)),
        [],
        id="nested-same",
    ),
    pytest.param(
        root(("scene", MessageType("Scene")), extra=(SCENE, BOXES, BOX_INT)),
        root(("scene", MessageType("Scene")), extra=(SCENE, BOXES, BOX_DOUBLE)),
        [
            ("MW201", "scene.faces.boxes[].x", "int64", "double", ""),
            ("MW201", "scene.faces.boxes[].y", "int64", "double", ""),
        ],
        id="nested-depth-3-mismatch",
    ),
    pytest.param(
        root(("where", MessageType("Box")), extra=(BOX_INT,)),
        root(("where", MessageType("Place")), extra=(numbered("Place", ("y", 1, I64)),)),
        [],
        id="message-names-differ",
    ),
    pytest.param(
        root(("where", MessageType("Box")), extra=(BOX_INT,)),
        root(("where", I64)),
        [("MW201", "where", "message Box", "int64", "")],
        id="message-to-scalar",
    ),
    # ---- enums: by value name
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR,)),
        root(("c", EnumType("Color")), enums=(COLOR,)),
        [],
        id="enum-same",
    ),
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR,)),
        root(("c", EnumType("Color")), enums=(COLOR_MORE,)),
        [],
        id="enum-consumer-has-more",
    ),
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR_MORE,)),
        root(("c", EnumType("Color")), enums=(COLOR,)),
        [("MW201", "c", "enum Color", "enum Color", "Color lacks BLUE")],
        id="enum-consumer-lacks-a-value",
    ),
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR,)),
        root(("c", EnumType("Color")), enums=(COLOR_RENUMBERED,)),
        [],
        id="enum-renumbered",
    ),
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR,)),
        root(("c", I32)),
        [("MW201", "c", "enum Color", "int32", "")],
        id="enum-to-int",
    ),
    # ---- tensors: dtypes must agree where both declare one
    pytest.param(
        root(("t", TensorType("uint8"))), root(("t", TensorType("uint8"))), [], id="tensor-same"
    ),
    pytest.param(
        root(("t", TensorType("float32"))),
        root(("t", TensorType("uint8"))),
        [("MW204", "t", "Tensor<float32>", "Tensor<uint8>", "")],
        id="tensor-dtype-mismatch",
    ),
    pytest.param(
        root(("t", TensorType(None))),
        root(("t", TensorType("uint8"))),
        [],
        id="tensor-any-to-uint8",
    ),
    pytest.param(
        root(("t", TensorType("float64"))), root(("t", TensorType(None))), [], id="tensor-to-any"
    ),
    pytest.param(
        root(("t", TensorType("uint8"))),
        root(("t", BYTES)),
        [("MW201", "t", "Tensor<uint8>", "bytes", "")],
        id="tensor-to-bytes",
    ),
    pytest.param(
        root(("ts", ListType(TensorType("int32")))),
        root(("ts", ListType(TensorType("int64")))),
        [("MW204", "ts[]", "Tensor<int32>", "Tensor<int64>", "")],
        id="tensor-list-dtype-mismatch",
    ),
    # ---- recursive messages: the check terminates, each problem reported once
    pytest.param(
        root(("tree", MessageType("Node")), extra=(NODE_I32,)),
        root(("tree", MessageType("Node")), extra=(NODE_I64,)),
        [],
        id="recursive-widening",
    ),
    pytest.param(
        root(("tree", MessageType("Node")), extra=(NODE_STR,)),
        root(("tree", MessageType("Node")), extra=(NODE_I64,)),
        [("MW201", "tree.value", "string", "int64", "")],
        id="recursive-mismatch",
    ),
    pytest.param(
        root(("t", MessageType("Tree")), extra=(TREE, FOREST)),
        root(("t", MessageType("Tree")), extra=(TREE, FOREST)),
        [],
        id="mutually-recursive",
    ),
    pytest.param(
        root(("t", MessageType("Tree")), extra=(TREE_BYTES, FOREST)),
        root(("t", MessageType("Tree")), extra=(TREE, FOREST)),
        [("MW201", "t.label", "bytes", "string", "")],
        id="mutually-recursive-mismatch",
    ),
]


@pytest.mark.parametrize(("producer", "consumer", "expected"), ASSIGNABLE)
def test_assignable(producer, consumer, expected):
    got = assignable(producer, consumer)
    assert [(m.code, m.path, m.producer, m.consumer, m.detail) for m in got] == expected


def test_mismatch_renders_types_like_proto():
    rendered = [
        render_type(t)
        for t in (
            OptionalType(STR),
            ListType(ListType(F64)),
            MapType(STR, ListType(I64)),
            TensorType("uint8"),
            TensorType(None),
            EnumType("Color"),
            MessageType("Box"),
        )
    ]
    assert rendered == [
        "optional string",
        "repeated ListOfDouble",
        "map<string, ListOfInt64>",
        "Tensor<uint8>",
        "Tensor",
        "enum Color",
        "message Box",
    ]
